r"""Predictions over BED regions (basenji_predict_bed.py): preds.h5 and bigWig tracks.

  python -m export.predict --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --bed=regions.bed --output=preds.h5 \
      --bigwig_dir=tracks/ --targets_file=targets.txt

Each region is centred in a window of the model's length, N past a chromosome's end
(analysis/windows.py has the rule, basenji's). The windows are built on a second
thread while the network runs. preds.h5 holds `preds` (float16 [regions, bins,
targets]) and the coordinates its bins cover, `chrom`, `start`, `end`, centred on each
region. With a targets table only its targets are kept, in its order (no untransform,
as basenji's predict script); with Borzoi's strand_pair column each strand stays its
own track, swapped in a reverse-complement ensemble (as baskerville's
hound_predbed.py). With --bigwig_dir one bigWig per target, named by its
identifier, holds every region's bins; where regions overlap the earlier region's bins
stay.
"""

import os
import shutil
import tempfile

import h5py
import numpy as np
import pyBigWig

from estimator_pipeline.analysis import windows
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index


def check_inputs(fasta, bed, output, targets_file=''):
  """What needs no model, checked before one is loaded."""
  if not (fasta and bed and output):
    raise UserError('sequence predictions need --fasta, --bed and --output=preds.h5 '
                    'together.')
  for flag, path in (('fasta', fasta), ('bed', bed), ('targets_file', targets_file)):
    if path and not os.path.isfile(path):
      raise UserError('--%s=%s is not a file.' % (flag, path))
  if not output.endswith('.h5'):
    raise UserError('--output=%s: name the .h5 file to write, e.g. preds.h5' % output)


def region_batches(genome, bed, seq_length, batch_size, skipped):
  """Yields ([Region], one-hot [n, L, 4]) of the BED's windows (windows.bed_windows);
  appends (Region, reason) of the regions skipped to skipped."""
  regions, codes = [], []
  for window in windows.bed_windows(genome, bed, seq_length, skipped):
    regions.append(window.region)
    codes.append(window.codes)
    if len(regions) >= batch_size:
      yield regions, dna.one_hot(np.stack(codes))
      regions, codes = [], []
  if regions:
    yield regions, dna.one_hot(np.stack(codes))


def predict_regions(model, fasta, bed, output, bigwig_dir='', bin_size=0):
  """Writes output (preds.h5) and, with bigwig_dir, a bigWig per target of
  model.targets (model_source.load's targets_file, or all of the model's).

  bin_size: bp per predicted bin; 0 takes seq_length // bins (a model that does not
  crop). Returns (regions written, [(Region, reason) skipped]).
  """
  check_inputs(fasta, bed, output)
  bin_size = bin_size or model.seq_length // model.bins
  span = bin_size * model.bins
  if span > model.seq_length:
    raise UserError('--bin_size=%d: %d bins of it span %d bp, more than the model\'s '
                    '%d bp window' % (bin_size, model.bins, span, model.seq_length))
  index = list(model.targets.index) if model.targets.path else None
  ids = list(model.targets.ids)
  scratch = tempfile.mkdtemp(prefix='regions-')
  skipped = []
  try:
    genome = fasta_index.open_genome(fasta, scratch)
    h5_path = os.path.join(scratch, 'preds.h5')
    rows = _write_h5(model, genome, bed, h5_path, index, span, skipped)
    if not rows:
      raise UserError('--bed=%s: no region is on a chromosome of --fasta=%s (first: '
                      '%s)' % (bed, fasta, skipped[0][1] if skipped else 'none'))
    tracks = []
    if bigwig_dir:
      tracks = _write_bigwigs(h5_path, genome, ids, bin_size, scratch)
    _publish(h5_path, output, tracks, bigwig_dir)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  for region, reason in skipped:
    console.line('skipped --bed %s: %s' % (windows.describe(region), reason))
  console.line('Wrote predictions of %d regions to %s%s%s.' % (
      rows, output, ' and %d bigWig tracks to ' % len(ids) if bigwig_dir else '',
      bigwig_dir))
  return rows, skipped


def _write_h5(model, genome, bed, path, index, span, skipped):
  chroms, starts, ends = [], [], []
  targets = len(index) if index is not None else model.num_targets
  with h5py.File(path, 'w') as h5, console.Progress(
      0, 'predicting regions', unit='region') as progress:
    preds = h5.create_dataset('preds', shape=(0, model.bins, targets),
                              maxshape=(None, model.bins, targets),
                              chunks=(64, model.bins, targets), dtype=np.float16,
                              track_times=False)
    batches = region_batches(genome, bed, model.seq_length, model.batch_size, skipped)
    for regions, values in model.predict_pairs(batches):
      if index is not None:
        values = values[..., index]
      first = preds.shape[0]
      preds.resize(first + len(regions), axis=0)
      preds[first:] = values.astype(np.float16)
      for region in regions:
        start = (region.start + region.end) // 2 - span // 2
        chroms.append(region.chrom)
        starts.append(start)
        ends.append(start + span)
      progress.update(len(regions))
    h5.create_dataset('chrom', data=np.array(chroms, 'S'), track_times=False)
    h5.create_dataset('start', data=np.array(starts, np.int64), track_times=False)
    h5.create_dataset('end', data=np.array(ends, np.int64), track_times=False)
  return len(chroms)


def _write_bigwigs(h5_path, genome, ids, bin_size, scratch):
  """One bigWig per target: every region's bins inside its chromosome, in genome
  order; a bin that overlaps one already written (overlapping regions) is left out."""
  order = {name: i for i, name in enumerate(genome.lengths)}
  with h5py.File(h5_path, 'r') as h5:
    chroms = [c.decode() for c in h5['chrom'][()]]
    starts = h5['start'][()]
    rows = sorted(range(len(chroms)), key=lambda r: (order[chroms[r]], starts[r], r))
    bins = h5['preds'].shape[1]
    entries = []  # (row, bin, chrom, start)
    last = (None, 0)
    for row in rows:
      chrom, length = chroms[row], genome.lengths[chroms[row]]
      for b in range(bins):
        start = int(starts[row]) + b * bin_size
        if start < 0 or start + bin_size > length:
          continue
        if last[0] == chrom and start < last[1]:
          continue
        entries.append((row, b, chrom, start))
        last = (chrom, start + bin_size)
    tracks = []
    for t, identifier in enumerate(ids):
      values = h5['preds'][:, :, t].astype(np.float64)
      path = os.path.join(scratch, '%s.bw' % _file_name(identifier))
      writer = pyBigWig.open(path, 'w')
      writer.addHeader(list(genome.lengths.items()))
      if entries:
        writer.addEntries([e[2] for e in entries], [e[3] for e in entries],
                          ends=[e[3] + bin_size for e in entries],
                          values=[float(values[e[0], e[1]]) for e in entries])
      writer.close()
      tracks.append(path)
  return tracks


def _file_name(identifier):
  return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in identifier)


def _publish(h5_path, output, tracks, bigwig_dir):
  directory = os.path.dirname(os.path.abspath(output))
  files.make_output_dir(directory, '--output')
  with files.atomic_path(output) as tmp:
    shutil.copyfile(h5_path, tmp)
  if bigwig_dir:
    files.make_output_dir(bigwig_dir, '--bigwig_dir')
    for track in tracks:
      with files.atomic_path(os.path.join(bigwig_dir,
                                          os.path.basename(track))) as tmp:
        shutil.copyfile(track, tmp)
