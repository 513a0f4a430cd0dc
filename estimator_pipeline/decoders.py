"""Record layouts: what a serialized tf.Example holds, and how to take it apart.

Image records use tf-slim's keys and are decoded with tf_slim's TFExampleDecoder, so
records made by slim's download_and_convert scripts work unchanged:

  python -c "from estimator_pipeline import decoders; print(decoders.IMAGE_KEYS)"

Decoding stops at the encoded bytes: preprocessing.decode_and_preprocess turns them into
pixels, so the training path can decode only the crop window of a JPEG.

Sequence records use basenji's layout; their decoder and the layout detection live in
sequence_records.py.
"""

import tensorflow as tf
import tf_slim

from estimator_pipeline import sequence_records

IMAGE_KEYS = {
    'encoded': 'image/encoded',
    'format': 'image/format',
    'label': 'image/class/label',
    'height': 'image/height',
    'width': 'image/width',
}


class ImageRecordDecoder:
  """Decodes one serialized slim image tf.Example to encoded bytes, label and size."""

  layout = 'image'
  compression_type = None

  def __init__(self):
    k = IMAGE_KEYS
    keys_to_features = {
        k['encoded']: tf.io.FixedLenFeature((), tf.string, default_value=''),
        k['format']: tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
        k['label']: tf.io.FixedLenFeature((), tf.int64, default_value=-1),
        # Optional in slim's layout: absent means "unknown" (0).
        k['height']: tf.io.FixedLenFeature((), tf.int64, default_value=0),
        k['width']: tf.io.FixedLenFeature((), tf.int64, default_value=0),
    }
    items_to_handlers = {
        'encoded': tf_slim.tfexample_decoder.Tensor(k['encoded']),
        'format': tf_slim.tfexample_decoder.Tensor(k['format']),
        'label': tf_slim.tfexample_decoder.Tensor(k['label']),
        'height': tf_slim.tfexample_decoder.Tensor(k['height']),
        'width': tf_slim.tfexample_decoder.Tensor(k['width']),
    }
    self._decoder = tf_slim.tfexample_decoder.TFExampleDecoder(
        keys_to_features, items_to_handlers)
    self._items = list(items_to_handlers)
    self._keys_to_features = keys_to_features

  def decode(self, serialized):
    """serialized: a scalar string tensor -> dict of scalar tensors."""
    values = self._decoder.decode(serialized, items=self._items)
    return dict(zip(self._items, values))

  def decode_batch(self, serialized):
    """serialized: a [B] string tensor -> dict of [B] tensors, as decode() per record.

    One tf.io.parse_example over the batch with the same features and defaults:
    TFExampleDecoder parses one record at a time, and on small images the per-record
    cost of tf.data outweighs the decoding (see input_fn.make_image_batch_parse_fn).
    Every item here is a plain Tensor handler, so the values are the same.
    """
    parsed = tf.io.parse_example(serialized, self._keys_to_features)
    return {item: parsed[IMAGE_KEYS[item]] for item in self._items}


_LAYOUTS = {'image': ImageRecordDecoder,
            'sequence': sequence_records.SequenceRecordDecoder}


def get_decoder(layout, **kwargs):
  """The decoder for a record layout a model declares ('image', 'sequence').

  kwargs go to the decoder: a sequence decoder takes the SequenceLayout of the files
  (sequence_records.py), as `sequence_layout`.
  """
  if layout not in _LAYOUTS:
    raise ValueError('unknown record layout %r; known: %s' % (layout, sorted(_LAYOUTS)))
  if 'sequence_layout' in kwargs:
    kwargs['layout'] = kwargs.pop('sequence_layout')
  return _LAYOUTS[layout](**kwargs)
