r"""Reads every record of TFRecord files and reports what they hold and what is wrong.

  python -m estimator_pipeline.records inspect 'data/train-*.tfrecord'
  python -m estimator_pipeline.records inspect 'data/*.tfrecord' --num_classes=5

For each file: records and compression (detected: uncompressed, ZLIB or GZIP). For
image records: counts per label, image formats (from the bytes, not image/format) and
sizes. Every bad record is named by file and index (0-based): a truncated file, a bad
CRC, bytes that are not a tf.train.Example, a missing key, a label out of range or of
the wrong type, an image that does not decode. After a bad CRC the rest of an
uncompressed file is still read (its framing is checked here in Python); a truncated
file, a corrupt length header or a compressed stream ends at the bad record.

A record layout (decoders.py) plugs in with a checker class in `CHECKERS`: it checks one
serialized record and keeps the layout's statistics. `train.py --validate_data` runs
the same inspection over the training and evaluation files before training, and
preflight checks the first record of every file the same way.
"""

import collections
import dataclasses
import os
import re
import struct
from typing import List, Optional

import tensorflow as tf

from estimator_pipeline import decoders
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message

# How many bad records a report lists; the count covers all of them.
MAX_LISTED = 50
COMPRESSIONS = ('NONE', 'ZLIB', 'GZIP')
_TF_OFFSET = re.compile(r'(corrupted|truncated) record at (\d+)')
_HEADER = struct.Struct('<QI')


def _crc32c_table():
  table = []
  for i in range(256):
    crc = i
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    table.append(crc)
  return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c(data):
  """TFRecord's masked CRC-32C. Pure Python: used only past a bad record."""
  crc = 0xFFFFFFFF
  table = _CRC_TABLE
  for byte in data:
    crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  crc ^= 0xFFFFFFFF
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


@dataclasses.dataclass
class BadRecord:
  path: str
  index: int
  problem: str

  def text(self):
    return '%s record %d: %s' % (self.path, self.index, self.problem)


@dataclasses.dataclass
class FileSummary:
  path: str
  records: int = 0
  compression: str = 'NONE'


def _sniff(data):
  if data.startswith(b'\xff\xd8\xff'):
    return 'jpeg'
  if data.startswith(b'\x89PNG\r\n\x1a\n'):
    return 'png'
  if data[:6] in (b'GIF87a', b'GIF89a'):
    return 'gif'
  if data.startswith(b'BM'):
    return 'bmp'
  return ''


def _feature_kind(feature):
  return feature.WhichOneof('kind')


class ImageRecordChecker:
  """Checks slim image records (decoders.ImageRecordDecoder's keys) one at a time."""

  layout = 'image'

  def __init__(self, num_classes=None):
    self.num_classes = num_classes or None
    self.labels = collections.Counter()
    self.formats = collections.Counter()
    self.sizes = collections.Counter()
    self._keys = decoders.IMAGE_KEYS

  def check(self, raw):
    """One serialized record -> a problem sentence, or None if the record is good."""
    try:
      example = tf.train.Example.FromString(raw)
    except Exception:  # pylint: disable=broad-except
      # protobuf raises DecodeError, or RuntimeError from its C++ implementation.
      return 'not a tf.train.Example (%d bytes starting %r)' % (len(raw), raw[:16])
    feature = example.features.feature
    encoded_key, label_key = self._keys['encoded'], self._keys['label']
    missing = [k for k in (encoded_key, label_key) if k not in feature]
    if missing:
      return 'missing key %s (it holds %s)' % (' and '.join(missing),
                                              ', '.join(sorted(feature)) or 'no key')
    label_feature = feature[label_key]
    if _feature_kind(label_feature) != 'int64_list':
      values = getattr(label_feature, _feature_kind(label_feature) or 'bytes_list').value
      return ('%s is %s %r, not an integer class id: write the class index (labels.txt '
              'names it)' % (label_key, 'a string' if _feature_kind(label_feature) ==
                             'bytes_list' else 'a float', list(values)[:1]))
    if len(label_feature.int64_list.value) != 1:
      return '%s holds %d values, not one' % (label_key,
                                               len(label_feature.int64_list.value))
    label = int(label_feature.int64_list.value[0])
    if label < 0 or (self.num_classes and label >= self.num_classes):
      return 'label %d is outside [0, %s)' % (label, self.num_classes or '...')
    encoded_feature = feature[encoded_key]
    if (_feature_kind(encoded_feature) != 'bytes_list' or
        len(encoded_feature.bytes_list.value) != 1):
      return '%s is not one bytes value' % encoded_key
    data = encoded_feature.bytes_list.value[0]
    kind = _sniff(data)
    if not kind:
      return ('%s is not an image (not JPEG, PNG, GIF or BMP; it starts %r)'
              % (encoded_key, data[:16]))
    try:
      shape = tf.io.decode_image(data, channels=3, expand_animations=False).shape
    except (tf.errors.OpError, ValueError) as e:
      return 'the %s image in %s does not decode (%s)' % (kind.upper(), encoded_key,
                                                          short_tf_message(e)[:120])
    self.labels[label] += 1
    self.formats[kind] += 1
    self.sizes['%dx%d' % (int(shape[1]), int(shape[0]))] += 1
    return None

  def summary_lines(self):
    lines = []
    if self.labels:
      lines.append('labels: %s' % ', '.join('%d: %d' % (k, v)
                                             for k, v in sorted(self.labels.items())))
      if self.num_classes:
        empty = [c for c in range(self.num_classes) if not self.labels[c]]
        if empty:
          lines.append('classes without records: %s' % ', '.join(map(str, empty[:20])))
    if self.formats:
      lines.append('formats: %s' % ', '.join('%s %d' % kv
                                              for kv in self.formats.most_common()))
    if self.sizes:
      top = self.sizes.most_common(5)
      more = len(self.sizes) - len(top)
      lines.append('sizes (width x height): %s%s' % (
          ', '.join('%s %d' % kv for kv in top),
          ' and %d other sizes' % more if more > 0 else ''))
    return lines


