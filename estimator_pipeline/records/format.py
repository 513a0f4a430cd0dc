"""What a record layout is, and the registry of the layouts this pipeline reads.

A record layout is one format module (image_format.py, sequence_format.py) that holds
everything about its records: the keys, the compression, the decoder the input and
serving layers use, `make_example` for writers, the side files beside the records, and
a checker that `records inspect`, `--validate_data` and `--skip_corrupt_records` run on
every record. Each module (named *_format.py) registers one RecordFormat here:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.records import format
  print(format.names(), format.get('sequence').compression)"

A third layout is one more format module (and, for training, one task in train/tasks/).
"""

import importlib
import os
import pkgutil

import tensorflow as tf

from estimator_pipeline.core import registry

FORMAT_MODULE_SUFFIX = '_format'


class RecordFormat:
  """One record layout. Subclasses set name and compression and build the rest."""

  name = ''
  # The TFRecord compression writers use and readers expect: 'NONE', 'ZLIB' or 'GZIP'.
  compression = 'NONE'

  @property
  def tf_compression(self):
    """compression as tf.data.TFRecordDataset takes it (None for uncompressed)."""
    return None if self.compression == 'NONE' else self.compression

  def matches(self, feature_keys):
    """Whether a tf.Example with these feature keys is a record of this layout."""
    raise NotImplementedError

  def checker(self, files=(), **context):
    """A RecordChecker for the records in files; context narrows what is valid
    (num_classes for images, a SequenceLayout for sequences)."""
    raise NotImplementedError


class RecordChecker:
  """Checks serialized records one at a time and sums up what it saw."""

  def check(self, raw):
    """One serialized record -> a problem sentence, or None if the record is good."""
    raise NotImplementedError

  def summary_lines(self):
    """Lines that describe the good records (labels, sizes, lengths, ...)."""
    return []


def parse_example(raw):
  """Serialized bytes -> (tf.train.Example, None), or (None, problem)."""
  try:
    return tf.train.Example.FromString(raw), None
  except Exception:  # pylint: disable=broad-except
    # protobuf raises DecodeError, or RuntimeError from its C++ implementation.
    return None, 'not a tf.train.Example (%d bytes starting %r)' % (len(raw), raw[:16])


def _load_formats():
  # Every records/*_format.py registers its layout when imported: a new layout is a
  # new module, and nothing here changes.
  package = os.path.dirname(os.path.abspath(__file__))
  for info in pkgutil.iter_modules([package]):
    if info.name.endswith(FORMAT_MODULE_SUFFIX):
      importlib.import_module('%s.%s' % (__package__, info.name))


FORMATS = registry.Registry('record layout', '--layout', loader=_load_formats)


def register(record_format):
  return FORMATS.register(record_format.name, record_format)


def get(name):
  """The RecordFormat of a layout ('image', 'sequence'); UserError lists the known."""
  return FORMATS.get(name)


def names():
  return FORMATS.names()


def detect(raw):
  """The RecordFormat a serialized record belongs to, or None."""
  example, _ = parse_example(raw)
  if example is None:
    return None
  keys = set(example.features.feature)
  for _, record_format in FORMATS.items():
    if record_format.matches(keys):
      return record_format
  return None
