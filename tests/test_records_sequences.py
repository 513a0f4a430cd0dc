"""Tests of the genome -> basenji TFRecords converter on BED regions, and of the
synthetic genome (tests/test_records_genome.py tiles whole genomes).

  .venv/bin/python -m pytest -q tests/test_records_sequences.py

Genomes, regions and bedGraphs are written here, in tmp_path, small enough to check
every base and bin against numpy. Records are read back with raw tf.io parsing, not
with the pipeline's own decoder, so the layout is checked against basenji's, not
against ourselves.
"""

import gzip
import json
import os
import subprocess
import sys

import estimator_pipeline  # noqa: F401  (compat fixes before TF)
import numpy as np
import pyBigWig
import pytest
import tensorflow as tf

from conftest import REPO
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequences
from estimator_pipeline.records import synthetic_genome

SEQ_LENGTH = 64
POOL_WIDTH = 8
CHROMS = {'chr1': 300, 'chr2': 250, 'chrM': 50}


def _genome(rng):
  dna = {}
  for name, length in CHROMS.items():
    dna[name] = ''.join(rng.choice(list('ACGT'), length))
  # Soft-masked and unknown bases: lower case is the same base, N is index 4.
  dna['chr1'] = dna['chr1'][:10] + 'acgtNNNNrY' + dna['chr1'][20:]
  return dna


def _write_fasta(path, dna, width=50, gz=False):
  text = ''.join('>%s some description\n%s' % (
      name, ''.join(seq[i:i + width] + '\n' for i in range(0, len(seq), width)))
                 for name, seq in dna.items())
  opener = gzip.open if gz else open
  with opener(path, 'wt') as f:
    f.write(text)
  return str(path)


def _coverage_arrays(rng):
  """Per-base coverage of two tracks: piecewise constant runs, zero in places."""
  tracks = []
  for _ in range(2):
    per_chrom = {}
    for name, length in CHROMS.items():
      values = np.zeros(length)
      pos = 0
      while pos < length:
        run = int(rng.randint(1, 20))
        if rng.rand() < 0.7:
          values[pos:pos + run] = np.round(rng.uniform(0, 5), 2)
        pos += run
      per_chrom[name] = values
    tracks.append(per_chrom)
  return tracks


def _write_bedgraph(path, per_chrom, gz=False, extra=''):
  lines = ['track type=bedGraph name=t description="test track"\n']
  for name, values in per_chrom.items():
    start = 0
    for i in range(1, len(values) + 1):
      if i == len(values) or values[i] != values[start]:
        if values[start] != 0:
          lines.append('%s\t%d\t%d\t%g\n' % (name, start, i, values[start]))
        start = i
  opener = gzip.open if gz else open
  with opener(path, 'wt') as f:
    f.write(''.join(lines) + extra)
  return str(path)


# Line numbers matter: the summary names skipped regions by them.
BED_LINES = (
    '# regions\n'                      # 1: comment
    'chr1\t0\t64\ttrain\n'             # 2
    'chr1\t100\t164\ttrain\n'          # 3
    'chr2\t10\t74\tvalid\n'            # 4
    'chrZ\t0\t64\ttrain\n'             # 5: unknown chromosome
    'chr1\t120\t140\ttest\n'           # 6: short region, re-centred to 98-162
    'chr2\t200\t264\ttrain\n'          # 7: past the end of chr2 (250 bp)
    'chrM\t0\t50\ttest\n'              # 8: window -7..57 runs past chrM: N padded
    'chr2\t150\t214\ttest\n'           # 9
    'chr1\t236\t300\ttrain\n'          # 10: ends exactly at the end of chr1
)


@pytest.fixture
def genome(tmp_path):
  rng = np.random.RandomState(3)
  dna = _genome(rng)
  tracks = _coverage_arrays(rng)
  (tmp_path / 'regions.bed').write_text(BED_LINES)
  return {
      'dna': dna,
      'tracks': tracks,
      'fasta': _write_fasta(tmp_path / 'genome.fa', dna),
      'bed': str(tmp_path / 'regions.bed'),
      'coverage': [_write_bedgraph(tmp_path / ('t%d.bedGraph' % i), t)
                   for i, t in enumerate(tracks)],
      'dir': tmp_path,
  }


def _run_cli(args):
  # The package's own default log level, as a user gets it.
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  return subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=600, check=False)


