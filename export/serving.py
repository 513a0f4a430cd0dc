"""Serving input receivers: what a TF Serving client sends, turned into model features.

`--serving_input` picks what the exported `serving_default` signature takes. The choices
depend on the record layout a model reads (models declare it), and each layout registers
its own; for image classifiers:

  encoded_image  (default) `image_bytes`: string [N], encoded JPEG/PNG/GIF/BMP bytes,
                 so a REST client sends `{"instances": [{"b64": "<base64 bytes>"}]}`.
  image_tensor   `images`: uint8 [N, H, W, 3], decoded pixels of one size per request.
  tf_example     `examples`: string [N], serialized tf.Examples in the training records'
                 layout (image/encoded, image/format, ...), read by the same decoder as
                 the input pipeline; the export then also has a `classify` signature.

Every receiver applies the evaluation preprocessing of the input pipeline (the same
functions, not copies), so a served image is seen exactly as in evaluation:

  saved_model_cli show --dir runs/x/export/best/<version> --tag_set serve \
      --signature_def serving_default
"""

import dataclasses
from typing import Callable, Optional

import tensorflow as tf

from estimator_pipeline import decoders
from estimator_pipeline import preprocessing
from estimator_pipeline.errors import UserError
from export import outputs

IMAGE_BYTES_KEY = 'image_bytes'
IMAGE_TENSOR_KEY = 'images'
EXAMPLES_KEY = 'examples'


@dataclasses.dataclass(frozen=True)
class ServingInput:
  """One registered serving input of a record layout.

  receiver_fn(spec, **params) -> a serving_input_receiver_fn for the Estimator.
  warmup_fn(spec, **params) -> a list of tensorflow_serving PredictionLog messages that
    the export ships as assets.extra/tf_serving_warmup_requests (see export/warmup.py).
  """
  layout: str
  name: str
  receiver_fn: Callable
  warmup_fn: Optional[Callable] = None
  default: bool = False


_INPUTS = {}


def register(serving_input):
  """Adds a serving input for its layout (a second default for a layout is an error)."""
  key = (serving_input.layout, serving_input.name)
  if key in _INPUTS:
    raise ValueError('serving input %r of layout %r is registered twice' % key[::-1])
  if serving_input.default and any(s.default for s in _INPUTS.values()
                                   if s.layout == serving_input.layout):
    raise ValueError('layout %r has two default serving inputs' % serving_input.layout)
  _INPUTS[key] = serving_input
  return serving_input


def names(layout):
  """The serving inputs a layout offers, its default first."""
  found = [s for s in _INPUTS.values() if s.layout == layout]
  return [s.name for s in sorted(found, key=lambda s: (not s.default, s.name))]


def get(spec, serving_input=''):
  """The ServingInput for a model (a models.ModelSpec); '' means the layout's default."""
  known = names(spec.layout)
  if not known:
    raise UserError('--model_name=%s reads %r records, for which no serving input is '
                    'registered.' % (spec.name, spec.layout))
  name = serving_input or known[0]
  if (spec.layout, name) not in _INPUTS:
    raise UserError('--serving_input=%s is not one of %s for --model_name=%s.'
                    % (name, ', '.join(known), spec.name))
  return _INPUTS[(spec.layout, name)]


def make_serving_input_fn(spec, serving_input='', **params):
  """The serving_input_receiver_fn of `serving_input` ('' = default) for a model."""
  return get(spec, serving_input).receiver_fn(spec, **params)


def _batch_map(fn, batch, image_size):
  return tf.map_fn(
      fn, batch,
      fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
      # Requests are decoded in parallel; order is kept by map_fn.
      parallel_iterations=16)


def _decode_encoded(spec, image_size):
  def one(encoded):
    return preprocessing.decode_and_preprocess(
        encoded, spec.preprocessing, image_size, image_size, is_training=False)
  return one


