r"""Which bases drive one target's prediction? Input x gradient from an export's saliency.

  python -m export.saliency --saved_model=runs/cage/export/best --fasta=genome.fa \
      --bed=peaks.bed --target_index=0 --output=scores.npz
  python -m export.saliency --saved_model=runs/cage/export/best \
      --records='data/tfrecords/test-*.tfr' --target_index=0 --output=scores.npz

--saved_model takes a version directory or its parent (the newest version is used).
Sequences come from one of:

- --fasta with --bed: each BED region centred in a window of the model's sequence
  length (as `records sequences` does); regions on unknown chromosomes or running past
  a chromosome's end are skipped and named on stderr;
- --fasta alone: every FASTA record, each exactly the model's sequence length;
- --records: basenji TFRecords; coordinates come from the sequences.bed that
  `records sequences` writes beside tfrecords/, when there is one.

The signature computes input x gradient of the chosen target's prediction summed over
the sequence, in batches of --batch_size. The .npz holds `names` [N] (chrom:start-end,
FASTA name or file:record), `chroms`, `starts`, `ends` [N] (empty string and -1 when
unknown), `bases` uint8 [N, L] (A0 C1 G2 T3 N4), `saliency` float32 [N, L, 4] and
`scores` float32 [N, L] (the saliency of the base present), and `target_index`.
"""

import glob
import os
import re

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
import numpy as np
import tensorflow as tf

import flags
from flags import common as flag_common
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import dna
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import sequence_output

SIGNATURE = 'saliency'

# define_own: the other sequence commands define --fasta, --bed, ... too, and every
# command module can be imported into one process (tests, a notebook).
_OWN = (
    (absl_flags.DEFINE_string, 'saved_model', '', 'SavedModel version directory, or '
     'the directory of versions whose newest one is used.'),
    (absl_flags.DEFINE_integer, 'batch_size', 16, 'Sequences sent to the model per '
     'call.'),
    (absl_flags.DEFINE_string, 'fasta', '', 'FASTA file (plain or gzipped) of the '
     'sequences, or of the genome when --bed is given.'),
    (absl_flags.DEFINE_string, 'bed', '', 'BED file of regions of --fasta; each is '
     'centred in a window of the model\'s sequence length.'),
    (absl_flags.DEFINE_string, 'records', '', 'Glob or comma list of basenji '
     'TFRecords to score instead of --fasta, e.g. data/tfrecords/test-*.tfr.'),
    (absl_flags.DEFINE_integer, 'target_index', 0, 'Index of the target (track) whose '
     'prediction the saliency explains, as in targets.txt.'),
    (absl_flags.DEFINE_string, 'output', '', 'The .npz file to write, e.g. '
     'scores.npz.'),
)
for _definer, _name, _default, _help in _OWN:
  flag_common.define_own(_definer, _name, _default, _help)


