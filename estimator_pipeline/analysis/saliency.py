r"""Which bases drive one target's prediction: input x gradient, per base, to an .npz.

  python -m export.saliency --saved_model=runs/cage/export/best --fasta=genome.fa \
      --bed=peaks.bed --target_index=0 --output=scores.npz

The model (model_source.load, with saliency=True) gives input x gradient of the
chosen target's prediction summed over bins, --batch_size sequences a call. Sequences
come from one of:

- a FASTA with a BED: each region's window (analysis/windows.py: centred, N past a
  chromosome's end); regions on chromosomes the FASTA lacks are skipped and named;
- a FASTA alone: every record, each exactly the model's sequence length;
- basenji TFRecords; coordinates come from the sequences.bed that `records sequences`
  writes beside tfrecords/, when there is one.

The .npz holds `names` [N] (chrom:start-end, FASTA name or file:record), `chroms`,
`starts`, `ends` [N] (empty string and -1 when unknown), `bases` uint8 [N, L] (A0 C1
G2 T3 N4), `saliency` float32 [N, L, 4] and `scores` float32 [N, L] (the saliency of
the base present), and `target_index`.
"""

import glob
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import windows
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import sequence_output


def check_inputs(output, fasta='', bed='', records=''):
  """What needs no model, checked before one is loaded."""
  if not output:
    raise UserError('--output is required: the .npz file to write, e.g. '
                    '--output=scores.npz')
  if bool(fasta) == bool(records):
    raise UserError('give exactly one of --fasta (with or without --bed) and --records')
  if bed and not fasta:
    raise UserError('--bed needs --fasta, the genome its regions are on')
  folder = os.path.dirname(os.path.abspath(output))
  if not os.path.isdir(folder):
    raise UserError('--output=%s: folder %s does not exist' % (output, folder))


def run(model, output, target_index, fasta='', bed='', records=''):
  """Scores every sequence of fasta (with bed) or records; writes output (.npz).

  Returns the arrays written.
  """
  check_inputs(output, fasta, bed, records)
  model.check_target(target_index)
  scratch = tempfile.mkdtemp(prefix='saliency-')
  skipped = []
  try:
    if bed:
      items = bed_sequences(fasta_index.open_genome(fasta, scratch), bed,
                            model.seq_length, skipped)
    elif fasta:
      items = fasta_sequences(fasta, model.seq_length)
    else:
      items = record_sequences(records, model.seq_length)
    arrays = compute_saliency(model, items, target_index, skipped)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  for region, reason in skipped:
    console.line('skipped --bed %s: %s' % (windows.describe(region), reason))
  write_npz(output, arrays)
  console.line('wrote saliency of target %d for %d sequences of %d bp to %s' % (
      target_index, len(arrays['names']), model.seq_length, output))
  return arrays


def bed_sequences(genome, bed, seq_length, skipped):
  """Yields (name, chrom, start, end, uint8 bases [L]) per window of bed."""
  for window in windows.bed_windows(genome, bed, seq_length, skipped):
    chrom = window.region.chrom
    yield ('%s:%d-%d' % (chrom, window.start, window.end), chrom, window.start,
           window.end, window.codes)


def fasta_sequences(fasta, seq_length):
  """Yields (name, name, 0, length, uint8 bases [L]) per FASTA record."""
  for name, length, codes in genome_files.read_fasta(fasta):
    if length != seq_length:
      raise UserError('--fasta=%s: %s is %d bp, but the model takes %d; pass --bed '
                      'with regions to cut windows of %d bp from it' % (
                          fasta, name, length, seq_length, seq_length))
    yield name, name, 0, length, codes


