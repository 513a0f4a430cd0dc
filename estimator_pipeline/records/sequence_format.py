"""basenji's sequence records: layout, decoder, writer, side files and checker.

Records are ZLIB-compressed tf.Examples with `sequence` (one bytes value: uint8 base
indices A0 C1 G2 T3 N4 of length L, or a one-hot [L, 4]) and `target` (float16 bytes
[target_length, num_targets], or a float list in older files). statistics.json beside
the records (basenji_data.py writes it) says which; without it the first record's byte
lengths and the params decide. targets.txt beside them names the tracks:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.records import sequence_format as s
  print(s.inspect_record('data/tfrecords/train-0.tfr'))"
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import dna
from estimator_pipeline.records import format as format_lib

COMPRESSION = 'ZLIB'
SEQUENCE_KEY = 'sequence'
TARGET_KEY = 'target'
STATISTICS_FILE = 'statistics.json'
TARGETS_FILE = 'targets.txt'
# basenji's targets table (basenji_data.py reads it, writes it beside the records).
TARGETS_COLUMNS = ('index', 'identifier', 'file', 'clip', 'clip_soft', 'scale',
                   'sum_stat', 'description')


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


def record_shape(example, path):
  """(RecordShape, None) of a parsed record, or (None, the problem)."""
  feature = example.features.feature
  missing = [key for key in (SEQUENCE_KEY, TARGET_KEY) if key not in feature]
  if missing:
    return None, ('missing key %s (it holds %s): not a basenji sequence record' % (
        ' and '.join(missing), ', '.join(sorted(feature)) or 'no key'))
  seq = feature[SEQUENCE_KEY].bytes_list.value
  if len(seq) != 1:
    return None, '%s is not one bytes value' % SEQUENCE_KEY
  target = feature[TARGET_KEY]
  if target.bytes_list.value:
    if len(target.bytes_list.value) != 1 or len(target.bytes_list.value[0]) % 2:
      return None, '%s is not one bytes value of float16s' % TARGET_KEY
    return RecordShape(path, len(seq[0]), len(target.bytes_list.value[0]) // 2,
                       True), None
  return RecordShape(path, len(seq[0]), len(target.float_list.value), False), None


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
  example, problem = format_lib.parse_example(raw.numpy())
  shape = None
  if example is not None:
    shape, problem = record_shape(example, path)
  if problem:
    raise UserError('%s: the first record: %s; these are not basenji sequence '
                    'records.' % (path, problem))
  return shape


def read_statistics(record_file):
  """statistics.json beside the records (or one level up, as basenji lays them out)."""
  path = file_beside(record_file, STATISTICS_FILE)
  if path is None:
    return None, None
  with tf.io.gfile.GFile(path) as f:
    try:
      return path, json.load(f)
    except json.JSONDecodeError as e:
      raise UserError('%s line %d column %d: %s.' % (path, e.lineno, e.colno, e.msg))


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

  def __init__(self, layout: SequenceLayout):
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
      sequence = dna.tf_one_hot(tf.reshape(codes, [lay.seq_length]))
    if lay.target_bytes:
      target = tf.cast(tf.io.decode_raw(parsed['target'], tf.float16), tf.float32)
    else:
      target = parsed['target']
    target = tf.reshape(target, [lay.target_length, lay.num_targets])
    return {'sequence': sequence, 'target': target}


def make_example(codes, targets):
  """A record in today's basenji layout: uint8 base indices [L], float16 [T, N]."""
  feature = {
      SEQUENCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[np.ascontiguousarray(codes, dtype=np.uint8).tobytes()])),
      TARGET_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[np.ascontiguousarray(targets, dtype=np.float16).tobytes()])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_statistics(path, statistics):
  """statistics.json as basenji_data.py writes it (indent 4)."""
  return files.atomic_write(path, json.dumps(statistics, indent=4) + '\n')


def file_beside(record_file, name):
  here = os.path.dirname(record_file)
  for directory in (here, os.path.dirname(here)):
    path = os.path.join(directory, name)
    if tf.io.gfile.exists(path):
      return path
  return None


def read_targets(path):
  """basenji's targets table -> list of {column: text} rows, in file order.

  The first column is the target index; basenji writes it unnamed (pandas' index),
  this project names it `index`: both read the same.
  """
  with tf.io.gfile.GFile(path) as f:
    rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
  if not rows:
    return []
  header = list(rows[0])
  if not header[0]:
    header[0] = 'index'
  return [dict(zip(header, row)) for row in rows[1:]]


def read_targets_table(path, required=('file',)):
  """basenji's targets table (the converter's, or a scorer's) -> [(line number,
  {column: text})]. Tab-separated with a header; the first column is the index
  (unnamed, as pandas writes it, or `index`); the `required` columns must be there.
  UserError for a missing file or column, or a line whose fields miscount."""
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      lines = [(n, line.rstrip('\r\n')) for n, line in enumerate(f, 1) if line.strip()]
  except OSError as e:
    raise UserError('cannot read --targets_file %s: %s' % (path, e.strerror)) from None
  header = lines[0][1].split('\t') if lines else ['']
  header[0] = header[0] or 'index'
  missing = [column for column in required if column not in header]
  if missing:
    raise UserError('--targets_file=%s has no %r column (its header: %r%s); '
                    'basenji\'s table has the columns %s' % (
                        path, missing[0], ' '.join(header)[:80],
                        '' if len(header) > 1 else ', not tab-separated?',
                        ', '.join(TARGETS_COLUMNS)))
  rows = [(number, line.split('\t')) for number, line in lines[1:]]
  for number, fields in rows:
    if len(fields) != len(header):
      raise UserError('--targets_file=%s line %d has %d tab-separated fields, its '
                      'header %d' % (path, number, len(fields), len(header)))
  if not rows:
    raise UserError('--targets_file=%s lists no target: add a line per target '
                    'under its header' % path)
  return [(n, {k: v.strip() for k, v in zip(header, fields)}) for n, fields in rows]