def make_image_bytes_receiver_fn(spec, image_size):
  """string [N] of encoded images -> {'image': float32 [N, S, S, 3]}."""

  def serving_input_receiver_fn():
    image_bytes = tf.compat.v1.placeholder(tf.string, [None], name=IMAGE_BYTES_KEY)
    images = _batch_map(_decode_encoded(spec, image_size), image_bytes, image_size)
    return tf.estimator.export.ServingInputReceiver(
        features={'image': images}, receiver_tensors={IMAGE_BYTES_KEY: image_bytes})

  return serving_input_receiver_fn


def make_image_tensor_receiver_fn(spec, image_size):
  """uint8 [N, H, W, 3] -> {'image': float32 [N, S, S, 3]} (crop/resize as in eval)."""

  def serving_input_receiver_fn():
    pixels = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3],
                                      name=IMAGE_TENSOR_KEY)

    def one(image):
      return preprocessing.preprocess_image(image, spec.preprocessing, image_size,
                                            image_size, is_training=False)

    images = _batch_map(one, pixels, image_size)
    return tf.estimator.export.ServingInputReceiver(
        features={'image': images}, receiver_tensors={IMAGE_TENSOR_KEY: pixels})

  return serving_input_receiver_fn


def make_tf_example_receiver_fn(spec, image_size):
  """string [N] of serialized slim image tf.Examples -> {'image': [N, S, S, 3]}."""

  def serving_input_receiver_fn():
    serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_KEY)
    decoder = decoders.get_decoder(spec.layout)
    decode_image = _decode_encoded(spec, image_size)

    def one(example):
      return decode_image(decoder.decode(example)['encoded'])

    images = _batch_map(one, serialized, image_size)
    outputs.mark_examples_input()
    return tf.estimator.export.ServingInputReceiver(
        features={'image': images}, receiver_tensors={EXAMPLES_KEY: serialized})

  return serving_input_receiver_fn


def _image_receiver(make):
  def receiver_fn(spec, image_size, **unused):
    return make(spec, image_size)
  return receiver_fn


def _image_warmup(kind):
  def warmup_fn(spec, image_size, **unused):
    # Imported here: the protos are needed only when an export is written.
    from export import warmup  # pylint: disable=g-import-not-at-top
    return warmup.image_requests(kind, image_size)
  return warmup_fn


register(ServingInput('image', 'encoded_image',
                      _image_receiver(make_image_bytes_receiver_fn),
                      _image_warmup('encoded_image'), default=True))
register(ServingInput('image', 'image_tensor',
                      _image_receiver(make_image_tensor_receiver_fn),
                      _image_warmup('image_tensor')))
register(ServingInput('image', 'tf_example',
                      _image_receiver(make_tf_example_receiver_fn),
                      _image_warmup('tf_example')))


SEQUENCE_KEY = 'sequence'


def make_sequence_receiver_fn(seq_length):
  """serving_input_receiver_fn for sequence models: DNA text -> one-hot [N, L, 4].

  serving_default takes `sequence`, a tf.string [batch] of ACGT text exactly
  seq_length long (lower case and N accepted; N is all zeros, as in the records). The
  one-hot tensor is a placeholder with that default, so the model's `onehot` signature
  feeds float32 [batch, L, 4] directly; `target_index` (int32 [batch], default 0) is
  read only by the `saliency` signature.
  """
  # Imported here: models/ imports TensorFlow-heavy code the image path never needs.
  from estimator_pipeline.models import seqnn  # pylint: disable=g-import-not-at-top

  def serving_input_receiver_fn():
    text = tf.compat.v1.placeholder(tf.string, [None], name=SEQUENCE_KEY)
    onehot = tf.compat.v1.placeholder_with_default(
        preprocessing.dna_to_one_hot(text, seq_length), [None, seq_length, 4],
        name='onehot')
    target_index = tf.compat.v1.placeholder_with_default(
        tf.zeros_like(tf.strings.length(text)), [None], name='target_index')
    features = {SEQUENCE_KEY: onehot, seqnn.TEXT_FEATURE: text,
                seqnn.TARGET_INDEX_FEATURE: target_index}
    return tf.estimator.export.ServingInputReceiver(
        features=features, receiver_tensors={SEQUENCE_KEY: text})

  return serving_input_receiver_fn