class SaliencyModel:
  """The `saliency` signature of an exported sequence model, with its shapes."""

  def __init__(self, saved_model):
    path = files.saved_model_version(saved_model)
    loaded = tf.saved_model.load(path)
    if SIGNATURE not in loaded.signatures:
      raise UserError('%s has no %r signature (it has %s): export a sequence model '
                      '(--model_name=seqnn) with this version of the pipeline.' % (
                          path, SIGNATURE, ', '.join(sorted(loaded.signatures))))
    self._loaded = loaded  # Keeps the variables alive.
    self._signature = loaded.signatures[SIGNATURE]
    self.path = path
    self.seq_length = int(self._signature.structured_outputs['scores'].shape[1])
    default = loaded.signatures.get(tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    self.num_targets = None
    if default is not None:
      shape = next(iter(default.structured_outputs.values())).shape
      if shape.rank == 3 and shape[2] is not None:
        self.num_targets = int(shape[2])

  def __call__(self, dna, target_index):
    """dna: list of strings of seq_length -> (saliency [n, L, 4], scores [n, L])."""
    try:
      out = self._signature(
          sequence=tf.constant(dna, tf.string),
          target_index=tf.fill([len(dna)], tf.constant(target_index, tf.int32)))
    except (tf.errors.OpError, ValueError) as e:
      raise UserError('the saliency signature of %s failed: %s' % (
          self.path, short_tf_message(e)))
    return out['saliency'].numpy(), out['scores'].numpy()


def fasta_sequences(fasta, bed, seq_length, warn=console.line):
  """Yields (name, chrom, start, end, uint8 bases [L]) for --fasta [with --bed]."""
  if not bed:
    for name, length, codes in genome_files.read_fasta(fasta):
      if length != seq_length:
        raise UserError('--fasta=%s: %s is %d bp, but the model takes %d; pass --bed '
                        'with regions to cut windows of %d bp from it' % (
                            fasta, name, length, seq_length, seq_length))
      yield name, name, 0, length, codes
    return
  regions = genome_files.read_bed(bed, by_fold=False)
  by_chrom = {}
  for region in regions:
    by_chrom.setdefault(region.chrom, []).append(region)
  found = set()
  for chrom, length, codes in genome_files.read_fasta(fasta, wanted=set(by_chrom)):
    found.add(chrom)
    for region in by_chrom.get(chrom, ()):
      start, end = genome_files.window_of(region, seq_length)
      if start < 0 or end > length:
        warn('skipped --bed line %d (%s:%d-%d): window %d-%d runs past %s (%d bp)' % (
            region.line, chrom, region.start, region.end, start, end, chrom, length))
        continue
      yield '%s:%d-%d' % (chrom, start, end), chrom, start, end, codes[start:end]
  for region in regions:
    if region.chrom not in found:
      warn('skipped --bed line %d (%s:%d-%d): %s is not in --fasta' % (
          region.line, region.chrom, region.start, region.end, region.chrom))


def record_sequences(pattern, seq_length):
  """Yields (name, chrom, start, end, uint8 bases [L]) for basenji --records."""
  files = _natural_sort({p for part in pattern.split(',') if part.strip()
                         for p in glob.glob(part.strip())})
  if not files:
    raise UserError('--records=%r matches no file.' % pattern)
  coordinates = _sequences_bed_rows(files)
  feature = {sequence_format.SEQUENCE_KEY: tf.io.FixedLenFeature([], tf.string)}
  for path in files:
    split = _split_of(path)
    try:
      for index, raw in enumerate(tf.data.TFRecordDataset(
          path, compression_type=sequence_format.COMPRESSION)):
        data = np.frombuffer(tf.io.parse_single_example(
            raw, feature)[sequence_format.SEQUENCE_KEY].numpy(), dtype=np.uint8)
        if len(data) == seq_length:
          codes = data
        elif len(data) == 4 * seq_length:  # one-hot [L, 4]; all zeros is N
          codes = dna.one_hot_indices(data.reshape(seq_length, 4))
        else:
          raise UserError('%s record %d: sequence is %d bytes, but the model takes %d '
                          'bp (%d bytes, or %d one-hot)' % (
                              path, index, len(data), seq_length, seq_length,
                              4 * seq_length))
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


def compute_saliency(model, items, target_index, batch_size=16):
  """items: (name, chrom, start, end, bases) tuples -> dict of arrays for the .npz."""
  if model.num_targets is not None and not 0 <= target_index < model.num_targets:
    raise UserError('--target_index=%d is out of range: the model predicts %d targets '
                    '(0 to %d)' % (target_index, model.num_targets,
                                   model.num_targets - 1))
  if batch_size < 1:
    raise UserError('--batch_size=%d must be positive' % batch_size)
  meta, bases, saliency, scores = [], [], [], []
  batch = []

  def flush():
    texts = [dna.text(b) for _, _, _, _, b in batch]
    s, c = model(texts, target_index)
    saliency.append(s)
    scores.append(c)
    batch.clear()

  for item in items:
    meta.append(item[:4])
    bases.append(item[4])
    batch.append(item)
    if len(batch) == batch_size:
      flush()
  if batch:
    flush()
  if not meta:
    raise UserError('no sequence to score: every region was skipped')
  length = model.seq_length
  return {
      'names': np.array([m[0] for m in meta]),
      'chroms': np.array([m[1] for m in meta]),
      'starts': np.array([m[2] for m in meta], dtype=np.int64),
      'ends': np.array([m[3] for m in meta], dtype=np.int64),
      'bases': np.stack(bases).astype(np.uint8).reshape(len(meta), length),
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


def _sequences_bed_rows(files):
  """{split: [(chrom, start, end)]} from sequences.bed above tfrecords/, or None."""
  parent = os.path.dirname(os.path.dirname(os.path.abspath(files[0])))
  path = os.path.join(parent, sequence_output.SEQUENCES_FILE)
  if not os.path.exists(path) or any(_split_of(f) is None for f in files):
    return None
  rows = {}
  with open(path) as f:
    for line in f:
      fields = line.split()
      if len(fields) >= 4:
        rows.setdefault(fields[3], []).append((fields[0], int(fields[1]),
                                               int(fields[2])))
  # Only whole splits line up with sequences.bed, read from their first file.
  for split in {_split_of(f) for f in files}:
    names = [os.path.basename(f) for f in files if _split_of(f) == split]
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


def main(argv):
  del argv
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  if not FLAGS.saved_model:
    raise UserError('--saved_model is required, e.g. --saved_model=runs/x/export/best')
  if not FLAGS.output:
    raise UserError('--output is required: the .npz file to write, e.g. '
                    '--output=scores.npz')
  if bool(FLAGS.fasta) == bool(FLAGS.records):
    raise UserError('give exactly one of --fasta (with or without --bed) and --records')
  if FLAGS.bed and not FLAGS.fasta:
    raise UserError('--bed needs --fasta, the genome its regions are on')
  model = SaliencyModel(FLAGS.saved_model)
  if FLAGS.fasta:
    items = fasta_sequences(FLAGS.fasta, FLAGS.bed, model.seq_length)
  else:
    items = record_sequences(FLAGS.records, model.seq_length)
  arrays = compute_saliency(model, items, FLAGS.target_index, FLAGS.batch_size)
  write_npz(FLAGS.output, arrays)
  console.line('wrote saliency of target %d for %d sequences of %d bp to %s' % (
      FLAGS.target_index, len(arrays['names']), model.seq_length, FLAGS.output))


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
