"""Image records in tf-slim's layout: keys, decoder, writer, labels.txt, checker.

Records made by slim's download_and_convert scripts and by `python -m
estimator_pipeline.records images` are uncompressed tf.Examples with

  image/encoded       bytes   the encoded JPEG or PNG (GIF and BMP decode too)
  image/format        bytes   b'jpeg' or b'png'
  image/class/label   int64   the class id, 0..K-1
  image/height, image/width   int64, optional
  image/class/text, image/filename   bytes, optional (the converter writes them)

and a labels.txt of `0:daisy` lines beside them. The decoder is tf_slim's
TFExampleDecoder; decoding stops at the encoded bytes, so the training path can decode
only the crop window of a JPEG (data/image_ops.py):

  python -c "
  import estimator_pipeline
  from estimator_pipeline.records import image_format as f
  print(f.KEYS, f.read_labels('data/labels.txt'))"
"""

import collections
import os

import tensorflow as tf
import tf_slim

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import format as format_lib

KEYS = {
    'encoded': 'image/encoded',
    'format': 'image/format',
    'label': 'image/class/label',
    'height': 'image/height',
    'width': 'image/width',
    'text': 'image/class/text',
    'filename': 'image/filename',
}
LABELS_FILE = 'labels.txt'
# Written into model_dir and shipped in every export's assets/: line N names class N.
CLASS_NAMES_FILE = 'class_names.txt'
_DECODED = ('encoded', 'format', 'label', 'height', 'width')
_MAGIC = ((b'\xff\xd8\xff', 'jpeg'), (b'\x89PNG\r\n\x1a\n', 'png'),
          (b'GIF87a', 'gif'), (b'GIF89a', 'gif'), (b'BM', 'bmp'))


def sniff(data):
  """The image format of encoded bytes, from their first bytes: jpeg, png, gif, bmp or ''."""
  for magic, name in _MAGIC:
    if data.startswith(magic):
      return name
  return ''


