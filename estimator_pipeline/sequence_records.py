"""basenji sequence records: the layout of a file set, and the decoder for one record.

Records are ZLIB-compressed tf.Examples with `sequence` (one bytes value: uint8 base
indices A0 C1 G2 T3 N4 of length L, or a one-hot [L, 4]) and `target` (float16 bytes
[target_length, num_targets], or a float list in older files). statistics.json beside
the records (basenji_data.py writes it) says which; without it the first record's byte
lengths and the params decide:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import sequence_records as s
  print(s.inspect_record('data/tfrecords/train-0.tfr'))"
"""

import dataclasses
import json
import os
from typing import Optional

import tensorflow as tf

from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message

COMPRESSION = 'ZLIB'
STATISTICS_FILE = 'statistics.json'


@dataclasses.dataclass(frozen=True)
class SequenceLayout:
  seq_length: int
  seq_1hot: bool  # one-hot [L, 4] bytes, else uint8 base indices [L]
  target_length: int
  num_targets: int
  target_bytes: bool  # float16 bytes, else a float list (older files)


@dataclasses.dataclass(frozen=True)
class RecordShape:
  """What the first record of a file holds, in bytes and values."""
  path: str
  sequence_bytes: int
  target_values: int  # float16 values or floats
  target_bytes: bool


def inspect_record(path):
  """The byte lengths of a file's first record (ZLIB-compressed tf.Example)."""
  try:
    raw = next(iter(tf.data.TFRecordDataset(path, compression_type=COMPRESSION)
                    .take(1)), None)
  except tf.errors.OpError as e:
    raise UserError('%s cannot be read as ZLIB-compressed basenji records (%s): '
                    're-create it with `python -m estimator_pipeline.records '
                    'sequences`.' % (path, short_tf_message(e)))
  if raw is None:
    raise UserError('%s holds no record.' % path)
  example = tf.train.Example.FromString(raw.numpy())
  feature = example.features.feature
  for key in ('sequence', 'target'):
    if key not in feature:
      raise UserError('%s: the first record has no %r feature (it has %s): these are '
                      'not basenji sequence records.'
                      % (path, key, ', '.join(sorted(feature)) or 'none'))
  seq = feature['sequence'].bytes_list.value
  if len(seq) != 1:
    raise UserError('%s: the first record\'s sequence is not one bytes value.' % path)
  target = feature['target']
  if target.bytes_list.value:
    return RecordShape(path, len(seq[0]), len(target.bytes_list.value[0]) // 2, True)
  return RecordShape(path, len(seq[0]), len(target.float_list.value), False)


def read_statistics(record_file):
  """statistics.json beside the records (or one level up, as basenji lays them out)."""
  here = os.path.dirname(record_file)
  for directory in (here, os.path.dirname(here)):
    path = os.path.join(directory, STATISTICS_FILE)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        try:
          return path, json.load(f)
        except json.JSONDecodeError as e:
          raise UserError('%s line %d column %d: %s.' % (path, e.lineno, e.colno,
                                                          e.msg))
  return None, None


def layout_from_statistics(stats_path, stats, shape):
  """The layout statistics.json gives, checked against the first record."""
  for key in ('seq_length', 'target_length', 'num_targets'):
    if key not in stats:
      raise UserError('%s has no %r: re-create it with the records.'
                      % (stats_path, key))
  seq_length = int(stats['seq_length'])
  # basenji's statistics.json says seq_1hot: true when records hold base indices [L]
  # (its dataset.py one-hots them on reading), and leaves it out or false for one-hot
  # [L, 4] bytes; SequenceLayout.seq_1hot means the latter. The byte length settles it.
  if shape.sequence_bytes in (seq_length, 4 * seq_length):
    onehot_bytes = shape.sequence_bytes == 4 * seq_length
  else:
    onehot_bytes = not stats.get('seq_1hot', False)
  layout = SequenceLayout(
      seq_length=seq_length, seq_1hot=onehot_bytes,
      target_length=int(stats['target_length']), num_targets=int(stats['num_targets']),
      target_bytes=shape.target_bytes)
  check_record(layout, shape, stats_path)
  return layout


def check_record(layout, shape, source):
  want_seq = layout.seq_length * (4 if layout.seq_1hot else 1)
  if shape.sequence_bytes != want_seq:
    raise UserError(
        '%s: sequence is %d bytes, but %s says %d (seq_length %d%s): the records and '
        '%s disagree; re-create them together.' % (
            shape.path, shape.sequence_bytes, source, want_seq, layout.seq_length,
            ', one-hot' if layout.seq_1hot else '', source))
  want_target = layout.target_length * layout.num_targets
  if shape.target_values != want_target:
    raise UserError(
        '%s: target holds %d values, but %s says %d (target_length %d x num_targets '
        '%d).' % (shape.path, shape.target_values, source, want_target,
                  layout.target_length, layout.num_targets))


def sequence_candidates(shape):
  """Sequence lengths the first record's bytes allow: (L, one-hot) pairs."""
  candidates = []
  if shape.sequence_bytes % 4 == 0:
    candidates.append((shape.sequence_bytes // 4, True))
  candidates.append((shape.sequence_bytes, False))
  # Older files (float-list targets) wrote one-hot; today's write base indices.
  candidates.sort(key=lambda c: c[1] != (not shape.target_bytes))
  return candidates


class SequenceRecordDecoder:
  """Decodes one serialized basenji tf.Example to float32 sequence and target."""

  layout = 'sequence'
  compression_type = COMPRESSION

  def __init__(self, layout: Optional[SequenceLayout] = None):
    if layout is None:
      raise ValueError('a SequenceRecordDecoder needs the SequenceLayout')
    self._layout = layout
    target_values = layout.target_length * layout.num_targets
    self._features = {
        'sequence': tf.io.FixedLenFeature([], tf.string),
        'target': (tf.io.FixedLenFeature([], tf.string) if layout.target_bytes else
                   tf.io.FixedLenFeature([target_values], tf.float32)),
    }

  def decode(self, serialized):
    """-> {'sequence': float32 [L, 4], 'target': float32 [T, N]}."""
    lay = self._layout
    parsed = tf.io.parse_single_example(serialized, self._features)
    codes = tf.io.decode_raw(parsed['sequence'], tf.uint8)
    if lay.seq_1hot:
      sequence = tf.cast(tf.reshape(codes, [lay.seq_length, 4]), tf.float32)
    else:
      # one_hot of index 4 (N) is all zeros, as basenji decodes it.
      sequence = tf.one_hot(tf.cast(tf.reshape(codes, [lay.seq_length]), tf.int32),
                            4, dtype=tf.float32)
    if lay.target_bytes:
      target = tf.cast(tf.io.decode_raw(parsed['target'], tf.float16), tf.float32)
    else:
      target = parsed['target']
    target = tf.reshape(target, [lay.target_length, lay.num_targets])
    return {'sequence': sequence, 'target': target}
