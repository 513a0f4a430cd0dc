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

Each record layout's format module (records/*_format.py) brings the checker that
judges one serialized record and sums up the good ones. `train.py --validate_data`
runs the same inspection over the training and evaluation files before training,
`--skip_corrupt_records` counts what it drops the same way, and preflight checks the
first record of every file.
"""

import dataclasses
import os
import re
import struct
from typing import List

import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import format as format_lib

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


def default_compression(layout):
  """The compression a layout's records are written with ('NONE' for slim images)."""
  return format_lib.get(layout).compression


def detect_layout(files):
  """The layout of the first record found in files, or a UserError saying why none."""
  for path in files[:5]:
    for compression in COMPRESSIONS:
      ok, raw = _first_record(path, compression)
      if ok and raw is not None:
        found = format_lib.detect(raw)
        if found is not None:
          return found.name
        break
  raise UserError('cannot tell the record layout of %s (its first record is none of: '
                  '%s): pass --layout.' % (files[0], ', '.join(format_lib.names())))


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


def inspect_files(files, layout, compression='auto', stop_at_first=False,
                  checker=None, **context):
  """Reads every record of files; returns a Report. Never raises for bad records.

  Args:
    files: record file paths.
    layout: a record layout ('image', 'sequence'; see records/format.py).
    compression: 'auto' (detect per file), or 'NONE', 'ZLIB', 'GZIP'.
    stop_at_first: return at the first bad record (to name it in an error).
    checker: the RecordChecker to use; None asks the layout's format for one.
    **context: what the format's checker takes, e.g. num_classes for images.
  """
  if checker is None:
    checker = format_lib.get(layout).checker(files, **context)
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


def first_bad_record(files, layout, checker):
  """The first BadRecord of files (read as the layout's compression), or None."""
  report = inspect_files(files, layout, compression=default_compression(layout),
                         stop_at_first=True, checker=checker)
  return report.bad[0] if report.bad else None


def check_first_records(files, layout, checker, flag_name='', fix=None):
  """Checks the framing and the first record of every file. Raises UserError.

  Cheap (one record per file), so preflight runs it on every run: it catches a file of
  the wrong kind or compression before anything is written, not hours into training.
  """
  expected = default_compression(layout)
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