# layout name (decoders.py) -> checker class. A layout without a checker is inspected
# for framing only.
CHECKERS = {'image': ImageRecordChecker}


def checker_for(layout, num_classes=None):
  if layout not in CHECKERS:
    raise UserError('no record checker for layout %r; known: %s'
                    % (layout, ', '.join(sorted(CHECKERS))))
  return CHECKERS[layout](num_classes=num_classes)


def default_compression(layout):
  """The compression the layout's decoder reads ('NONE' for slim image records)."""
  try:
    return decoders.get_decoder(layout).compression_type or 'NONE'
  except ValueError:
    return 'NONE'


def _tf_compression(name):
  return None if name in (None, 'NONE', '') else name


def _first_record(path, compression):
  """(True, record or None if empty) or (False, problem) reading path as compression."""
  try:
    for raw in tf.data.TFRecordDataset(path, compression_type=_tf_compression(
        compression)).take(1):
      return True, raw.numpy()
    return True, None
  except tf.errors.OpError as e:
    return False, short_tf_message(e)


def detect_compression(path, expected='NONE'):
  """The compression path reads as, trying `expected` first; None if none works."""
  order = [expected] + [c for c in COMPRESSIONS if c != expected]
  for compression in order:
    ok, record = _first_record(path, compression)
    # An empty read as ZLIB proves nothing: a few random bytes inflate to nothing.
    if ok and (record is not None or compression == 'NONE'):
      return compression
  return None


def check_readable(path, expected='NONE', fix=None):
  """Raises UserError unless path opens as TFRecords of the expected compression.

  fix: what the message tells the user to do when the file reads as another
  compression (default: re-write it with the expected one).
  """
  if os.path.isdir(path):
    raise UserError('record file %s is a directory: pass a glob of the record files in '
                    "it, e.g. '%s'" % (path, os.path.join(path, '*.tfrecord')))
  ok, problem = _first_record(path, expected)
  if ok:
    return
  actual = detect_compression(path, expected)
  if actual:
    raise UserError('record file %s is %s TFRecords, but it is read as %s ones: %s' % (
        path, describe_compression(actual), describe_compression(expected),
        fix or 're-write it %s' % describe_compression(expected)))
  raise UserError('record file %s is not a TFRecord file (%s): re-create it, or leave '
                  'it out of the glob' % (path, problem))


def describe_compression(compression):
  return 'uncompressed' if compression in (None, 'NONE') else '%s-compressed' % (
      compression)


def _python_records(path, offset, index):
  """(index, raw or None, problem or None) from byte `offset` on, framing in Python."""
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    f.seek(offset)
    while offset < size:
      header = f.read(_HEADER.size)
      if len(header) < _HEADER.size:
        yield index, None, 'truncated: the file ends inside a record header'
        return
      length, length_crc = _HEADER.unpack(header)
      if masked_crc32c(header[:8]) != length_crc:
        yield index, None, ('corrupt length header at byte %d; the remaining %d bytes '
                            'cannot be read as records' % (offset, size - offset))
        return
      data = f.read(length)
      crc = f.read(4)
      if len(data) < length or len(crc) < 4:
        yield index, None, ('truncated: the record needs %d bytes, the file ends after '
                            '%d' % (length, len(data)))
        return
      if masked_crc32c(data) != struct.unpack('<I', crc)[0]:
        yield index, None, 'bad CRC: the record bytes are corrupt'
      else:
        yield index, data, None
      offset += _HEADER.size + length + 4
      index += 1


