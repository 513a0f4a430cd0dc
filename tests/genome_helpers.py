"""A tiny genome with runs of N, bigWig and bedGraph tracks, and basenji's binning
restated in numpy, for the genome converter's tests (written in tmp_path)."""

import gzip
import os

import numpy as np
import pyBigWig
import tensorflow as tf

# chr1 has a 300-base run of N (a contig break with --gap_min=100) and a 20-base one
# (kept inside windows), and soft-masked bases.
LENGTHS = {'chr1': 6000, 'chr2': 3000, 'chr3': 2500}
GAP = (2000, 2300)
SHORT_GAP = (4000, 4020)


def write_genome(folder, seed=0, names=None):
  """(genome.fa path, {chrom: text}); names renames the chromosomes in the FASTA."""
  rng = np.random.RandomState(seed)
  dna = {}
  for chrom, length in LENGTHS.items():
    bases = np.array(list('ACGT'))[rng.randint(0, 4, length)]
    if chrom == 'chr1':
      bases[GAP[0]:GAP[1]] = 'N'
      bases[SHORT_GAP[0]:SHORT_GAP[1]] = 'N'
      bases[100:160] = np.char.lower(bases[100:160])
    dna[chrom] = ''.join(bases)
  path = os.path.join(str(folder), 'genome.fa')
  with open(path, 'w') as f:
    for chrom, text in dna.items():
      f.write('>%s test chromosome\n' % (names or {}).get(chrom, chrom))
      f.writelines(text[i:i + 60] + '\n' for i in range(0, len(text), 60))
  return path, dna


def coverage(seed, gaps=True):
  """{chrom: float32 per-base values}, runs of equal values; NaN where none."""
  rng = np.random.RandomState(seed)
  tracks = {}
  for chrom, length in LENGTHS.items():
    values = np.full(length, np.nan, np.float32)
    pos = 0
    while pos < length:
      run = int(rng.randint(1, 40))
      if not gaps or rng.rand() < 0.8:
        values[pos:pos + run] = np.float32(round(rng.gamma(1.0, 3.0), 2))
      pos += run
    tracks[chrom] = values
  return tracks


def _runs(values):
  """(starts, ends, values) of runs of equal non-NaN values."""
  change = np.flatnonzero(np.diff(np.nan_to_num(values, nan=-1.0))) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [len(values)]])
  keep = ~np.isnan(values[starts])
  return starts[keep], ends[keep], values[starts][keep]


def write_bigwig(path, tracks, names=None, lengths=None):
  """A bigWig of tracks; names renames chromosomes, lengths overrides their sizes."""
  names = names or {}
  bigwig = pyBigWig.open(str(path), 'w')
  bigwig.addHeader([(names.get(c, c), (lengths or {}).get(c, len(v)))
                    for c, v in tracks.items()])
  for chrom, values in tracks.items():
    starts, ends, vals = _runs(values)
    bigwig.addEntries([names.get(chrom, chrom)] * len(starts), starts.tolist(),
                      ends=ends.tolist(), values=vals.astype(float).tolist())
  bigwig.close()
  return str(path)


def write_bedgraph(path, tracks, gz=False):
  lines = ['track type=bedGraph name=bg description="a bedGraph track"\n']
  for chrom, values in tracks.items():
    starts, ends, vals = _runs(values)
    lines.extend('%s\t%d\t%d\t%g\n' % r for r in zip([chrom] * len(starts), starts,
                                                       ends, vals))
  with (gzip.open if gz else open)(str(path), 'wt') as f:
    f.writelines(lines)
  return str(path)


def write_targets(path, rows):
  """basenji's targets table; rows: (identifier, file, clip, clip_soft, scale, stat)."""
  with open(str(path), 'w') as f:
    f.write('\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tdescription\n')
    for i, row in enumerate(rows):
      f.write('%d\t%s\t%s\t%s\t%s\t%s\t%s\tdescribed %s\n' % ((i,) + tuple(row) +
                                                             (row[0],)))
  return str(path)


def read_records(pattern):
  """[(uint8 bases, float16 targets flat)] by raw tf.io parsing, in file order."""
  features = {'sequence': tf.io.FixedLenFeature([], tf.string),
              'target': tf.io.FixedLenFeature([], tf.string)}
  out = []
  files = sorted(tf.io.gfile.glob(pattern), key=lambda p: int(p[:-4].split('-')[-1]))
  for raw in tf.data.TFRecordDataset(files, compression_type='ZLIB'):
    parsed = tf.io.parse_single_example(raw, features)
    out.append((tf.io.decode_raw(parsed['sequence'], tf.uint8).numpy(),
                tf.io.decode_raw(parsed['target'], tf.float16).numpy()))
  return out


def window_bases(dna, chrom, start, end):
  """Base indices of [start, end) of dna[chrom], N off the chromosome."""
  text = dna[chrom]
  window = 'N' * max(0, -start) + text[max(0, start):max(0, end)]
  window += 'N' * (end - start - len(window))
  return np.array(['ACGT'.find(b.upper()) if b.upper() in 'ACGT' else 4
                   for b in window], np.uint8)


def expected_bins(values, stat, pool, scale=1.0, clip=None, clip_soft=None,
                  blacklisted=None):
  """basenji_data_read.py's bins of per-base values of one target region."""
  values = np.array(values, np.float32)
  bins = len(values) // pool
  baseline = 0.0
  if bins >= 8 and not np.isnan(values).any():
    baseline = np.percentile(values, 50)
  if blacklisted is not None:
    values[blacklisted] = np.clip(values[blacklisted], -baseline, baseline)
  values[np.isnan(values)] = baseline
  values = values * np.float32(scale)
  per_bin = values.reshape(bins, pool).astype(np.float64)
  pooled = {'sum': per_bin.sum(1), 'mean': per_bin.mean(1), 'max': per_bin.max(1),
            'median': np.median(per_bin, 1),
            'sum_sqrt': np.sqrt(1 + per_bin.sum(1)) - 1,
            'mean_sqrt': np.sqrt(1 + per_bin.mean(1)) - 1,
            'peak': np.clip(np.sqrt(4 * per_bin.mean(1)), 0, 1)}[stat]
  if clip_soft is not None:
    over = pooled > clip_soft
    pooled[over] = clip_soft - 1 + np.sqrt(pooled[over] - clip_soft + 1)
  if clip is not None:
    pooled = np.clip(pooled, -clip, clip)
  return pooled


def padded(values, start, end):
  """values[start:end] with NaN off the chromosome."""
  out = np.full(end - start, np.nan, np.float32)
  lo, hi = max(0, start), min(len(values), end)
  if hi > lo:
    out[lo - start:hi - start] = values[lo:hi]
  return out