def _read_records(pattern):
  """[(sequence uint8, target float16 [L, T])] of every record, by raw tf.io parsing."""
  out = []
  files = sorted(tf.io.gfile.glob(pattern))
  features = {'sequence': tf.io.FixedLenFeature([], tf.string),
              'target': tf.io.FixedLenFeature([], tf.string)}
  for raw in tf.data.TFRecordDataset(files, compression_type='ZLIB'):
    parsed = tf.io.parse_single_example(raw, features)
    example = tf.train.Example.FromString(raw.numpy())
    assert set(example.features.feature) == {'sequence', 'target'}
    out.append((tf.io.decode_raw(parsed['sequence'], tf.uint8).numpy(),
                tf.io.decode_raw(parsed['target'], tf.float16).numpy()))
  return out


def _expected(genome, chrom, start, crop_bp=0, sum_stat='sum', clip=None):
  """Bases and targets of the window at start; N and no coverage off the chromosome."""
  padding = 'N' * SEQ_LENGTH
  window = (padding + genome['dna'][chrom] + padding)[start + SEQ_LENGTH:][:SEQ_LENGTH]
  codes = np.array(['ACGT'.find(b.upper()) if b.upper() in 'ACGT' else 4
                    for b in window], np.uint8)
  bins = (SEQ_LENGTH - 2 * crop_bp) // POOL_WIDTH
  target = np.zeros((bins, 2), np.float32)
  for t, per_chrom in enumerate(genome['tracks']):
    values = np.pad(per_chrom[chrom], SEQ_LENGTH)[start + crop_bp + SEQ_LENGTH:][
        :SEQ_LENGTH - 2 * crop_bp]
    binned = values.reshape(bins, POOL_WIDTH).sum(axis=1)
    if sum_stat == 'mean':
      binned /= POOL_WIDTH
    if clip is not None:
      binned = np.minimum(binned, clip)
    target[:, t] = binned
  return codes, target.astype(np.float16)


def test_records_layout_split_and_skips(genome):
  out = genome['dir'] / 'data'
  result = sequences.convert_sequences(
      genome['fasta'], genome['bed'], genome['coverage'], str(out),
      seq_length=SEQ_LENGTH, pool_width=POOL_WIDTH, seqs_per_tfr=1, progress=False)

  # Written in FASTA order (chr1, chr2, chrM), then BED order, per split.
  expected = {'train': [('chr1', 0), ('chr1', 100), ('chr1', 236)],
              'valid': [('chr2', 10)],
              'test': [('chr1', 98), ('chr2', 150), ('chrM', -7)]}
  for split, windows in expected.items():
    names = sorted(os.listdir(out / 'tfrecords'))
    assert ['%s-%d.tfr' % (split, i) for i in range(len(windows))] == \
        [n for n in names if n.startswith(split + '-')]
    records = _read_records(str(out / 'tfrecords' / ('%s-*.tfr' % split)))
    assert len(records) == len(windows)
    for (seq, target), (chrom, start) in zip(records, windows):
      codes, want = _expected(genome, chrom, start)
      assert seq.dtype == np.uint8 and seq.shape == (SEQ_LENGTH,)
      np.testing.assert_array_equal(seq, codes)
      assert target.size == want.size
      np.testing.assert_array_equal(target.reshape(want.shape), want)
  assert 4 in _read_records(str(out / 'tfrecords' / 'train-0.tfr'))[0][0]
  # chrM's window runs 7 bases before its start and 7 past its end: N there.
  padded = _read_records(str(out / 'tfrecords' / 'test-2.tfr'))[0][0]
  assert list(padded[:7]) == [4] * 7 and list(padded[-7:]) == [4] * 7
  assert 4 not in padded[7:-7]

  stats = json.loads((out / 'statistics.json').read_text())
  assert stats == {'num_targets': 2, 'seq_length': SEQ_LENGTH, 'seq_1hot': True,
                   'pool_width': POOL_WIDTH, 'crop_bp': 0,
                   'target_length': SEQ_LENGTH // POOL_WIDTH,
                   'train_seqs': 3, 'valid_seqs': 1, 'test_seqs': 3}
  rows = [line.split('\t') for line in (out / 'targets.txt').read_text().splitlines()]
  # basenji's targets table columns.
  assert rows[0] == ['index', 'identifier', 'file', 'clip', 'clip_soft', 'scale',
                     'sum_stat', 'description']
  assert rows[1] == ['0', 't0', genome['coverage'][0], '', '', '1', 'sum', 'test track']
  assert rows[2][:2] == ['1', 't1'] and len(rows) == 3
  assert (out / 'sequences.bed').read_text().splitlines() == [
      'chr1\t0\t64\ttrain', 'chr1\t100\t164\ttrain', 'chr1\t236\t300\ttrain',
      'chr2\t10\t74\tvalid', 'chr1\t98\t162\ttest', 'chr2\t150\t214\ttest',
      'chrM\t-7\t57\ttest']

  assert [(s.line, s.reason.split(':')[0]) for s in result.skipped] == [
      (5, 'unknown chromosome'), (7, 'out of range')]
  summary = result.summary()
  assert 'wrote 7 sequences (train 3, valid 1, test 3)' in summary
  assert 'skipped 2 regions (1 out of range, 1 unknown chromosome)' in summary
  assert 'line 5 (chrZ:0-64): unknown chromosome' in summary
  assert 'line 7 (chr2:200-264): out of range' in summary
  # Nothing left behind but the output.
  assert sorted(os.listdir(out)) == ['sequences.bed', 'statistics.json', 'targets.txt',
                                     'tfrecords']