def target_names(record_file):
  """The identifiers of the targets.txt beside the records (or one level up), or None."""
  path = file_beside(record_file, TARGETS_FILE)
  if path is None:
    return None
  rows = read_targets(path)
  if not rows:
    return None
  return tuple(row.get('identifier', str(i)) for i, row in enumerate(rows))


def targets_text(rows):
  """The targets.txt of rows with TARGETS_COLUMNS keys."""
  lines = ['\t'.join(TARGETS_COLUMNS)]
  lines += ['\t'.join(str(row.get(column, '')) for column in TARGETS_COLUMNS)
            for row in rows]
  return '\n'.join(lines) + '\n'


class SequenceRecordChecker(format_lib.RecordChecker):
  """Checks basenji records one at a time against one layout.

  The layout is the one given, or statistics.json's beside the files, or else the
  first good record's: every later record must have the same lengths.
  """

  def __init__(self, layout=None, statistics=None):
    self.layout = layout
    self._statistics = statistics
    self._shape = None
    self.count = 0
    self._target_sum = None

  def check(self, raw):
    example, problem = format_lib.parse_example(raw)
    if problem:
      return problem
    shape, problem = record_shape(example, '')
    if problem:
      return problem
    problem = self._check_lengths(shape)
    if problem:
      return problem
    feature = example.features.feature
    codes = np.frombuffer(feature[SEQUENCE_KEY].bytes_list.value[0], np.uint8)
    if self._one_hot(shape):
      if codes.max(initial=0) > 1 or codes.reshape(-1, 4).sum(axis=1).max(initial=0) > 1:
        return '%s holds values that are not a one-hot [L, 4]' % SEQUENCE_KEY
    elif codes.max(initial=0) > dna.N_INDEX:
      return '%s holds base index %d (A0 C1 G2 T3 N4 only)' % (SEQUENCE_KEY,
                                                               codes.max())
    target = (np.frombuffer(feature[TARGET_KEY].bytes_list.value[0], np.float16)
              if shape.target_bytes else
              np.asarray(feature[TARGET_KEY].float_list.value, np.float32))
    if not np.all(np.isfinite(target)):
      return '%s holds NaN or Inf' % TARGET_KEY
    self.count += 1
    values = target.astype(np.float64).reshape(-1, self._num_targets(shape) or 1)
    total = values.sum(axis=0)
    self._target_sum = total if self._target_sum is None else self._target_sum + total
    return None

  def _one_hot(self, shape):
    if self.layout is not None:
      return self.layout.seq_1hot
    return shape.sequence_bytes == 4 * self._seq_length(shape)

  def _seq_length(self, shape):
    if self._statistics and 'seq_length' in self._statistics:
      return int(self._statistics['seq_length'])
    # basenji's old one-hot files hold 4 bytes a base; today's files one.
    return shape.sequence_bytes // 4 if not shape.target_bytes else shape.sequence_bytes

  def _num_targets(self, shape):
    if self.layout is not None:
      return self.layout.num_targets
    if self._statistics and 'num_targets' in self._statistics:
      return int(self._statistics['num_targets'])
    return None  # Unknown: a record's values are summed as one.

  def _check_lengths(self, shape):
    if self.layout is not None:
      want_seq = self.layout.seq_length * (4 if self.layout.seq_1hot else 1)
      want_target = self.layout.target_length * self.layout.num_targets
    else:
      if self._shape is None:
        self._shape = shape
      want_seq, want_target = self._shape.sequence_bytes, self._shape.target_values
    if shape.sequence_bytes != want_seq:
      return '%s is %d bytes, the other records %d' % (SEQUENCE_KEY,
                                                       shape.sequence_bytes, want_seq)
    if shape.target_values != want_target:
      return '%s holds %d values, the other records %d' % (TARGET_KEY,
                                                           shape.target_values,
                                                           want_target)
    return None

  def summary_lines(self):
    if not self.count:
      return []
    if self.layout is not None:
      lay = self.layout
      seq = '%d bp (%s)' % (lay.seq_length,
                            'one-hot bytes' if lay.seq_1hot else 'base indices')
      target = '%d bins x %d targets' % (lay.target_length, lay.num_targets)
    else:
      shape = self._shape
      seq_length = self._seq_length(shape)
      seq = '%d bp (%s)' % (seq_length, 'one-hot bytes' if self._one_hot(shape)
                            else 'base indices')
      num = self._num_targets(shape)
      target = ('%d bins x %d targets' % (shape.target_values // num, num)
                if num and shape.target_values % num == 0 else
                '%d values (no statistics.json says how many targets)'
                % shape.target_values)
    means = self._target_sum / max(1, self.count)
    return ['sequences: %s' % seq,
            'targets: %s; mean sum per record%s: %s' % (
                target, ' by target' if len(means) > 1 else '',
                ', '.join('%.4g' % m for m in means[:10]) +
                (' ...' if len(means) > 10 else ''))]


class SequenceFormat(format_lib.RecordFormat):
  """basenji's records: ZLIB, statistics.json and targets.txt beside them."""

  name = 'sequence'
  compression = COMPRESSION

  def matches(self, feature_keys):
    return SEQUENCE_KEY in feature_keys and TARGET_KEY in feature_keys

  def decoder(self, layout):
    return SequenceRecordDecoder(layout)

  def checker(self, files=(), layout=None, **unused):
    statistics = None
    if layout is None and files:
      _, statistics = read_statistics(files[0])
    return SequenceRecordChecker(layout=layout, statistics=statistics)


FORMAT = format_lib.register(SequenceFormat())
