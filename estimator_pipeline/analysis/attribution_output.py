r"""Attributions end to end: a model and rows in, TF-MoDISco's arrays and a table out.

  python -m export.attribution --method=deepshap --params_file=params.json \
      --checkpoint=model_best.h5 --fasta=genome.fa --bed=regions.bed \
      --output_dir=attr/ --bigwig_dir=attr/bigwig

attr/ gets, row i being the i-th region (BED line, VCF allele, gene or record):

  ohe.npz           arr_0: the one-hot sequences, float32 N x 4 x L (N all zero)
  hypothetical.npz  arr_0: the hypothetical contributions, N x 4 x L
  contributions.npz arr_0: the contributions of the bases present, N x 4 x L
                    (`modisco motifs -s ohe.npz -a hypothetical.npz` reads these)
  regions.tsv       row, name, chrom, start, end (the window), strand, readout,
                    baseline (F(x), and F of the baseline or mean reference)
  attributions.h5   all of the above: onehot, hypothetical, contributions, the
                    columns of regions.tsv, and attrs method, readout, steps, ...

--bigwig_dir gets contributions.bw: the per-base contribution (summed over the 4
channels) of every row with coordinates, in genome order; where windows overlap the
earlier row's bases stay (as chrombpnet's contribs_bw). Everything is written in a
scratch folder and moved in when complete.
"""

import os
import shutil
import tempfile

import h5py
import numpy as np
import pyBigWig

from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

ARRAYS = ('ohe', 'hypothetical', 'contributions')
H5_FILE = 'attributions.h5'
REGIONS_FILE = 'regions.tsv'
BIGWIG_FILE = 'contributions.bw'


def compute(explainer, rows, readout, options):
  """-> {name: array} of every row, options.batch_size rows at a time."""
  hyp, values, baselines = [], [], []
  with console.Progress(len(rows), 'attribution (%s)' % options.method,
                        unit='seq') as progress:
    for first in range(0, len(rows), options.batch_size):
      chunk = rows[first:first + options.batch_size]
      pairs = [readout.weights(explainer.bins, explainer.num_targets, r.strand,
                               r.exon_bins) for r in chunk]
      weights = (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))
      h, v, b = explainer.explain(chunk, weights, options)
      hyp.append(np.asarray(h, np.float32))
      values.append(v)
      baselines.append(b)
      progress.update(len(chunk))
  onehot = dna.one_hot(np.stack([r.codes for r in rows]))
  hyp = np.concatenate(hyp)
  return {'ohe': onehot.transpose(0, 2, 1),
          'hypothetical': hyp.transpose(0, 2, 1),
          'contributions': (hyp * onehot).transpose(0, 2, 1),
          'readout': np.concatenate(values).astype(np.float64),
          'baseline': np.concatenate(baselines).astype(np.float64)}


def write(output_dir, rows, arrays, attrs, bigwig_dir='', chrom_lengths=None):
  """Writes the arrays, regions.tsv and attributions.h5 (and the bigWig)."""
  scratch = tempfile.mkdtemp(prefix='attribution-out-')
  try:
    for name in ARRAYS:
      np.savez_compressed(os.path.join(scratch, name + '.npz'), arr_0=arrays[name])
    _write_table(os.path.join(scratch, REGIONS_FILE), rows, arrays)
    _write_h5(os.path.join(scratch, H5_FILE), rows, arrays, attrs)
    written = [n + '.npz' for n in ARRAYS] + [REGIONS_FILE, H5_FILE]
    if bigwig_dir:
      _write_bigwig(os.path.join(scratch, BIGWIG_FILE), rows,
                    arrays['contributions'].sum(axis=1), chrom_lengths)
    files.make_output_dir(output_dir)
    for name in written:
      with files.atomic_path(os.path.join(output_dir, name)) as tmp:
        shutil.copyfile(os.path.join(scratch, name), tmp)
    if bigwig_dir:
      files.make_output_dir(bigwig_dir, '--bigwig_dir')
      with files.atomic_path(os.path.join(bigwig_dir, BIGWIG_FILE)) as tmp:
        shutil.copyfile(os.path.join(scratch, BIGWIG_FILE), tmp)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _write_table(path, rows, arrays):
  with open(path, 'w') as f:
    f.write('row\tname\tchrom\tstart\tend\tstrand\treadout\tbaseline\n')
    for i, row in enumerate(rows):
      f.write('%d\t%s\t%s\t%d\t%d\t%s\t%.6g\t%.6g\n' % (
          i, row.name, row.chrom or '.', row.start, row.end, row.strand,
          arrays['readout'][i], arrays['baseline'][i]))


def _write_h5(path, rows, arrays, attrs):
  with h5py.File(path, 'w') as h5:
    h5.create_dataset('onehot', data=arrays['ohe'], compression='gzip')
    for name in ('hypothetical', 'contributions'):
      h5.create_dataset(name, data=arrays[name], compression='gzip')
    for name in ('readout', 'baseline'):
      h5.create_dataset(name, data=arrays[name])
    h5.create_dataset('name', data=np.array([r.name for r in rows], 'S'))
    h5.create_dataset('chrom', data=np.array([r.chrom for r in rows], 'S'))
    h5.create_dataset('start', data=np.array([r.start for r in rows], np.int64))
    h5.create_dataset('end', data=np.array([r.end for r in rows], np.int64))
    h5.create_dataset('strand', data=np.array([r.strand for r in rows], 'S'))
    for key, value in attrs.items():
      h5.attrs[key] = value


def _write_bigwig(path, rows, scores, chrom_lengths):
  """Per-base scores [N, L] of the rows with coordinates, earlier rows first where
  windows overlap; bases past a chromosome's end are left out."""
  order = {name: i for i, name in enumerate(chrom_lengths)}
  placed = sorted((i for i, r in enumerate(rows) if r.chrom in order),
                  key=lambda i: (order[rows[i].chrom], rows[i].start, i))
  if not placed:
    raise UserError('--bigwig_dir: no row has coordinates on the genome (records '
                    'without sequences.bed, or --fasta alone): leave it out.')
  writer = pyBigWig.open(path, 'w')
  try:
    writer.addHeader(list(chrom_lengths.items()))
    last = (None, 0)
    for i in placed:
      row = rows[i]
      low = max(row.start, 0, last[1] if last[0] == row.chrom else 0)
      high = min(row.end, chrom_lengths[row.chrom])
      if high <= low:
        continue
      values = scores[i, low - row.start:high - row.start].astype(np.float64)
      writer.addEntries(row.chrom, low, values=values.tolist(), span=1, step=1)
      last = (row.chrom, high)
  finally:
    writer.close()


def summary(arrays, method):
  """The line the command ends with: how well the contributions add up."""
  total = arrays['contributions'].sum(axis=(1, 2))
  delta = arrays['readout'] - arrays['baseline']
  if method in ('ig', 'deepshap'):
    error = np.abs(total - delta) / np.maximum(np.abs(delta), 1e-12)
    return ('sum of contributions vs readout(x) - readout(baseline): median relative '
            'difference %.2g, largest %.2g' % (np.median(error), error.max()))
  return 'mean |contribution| per sequence %.3g' % np.abs(total).mean()