def test_split_by_chromosome_gzip_crop_mean_clip(genome, tmp_path):
  # A plain 3-column BED, gzipped inputs, and the basenji options.
  bed = tmp_path / 'plain.bed'
  bed.write_text('chr1\t0\t64\nchr1\t150\t214\nchr2\t20\t84\tname\nchr2\t100\t164\n')
  fasta = _write_fasta(tmp_path / 'genome.fa.gz', genome['dna'], width=37, gz=True)
  coverage = [_write_bedgraph(tmp_path / ('t%d.bedGraph.gz' % i), t, gz=True)
              for i, t in enumerate(genome['tracks'])]
  out = tmp_path / 'by_chrom'
  with pytest.raises(UserError, match='no 4th .fold. column'):
    sequences.convert_sequences(fasta, str(bed), coverage, str(out),
                                seq_length=SEQ_LENGTH, pool_width=POOL_WIDTH,
                                progress=False)
  result = sequences.convert_sequences(
      fasta, str(bed), coverage, str(out), seq_length=SEQ_LENGTH, pool_width=POOL_WIDTH,
      crop_bp=8, sum_stat='sum,mean', clip='20,none', test_chroms=['chr2'],
      identifiers=['a', 'b'], progress=False)
  assert result.counts == {'train': 2, 'valid': 0, 'test': 2}
  assert 'no valid sequences' in result.summary()
  stats = json.loads((out / 'statistics.json').read_text())
  assert stats['crop_bp'] == 8 and stats['target_length'] == 6
  test = _read_records(str(out / 'tfrecords' / 'test-*.tfr'))
  for (seq, target), start in zip(test, (20, 100)):
    codes, want_sum = _expected(genome, 'chr2', start, crop_bp=8, clip=20)
    _, want_mean = _expected(genome, 'chr2', start, crop_bp=8, sum_stat='mean')
    np.testing.assert_array_equal(seq, codes)
    target = target.reshape(6, 2)
    np.testing.assert_array_equal(target[:, 0], want_sum[:, 0])
    np.testing.assert_array_equal(target[:, 1], want_mean[:, 1])
  assert np.max(_read_records(str(out / 'tfrecords' / 'train-*.tfr'))[0][1]) <= 20
  rows = [line.split('\t') for line in (out / 'targets.txt').read_text().splitlines()]
  assert [r[1] for r in rows[1:]] == ['a', 'b']
  assert [r[3:7] for r in rows[1:]] == [['20', '', '1', 'sum'], ['', '', '1', 'mean']]