def record_sequences(pattern, seq_length):
  """Yields (name, chrom, start, end, uint8 bases [L]) for basenji --records."""
  paths = _natural_sort({p for part in pattern.split(',') if part.strip()
                         for p in glob.glob(part.strip())})
  if not paths:
    raise UserError('--records=%r matches no file.' % pattern)
  coordinates = _sequences_bed_rows(paths)
  feature = {sequence_format.SEQUENCE_KEY: tf.io.FixedLenFeature([], tf.string)}
  for path in paths:
    split = _split_of(path)
    try:
      for index, raw in enumerate(tf.data.TFRecordDataset(
          path, compression_type=sequence_format.COMPRESSION)):
        data = np.frombuffer(tf.io.parse_single_example(
            raw, feature)[sequence_format.SEQUENCE_KEY].numpy(), dtype=np.uint8)
        codes = _codes(data, seq_length, path, index)
        row = None
        if coordinates is not None and split in coordinates:
          row = coordinates[split].pop(0) if coordinates[split] else None
        if row:
          chrom, start, end = row
          yield '%s:%d-%d' % (chrom, start, end), chrom, start, end, codes
        else:
          yield '%s:%d' % (os.path.basename(path), index), '', -1, -1, codes
    except tf.errors.OpError as e:
      raise UserError('%s cannot be read as ZLIB-compressed basenji records (%s)' % (
          path, short_tf_message(e)))


def _codes(data, seq_length, path, index):
  """A record's sequence bytes -> base indices [L]."""
  if len(data) == seq_length:
    return data
  if len(data) == 4 * seq_length:  # one-hot [L, 4]; all zeros is N
    return dna.one_hot_indices(data.reshape(seq_length, 4))
  raise UserError('%s record %d: sequence is %d bytes, but the model takes %d bp (%d '
                  'bytes, or %d one-hot)' % (path, index, len(data), seq_length,
                                             seq_length, 4 * seq_length))


def compute_saliency(model, items, target_index, skipped=()):
  """items: (name, chrom, start, end, bases) tuples -> dict of arrays for the .npz.

  model: a sequence_model.SequenceModel; model.batch_size sequences per call.
  skipped: the (Region, reason) of regions left out, for the message when none is
  left.
  """
  model.check_target(target_index)
  meta, bases, saliency, scores = [], [], [], []
  batch = []

  def flush():
    s, c = model.saliency(dna.one_hot(np.stack(batch)), target_index)
    saliency.append(s)
    scores.append(c)
    batch.clear()

  for item in items:
    meta.append(item[:4])
    bases.append(item[4])
    batch.append(item[4])
    if len(batch) == model.batch_size:
      flush()
  if batch:
    flush()
  if not meta:
    first = (' (first: %s: %s)' % (windows.describe(skipped[0][0]), skipped[0][1])
             if skipped else '')
    raise UserError('no sequence to score: every region was skipped%s' % first)
  return {
      'names': np.array([m[0] for m in meta]),
      'chroms': np.array([m[1] for m in meta]),
      'starts': np.array([m[2] for m in meta], dtype=np.int64),
      'ends': np.array([m[3] for m in meta], dtype=np.int64),
      'bases': np.stack(bases).astype(np.uint8).reshape(len(meta), model.seq_length),
      'saliency': np.concatenate(saliency).astype(np.float32),
      'scores': np.concatenate(scores).astype(np.float32),
      'target_index': np.int32(target_index),
  }


def write_npz(path, arrays):
  """Writes arrays to path atomically (a temporary file beside it, then a rename)."""
  folder = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(folder):
    raise UserError('--output=%s: folder %s does not exist' % (path, folder))
  with files.atomic_open(path, 'wb') as f:
    np.savez_compressed(f, **arrays)


def _sequences_bed_rows(paths):
  """{split: [(chrom, start, end)]} from sequences.bed above tfrecords/, or None."""
  parent = os.path.dirname(os.path.dirname(os.path.abspath(paths[0])))
  path = os.path.join(parent, sequence_output.SEQUENCES_FILE)
  if not os.path.exists(path) or any(_split_of(f) is None for f in paths):
    return None
  rows = {}
  with open(path) as f:
    for line in f:
      fields = line.split()
      if len(fields) >= 4:
        rows.setdefault(fields[3], []).append((fields[0], int(fields[1]),
                                               int(fields[2])))
  # Only whole splits line up with sequences.bed, read from their first file.
  for split in {_split_of(f) for f in paths}:
    names = [os.path.basename(f) for f in paths if _split_of(f) == split]
    if names[0] != '%s-0.tfr' % split:
      rows.pop(split, None)
  return rows


def _split_of(path):
  match = re.match(r'^(\w+)-(\d+)\.tfr$', os.path.basename(path))
  return match.group(1) if match else None


def _natural_sort(paths):
  def key(path):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', path)]
  return sorted(paths, key=key)
