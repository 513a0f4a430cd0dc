"""The warm-up file TF Serving replays when it loads a model version.

TF Serving runs the requests in `<version>/assets.extra/tf_serving_warmup_requests` (a
TFRecord file of tensorflow_serving.apis PredictionLog messages) before it marks the
version available, so graph optimizations and lazy initialization (lookup tables, the
first decode) happen then and not in the first client's request. Every export writes
one: the exporters of a training run pass it as `assets_extra`, so the Estimator copies
it into the version while the version is still under its temporary name.

  python -c "
  import tensorflow as tf
  from tensorflow_serving.apis import prediction_log_pb2
  for r in tf.data.TFRecordDataset('runs/x/export/best/<version>/assets.extra/'
                                   'tf_serving_warmup_requests'):
      print(prediction_log_pb2.PredictionLog.FromString(r.numpy()))"
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

WARMUP_FILE = 'tf_serving_warmup_requests'
# How many images a warm-up request holds: a batch, so batched kernels are warmed too.
WARMUP_BATCH = 2


def _warmup_pixels(image_size, index):
  # A smooth gradient (not a flat colour): every decode and resize path does real work.
  ramp = np.linspace(0, 255, image_size, dtype=np.float32)
  image = np.stack([np.tile(ramp, (image_size, 1)),
                    np.tile(ramp[:, None], (1, image_size)),
                    np.full((image_size, image_size), 40.0 * (index + 1))], axis=-1)
  return image.astype(np.uint8)


def _png(pixels):
  return tf.io.encode_png(pixels).numpy()


def image_example(encoded, image_format, height=0, width=0):
  """A tf.Example in the slim image-record layout (no label), as serving reads it."""
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
      'image/format': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image_format.encode()])),
  }
  if height and width:
    feature['image/height'] = tf.train.Feature(
        int64_list=tf.train.Int64List(value=[height]))
    feature['image/width'] = tf.train.Feature(
        int64_list=tf.train.Int64List(value=[width]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _predict_log(inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  return prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))


def image_requests(kind, image_size):
  """PredictionLogs for an image model exported with serving input `kind`."""
  # Imported here: serving.py imports this module lazily and vice versa.
  from export import outputs  # pylint: disable=g-import-not-at-top
  from export import serving  # pylint: disable=g-import-not-at-top
  pixels = [_warmup_pixels(image_size, i) for i in range(WARMUP_BATCH)]
  if kind == 'encoded_image':
    return [_predict_log({serving.IMAGE_BYTES_KEY: np.array(
        [_png(p) for p in pixels], dtype=object)})]
  if kind == 'image_tensor':
    return [_predict_log({serving.IMAGE_TENSOR_KEY: np.stack(pixels)})]
  if kind == 'tf_example':
    examples = [image_example(_png(p), 'png', image_size, image_size) for p in pixels]
    predict = _predict_log({serving.EXAMPLES_KEY: np.array(
        [e.SerializeToString() for e in examples], dtype=object)})
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = outputs.CLASSIFY_SIGNATURE
    request.input.CopyFrom(input_pb2.Input(
        example_list=input_pb2.ExampleList(examples=examples)))
    classify = prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request))
    return [predict, classify]
  raise ValueError('no warm-up requests for image serving input %r' % kind)


def write(path, logs):
  """Writes PredictionLog messages to a TFRecord file (atomically); returns path."""
  tf.io.gfile.makedirs(os.path.dirname(path) or '.')
  tmp = path + '.tmp'
  with tf.io.TFRecordWriter(tmp) as writer:
    for log in logs:
      writer.write(log.SerializeToString())
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path


def read(path):
  """The PredictionLog messages of a warm-up file."""
  return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(path)]


def assets_extra(warmup_path):
  """The `assets_extra` argument of Estimator exports that ships the warm-up file."""
  return {WARMUP_FILE: warmup_path}