@pytest.mark.parametrize('case, message', [
    ('bed_fields', r'regions.bed line 3: expected chrom, start, end'),
    ('bed_start', r"regions.bed line 2: start 'ten' is not an integer"),
    ('bed_order', r'regions.bed line 2: start 64 and end 0 must have'),
    ('bed_fold', r"regions.bed line 2: fold 'training' is not one of train/valid/test"),
    ('missing_fasta', r'--fasta file .*nowhere.fa does not exist'),
    ('coverage_chrom', r't0.bedGraph line \d+: chromosome chrX is not in --fasta'),
    ('coverage_value', r't0.bedGraph line \d+: value .abc. is not a finite number'),
    ('coverage_overlap', r'lines \d+ and \d+ overlap on chr1'),
    ('pool', r'--seq_length=64 minus 2 \* --crop_bp=3 is 58, not a multiple of '
             r'--pool_width=8'),
    ('fasta_text', r'sequence before the first >header'),
    ('chroms', r'--valid_chroms names chr9, which no region'),
    ('sum_stat', r'--sum_stat has 3 values but --coverage has 2 files'),
])
def test_bad_inputs_are_user_errors(genome, case, message):
  kwargs = dict(fasta=genome['fasta'], bed=genome['bed'], coverage=genome['coverage'],
                output_dir=str(genome['dir'] / 'out'), seq_length=SEQ_LENGTH,
                pool_width=POOL_WIDTH, progress=False)
  bed = genome['dir'] / 'regions.bed'
  if case == 'bed_fields':
    bed.write_text('chr1\t0\t64\ttrain\n\nchr1 5\n')
  elif case == 'bed_start':
    bed.write_text('track name=x\nchr1\tten\t64\ttrain\n')
  elif case == 'bed_order':
    bed.write_text('#\nchr1\t64\t0\ttrain\n')
  elif case == 'bed_fold':
    bed.write_text('chr1\t0\t64\ttrain\nchr1\t0\t64\ttraining\n')
  elif case == 'missing_fasta':
    kwargs['fasta'] = str(genome['dir'] / 'nowhere.fa')
  elif case == 'coverage_chrom':
    _write_bedgraph(genome['coverage'][0], genome['tracks'][0],
                    extra='chrX\t0\t10\t1.0\n')
  elif case == 'coverage_value':
    _write_bedgraph(genome['coverage'][0], genome['tracks'][0],
                    extra='chr1\t290\t300\tabc\n')
  elif case == 'coverage_overlap':
    _write_bedgraph(genome['coverage'][0], genome['tracks'][0],
                    extra='chr1\t5\t7\t1.0\n')
  elif case == 'pool':
    kwargs['crop_bp'] = 3
  elif case == 'fasta_text':
    (genome['dir'] / 'genome.fa').write_text('ACGT\n>chr1\nACGT\n')
  elif case == 'chroms':
    kwargs['valid_chroms'] = ['chr9']
  elif case == 'sum_stat':
    kwargs['sum_stat'] = 'sum,sum,mean'
  with pytest.raises(UserError, match=message):
    sequences.convert_sequences(**kwargs)
  # A failed run leaves nothing behind in output_dir, not even temporary files.
  out = genome['dir'] / 'out'
  assert not out.exists() or os.listdir(out) == []


def test_failed_overwrite_keeps_earlier_output(genome):
  out = genome['dir'] / 'data'
  args = (genome['fasta'], genome['bed'], genome['coverage'], str(out))
  kwargs = dict(seq_length=SEQ_LENGTH, pool_width=POOL_WIDTH, progress=False)
  sequences.convert_sequences(*args, **kwargs)
  before = {p: (out / p).read_bytes() for p in ('statistics.json', 'targets.txt',
                                                'tfrecords/train-0.tfr')}
  with pytest.raises(UserError, match='already holds tfrecords, statistics.json'):
    sequences.convert_sequences(*args, **kwargs)
  _write_bedgraph(genome['coverage'][1], genome['tracks'][1], extra='chrX\t0\t5\t1\n')
  with pytest.raises(UserError, match='chromosome chrX is not in --fasta'):
    sequences.convert_sequences(*args, overwrite=True, crop_bp=8, **kwargs)
  assert {p: (out / p).read_bytes() for p in before} == before
  assert sorted(os.listdir(out)) == ['sequences.bed', 'statistics.json', 'targets.txt',
                                     'tfrecords']
  _write_bedgraph(genome['coverage'][1], genome['tracks'][1])
  sequences.convert_sequences(*args, overwrite=True, crop_bp=8, **kwargs)
  assert json.loads((out / 'statistics.json').read_text())['crop_bp'] == 8