def _bytes(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(encoded, label=None, image_format=None, height=0, width=0,
                 class_text=None, filename=None):
  """A tf.train.Example in this layout; label None leaves the label out (serving).

  image_format defaults to what the bytes are; class_text and filename are bytes or
  str (str is encoded as UTF-8, surrogates kept, so any file name round-trips).
  """
  def to_bytes(text):
    return text if isinstance(text, bytes) else text.encode('utf-8', 'surrogateescape')

  feature = {KEYS['encoded']: _bytes(encoded),
             KEYS['format']: _bytes(to_bytes(image_format or sniff(encoded) or 'jpeg'))}
  if label is not None:
    feature[KEYS['label']] = _int64(label)
  if class_text is not None:
    feature[KEYS['text']] = _bytes(to_bytes(class_text))
  if height and width:
    feature[KEYS['height']] = _int64(height)
    feature[KEYS['width']] = _int64(width)
  if filename is not None:
    feature[KEYS['filename']] = _bytes(to_bytes(filename))
  return tf.train.Example(features=tf.train.Features(feature=feature))


class ImageRecordDecoder:
  """Decodes serialized image tf.Examples to encoded bytes, format, label and size."""

  def __init__(self):
    keys_to_features = {
        KEYS['encoded']: tf.io.FixedLenFeature((), tf.string, default_value=''),
        KEYS['format']: tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
        KEYS['label']: tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        # Optional in slim's layout: absent means "unknown" (0).
        KEYS['height']: tf.io.FixedLenFeature((), tf.int64, default_value=0),
        KEYS['width']: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    }
    handlers = {item: tf_slim.tfexample_decoder.Tensor(KEYS[item]) for item in _DECODED}
    self._decoder = tf_slim.tfexample_decoder.TFExampleDecoder(keys_to_features,
                                                               handlers)
    self._keys_to_features = keys_to_features

  def decode(self, serialized):
    """serialized: a scalar string tensor -> dict of scalar tensors."""
    values = self._decoder.decode(serialized, items=list(_DECODED))
    return dict(zip(_DECODED, values))

  def decode_batch(self, serialized):
    """serialized: a [B] string tensor -> dict of [B] tensors, as decode() per record.

    One tf.io.parse_example over the batch with the same features and defaults:
    TFExampleDecoder parses one record at a time, and on small images the per-record
    cost of tf.data outweighs the decoding (see data/image_parse.py). Every item here
    is a plain Tensor handler, so the values are the same.
    """
    parsed = tf.io.parse_example(serialized, self._keys_to_features)
    return {item: parsed[KEYS[item]] for item in _DECODED}


def read_labels(path):
  """slim's labels.txt ('0:daisy' lines) -> tuple of names indexed by id."""
  names = {}
  with tf.io.gfile.GFile(path) as f:
    for number, raw in enumerate(f, 1):
      raw = raw.strip()
      if not raw:
        continue
      index, sep, name = raw.partition(':')
      if not sep or not index.strip().isdigit():
        raise UserError('%s line %d is %r: expected "<id>:<name>" as slim writes it.'
                        % (path, number, raw))
      names[int(index)] = name
  if sorted(names) != list(range(len(names))):
    raise UserError('%s does not number its classes 0..%d without gaps.'
                    % (path, len(names) - 1))
  return tuple(names[i] for i in range(len(names)))


def labels_beside(record_file):
  """The labels.txt in the folder of a record file, or None."""
  path = os.path.join(os.path.dirname(record_file), LABELS_FILE)
  return path if tf.io.gfile.exists(path) else None


def labels_text(label_names):
  return ''.join('%d:%s\n' % (label, name) for label, name in enumerate(label_names))


def write_class_names(directory, class_names, num_classes):
  """Writes directory/class_names.txt (line N = name of class N); returns its path.

  Ids past the names in labels.txt (--num_classes larger than labels.txt) get their
  number as name, so every id a model can predict has one. Written atomically: the
  Estimator may be reading the previous file.
  """
  names = list(class_names) + [str(i) for i in range(len(class_names), num_classes)]
  for name in names:
    if '\n' in name or '\r' in name:
      raise ValueError('class name %r holds a line break' % name)
  return files.atomic_write(os.path.join(directory, CLASS_NAMES_FILE),
                            ''.join(name + '\n' for name in names))


class ImageRecordChecker(format_lib.RecordChecker):
  """Checks image records one at a time: keys, label, and that the image decodes."""

  def __init__(self, num_classes=None):
    self.num_classes = num_classes or None
    self.labels = collections.Counter()
    self.formats = collections.Counter()
    self.sizes = collections.Counter()

  def check(self, raw):
    example, problem = format_lib.parse_example(raw)
    if problem:
      return problem
    feature = example.features.feature
    encoded_key, label_key = KEYS['encoded'], KEYS['label']
    missing = [k for k in (encoded_key, label_key) if k not in feature]
    if missing:
      return 'missing key %s (it holds %s)' % (' and '.join(missing),
                                              ', '.join(sorted(feature)) or 'no key')
    label, problem = self._label(feature[label_key])
    if problem:
      return problem
    encoded_feature = feature[encoded_key]
    if (encoded_feature.WhichOneof('kind') != 'bytes_list' or
        len(encoded_feature.bytes_list.value) != 1):
      return '%s is not one bytes value' % encoded_key
    data = encoded_feature.bytes_list.value[0]
    kind = sniff(data)
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

  def _label(self, label_feature):
    label_key = KEYS['label']
    kind = label_feature.WhichOneof('kind')
    if kind != 'int64_list':
      values = getattr(label_feature, kind or 'bytes_list').value
      return None, ('%s is %s %r, not an integer class id: write the class index '
                    '(labels.txt names it)' % (
                        label_key, 'a string' if kind == 'bytes_list' else 'a float',
                        list(values)[:1]))
    if len(label_feature.int64_list.value) != 1:
      return None, '%s holds %d values, not one' % (
          label_key, len(label_feature.int64_list.value))
    label = int(label_feature.int64_list.value[0])
    if label < 0 or (self.num_classes and label >= self.num_classes):
      return None, 'label %d is outside [0, %s)' % (label, self.num_classes or '...')
    return label, None

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


class ImageFormat(format_lib.RecordFormat):
  """slim's image records: uncompressed, labels.txt beside them."""

  name = 'image'
  compression = 'NONE'

  def matches(self, feature_keys):
    return KEYS['encoded'] in feature_keys

  def decoder(self):
    return ImageRecordDecoder()

  def checker(self, files=(), num_classes=None, **unused):
    """num_classes: labels must lie in [0, num_classes); None takes the count from a
    labels.txt beside the first file, or checks only that labels are not negative."""
    if num_classes is None and files and labels_beside(files[0]):
      num_classes = len(read_labels(labels_beside(files[0])))
    return ImageRecordChecker(num_classes=num_classes)


FORMAT = format_lib.register(ImageFormat())
