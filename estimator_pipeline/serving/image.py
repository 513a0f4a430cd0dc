"""The serving inputs of image classifiers, and their warm-up requests.

`--serving_input` picks what the exported `serving_default` signature takes:

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

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import prediction_log_pb2

from estimator_pipeline import serving
from estimator_pipeline.data import image_ops
from estimator_pipeline.models.image import outputs
from estimator_pipeline.records import image_format
from estimator_pipeline.serving import warmup

IMAGE_BYTES_KEY = 'image_bytes'
IMAGE_TENSOR_KEY = 'images'
EXAMPLES_KEY = 'examples'


def _batch_map(fn, batch, image_size):
  return tf.map_fn(
      fn, batch,
      fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
      # Requests are decoded in parallel; order is kept by map_fn.
      parallel_iterations=16)


def _decode_encoded(spec, image_size):
  def one(encoded):
    return image_ops.decode_and_preprocess(
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
      return image_ops.preprocess_image(image, spec.preprocessing, image_size,
                                            image_size, is_training=False)

    images = _batch_map(one, pixels, image_size)
    return tf.estimator.export.ServingInputReceiver(
        features={'image': images}, receiver_tensors={IMAGE_TENSOR_KEY: pixels})

  return serving_input_receiver_fn


def make_tf_example_receiver_fn(spec, image_size):
  """string [N] of serialized slim image tf.Examples -> {'image': [N, S, S, 3]}."""

  def serving_input_receiver_fn():
    serialized = tf.compat.v1.placeholder(tf.string, [None], name=EXAMPLES_KEY)
    decoder = image_format.ImageRecordDecoder()
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
    del spec
    return image_requests(kind, image_size)
  return warmup_fn


def _warmup_pixels(image_size, index):
  # A smooth gradient (not a flat colour): every decode and resize path does real work.
  ramp = np.linspace(0, 255, image_size, dtype=np.float32)
  image = np.stack([np.tile(ramp, (image_size, 1)),
                    np.tile(ramp[:, None], (1, image_size)),
                    np.full((image_size, image_size), 40.0 * (index + 1))], axis=-1)
  return image.astype(np.uint8)


def _png(pixels):
  return tf.io.encode_png(pixels).numpy()


def image_requests(kind, image_size):
  """PredictionLogs for an image model exported with serving input `kind`."""
  pixels = [_warmup_pixels(image_size, i) for i in range(warmup.WARMUP_BATCH)]
  if kind == 'encoded_image':
    return [warmup.predict_log({IMAGE_BYTES_KEY: np.array(
        [_png(p) for p in pixels], dtype=object)})]
  if kind == 'image_tensor':
    return [warmup.predict_log({IMAGE_TENSOR_KEY: np.stack(pixels)})]
  if kind == 'tf_example':
    examples = [image_format.make_example(_png(p), image_format='png',
                                          height=image_size, width=image_size)
                for p in pixels]
    predict = warmup.predict_log({EXAMPLES_KEY: np.array(
        [e.SerializeToString() for e in examples], dtype=object)})
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = outputs.CLASSIFY_SIGNATURE
    request.input.CopyFrom(input_pb2.Input(
        example_list=input_pb2.ExampleList(examples=examples)))
    classify = prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request))
    return [predict, classify]
  raise ValueError('no warm-up requests for image serving input %r' % kind)


serving.register(serving.ServingInput('image', 'encoded_image',
                      _image_receiver(make_image_bytes_receiver_fn),
                      _image_warmup('encoded_image'), default=True))
serving.register(serving.ServingInput('image', 'image_tensor',
                      _image_receiver(make_image_tensor_receiver_fn),
                      _image_warmup('image_tensor')))
serving.register(serving.ServingInput('image', 'tf_example',
                      _image_receiver(make_tf_example_receiver_fn),
                      _image_warmup('tf_example')))