def test_command_line(genome):
  """The real subcommand: a summary on stdout; bad input is one line and exit 2."""
  out = genome['dir'] / 'cli'
  common = ['-m', 'estimator_pipeline.records', 'sequences', '--fasta=' + genome['fasta'],
            '--coverage=' + ','.join(genome['coverage']), '--seq_length=64',
            '--pool_width=8', '--output_dir=' + str(out)]
  good = _run_cli(common + ['--bed=' + genome['bed']])
  assert good.returncode == 0, good.stderr
  assert 'wrote 7 sequences (train 3, valid 1, test 3)' in good.stdout
  assert 'line 5 (chrZ:0-64): unknown chromosome' in good.stdout
  assert json.loads((out / 'statistics.json').read_text())['train_seqs'] == 3

  bad_bed = genome['dir'] / 'bad.bed'
  bad_bed.write_text('chr1\t0\t64\ttrain\nchr1\t0\n')
  bad = _run_cli(common + ['--bed=' + str(bad_bed), '--overwrite'])
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines() == [
      'error: --bed=%s line 2: expected chrom, start, end (tab-separated), got '
      "'chr1\\t0'" % bad_bed]
  assert json.loads((out / 'statistics.json').read_text())['train_seqs'] == 3


def _bedgraph_array(path, chrom, length):
  """Per-base values of one chromosome of a bedGraph (0 where it has no line)."""
  values = np.zeros(length, np.float32)
  for _, name, start, end, value in genome_files.iter_bedgraph(path, path):
    values[start:end] = value if name.decode() == chrom else values[start:end]
  return values


def test_synthetic_genome_is_deterministic_and_motif_driven(tmp_path):
  small = dict(num_chroms=3, chrom_length=4096, seq_length=512)
  first = synthetic_genome.write_synthetic_genome(str(tmp_path / 'a'), seed=5, **small)
  second = synthetic_genome.write_synthetic_genome(str(tmp_path / 'b'), seed=5, **small)
  other = synthetic_genome.write_synthetic_genome(str(tmp_path / 'c'), seed=6, **small)
  names = ['genome.fa', 'regions.bed', 'motifs.bed', 'motifA.bedGraph',
           'motifB.bedGraph', 'motifA.bw', 'motifB.bw', 'targets.txt']
  for name in names:
    assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes()
  assert second.bigwigs[1].endswith('motifB.bw')
  assert (tmp_path / 'a' / 'genome.fa').read_bytes() != \
      (tmp_path / 'c' / 'genome.fa').read_bytes()
  assert first.num_regions == {'train': 15, 'valid': 8, 'test': 8}
  assert other.coverage[0].endswith('motifA.bedGraph')
  assert [line.split('\t')[1:3] for line in open(first.targets_file)][1:] == [
      ['motifA', 'motifA.bw'], ['motifB', 'motifB.bw']]

  # Every occurrence of a motif (either strand) is in motifs.bed, and its track peaks
  # there; the other motif's track does not care. The bigWig holds the bedGraph's
  # values (no value where the bedGraph has no line).
  dna = {}
  for name, _, codes in genome_files.read_fasta(first.fasta):
    dna[name] = ''.join('ACGTN'[c] for c in codes)
  sites = synthetic_genome.read_motif_sites(first.motifs_bed)
  for track_index, (motif_name, motif) in enumerate(synthetic_genome.MOTIFS):
    bigwig = pyBigWig.open(first.bigwigs[track_index])
    track = {chrom: _bedgraph_array(first.coverage[track_index], chrom, 4096)
             for chrom in dna}
    for chrom in dna:
      from_bigwig = np.nan_to_num(bigwig.values(chrom, 0, 4096, numpy=True))
      np.testing.assert_array_equal(from_bigwig, track[chrom])
    found = [(chrom, start) for chrom, seq in dna.items()
             for start, _ in synthetic_genome.find_sites(seq, motif)]
    listed = [(chrom, s[0]) for chrom, rows in sites.items() for s in rows
              if s[2] == motif_name]
    assert sorted(found) == sorted(listed) and len(found) > 5
    for chrom, start in found[:5]:
      assert track[chrom][start + len(motif) // 2] >= 0.5
    if track_index == 0:
      # Far from any site of motif A, track A is zero.
      centers = [s[0] + 4 for s in sites['chr1'] if s[2] == 'motifA']
      far = next(x for x in range(0, 4096, 7)
                 if min(abs(x - c) for c in centers) > 100)
      assert track['chr1'][far] == 0