def iter_records(path, compression='NONE'):
  """(index, raw or None, problem or None) for every record of path, bad ones included."""
  index = offset = 0
  try:
    for raw in tf.data.TFRecordDataset(path, compression_type=_tf_compression(
        compression)):
      raw = raw.numpy()
      yield index, raw, None
      index += 1
      offset += _HEADER.size + len(raw) + 4
    return
  except tf.errors.OpError as e:
    message = short_tf_message(e)
  match = _TF_OFFSET.search(message)
  if compression != 'NONE' or not match:
    yield index, None, '%s; the rest of the file cannot be read' % message
    return
  if match.group(1) == 'truncated':
    yield index, None, 'truncated: the file ends inside record %d' % index
    return
  # TensorFlow's reader cannot step over a bad record; the framing can, unless it is
  # the length header that is corrupt.
  yield from _python_records(path, offset, index)


@dataclasses.dataclass
class Report:
  """What inspect_files found."""

  layout: str
  files: List[FileSummary]
  bad: List[BadRecord]
  checker: object
  num_records: int = 0

  @property
  def num_bad(self):
    return len(self.bad)

  def lines(self):
    out = ['%d records in %d files (%s layout), %d bad' % (
        self.num_records, len(self.files), self.layout, self.num_bad)]
    for summary in self.files:
      out.append('  %s: %d records%s' % (
          summary.path, summary.records,
          '' if summary.compression == 'NONE' else ', %s' % summary.compression))
    if self.checker is not None:
      out.extend(self.checker.summary_lines())
    for bad in self.bad[:MAX_LISTED]:
      out.append('bad: %s' % bad.text())
    if self.num_bad > MAX_LISTED:
      out.append('... and %d more bad records' % (self.num_bad - MAX_LISTED))
    return out

  def error(self, advice):
    """A UserError naming the first bad record and the count, or None if all good."""
    if not self.bad:
      return None
    return UserError('%d bad %s in %s (first: %s): %s' % (
        self.num_bad, 'record' if self.num_bad == 1 else 'records',
        self.files[0].path if len(self.files) == 1 else '%d files' % len(self.files),
        self.bad[0].text(), advice))


def inspect_files(files, layout='image', num_classes=None, compression='auto',
                  stop_at_first=False):
  """Reads every record of files; returns a Report. Never raises for bad records.

  Args:
    files: record file paths.
    layout: a key of CHECKERS ('image').
    num_classes: labels must be in [0, num_classes); None checks only >= 0.
    compression: 'auto' (detect per file), or 'NONE', 'ZLIB', 'GZIP'.
    stop_at_first: return at the first bad record (to name it in an error).
  """
  checker = checker_for(layout, num_classes)
  report = Report(layout=layout, files=[], bad=[], checker=checker)
  expected = default_compression(layout)
  for path in files:
    if compression == 'auto':
      used = detect_compression(path, expected) or expected
    else:
      used = compression
    summary = FileSummary(path=path, compression=used)
    report.files.append(summary)
    for index, raw, problem in iter_records(path, used):
      summary.records += 1
      report.num_records += 1
      if problem is None:
        problem = checker.check(raw)
      if problem is not None:
        report.bad.append(BadRecord(path, index, problem))
        if stop_at_first:
          return report
  return report


def first_bad_record(files, layout='image', num_classes=None, compression=None):
  """The first BadRecord of files (read as the layout's compression), or None."""
  report = inspect_files(files, layout, num_classes,
                         compression or default_compression(layout), stop_at_first=True)
  return report.bad[0] if report.bad else None


def check_first_records(files, layout='image', num_classes=None, flag_name='',
                        compression=None, fix=None):
  """Checks the framing and the first record of every file. Raises UserError.

  Cheap (one record per file), so preflight runs it on every run: it catches a file of
  the wrong kind or compression before anything is written, not hours into training.
  """
  expected = compression or default_compression(layout)
  checker = checker_for(layout, num_classes)
  empty = 0
  for path in files:
    check_readable(path, expected, fix)
    ok, raw = _first_record(path, expected)
    if raw is None:
      empty += 1
      continue
    problem = checker.check(raw)
    if problem:
      raise UserError('%s record 0: %s%s' % (
          path, problem, ': fix or re-create the records%s' % (
              ', or leave the file out of %s' % flag_name if flag_name else '')))
  if files and empty == len(files):
    raise UserError('%s%s holds no record: %s' % (
        flag_name + ' ' if flag_name else '', ', '.join(files[:3]) +
        (' ...' if len(files) > 3 else ''), 're-create the records (the converter '
        'may have failed) or fix the glob'))
