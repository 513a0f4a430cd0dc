"""The warm-up file TF Serving replays when it loads a model version.

TF Serving runs the requests in `<version>/assets.extra/tf_serving_warmup_requests` (a
TFRecord file of tensorflow_serving.apis PredictionLog messages) before it marks the
version available, so graph optimizations and lazy initialization (lookup tables, the
first decode) happen then and not in the first client's request. Every export writes
one: the exporters of a training run pass it as `assets_extra`, so the Estimator copies
it into the version while the version is still under its temporary name. The requests
themselves come from each layout's serving module (image.py, sequence.py).

  python -c "
  import tensorflow as tf
  from tensorflow_serving.apis import prediction_log_pb2
  for r in tf.data.TFRecordDataset('runs/x/export/best/<version>/assets.extra/'
                                   'tf_serving_warmup_requests'):
      print(prediction_log_pb2.PredictionLog.FromString(r.numpy()))"
"""

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2

from estimator_pipeline.core import files

WARMUP_FILE = 'tf_serving_warmup_requests'
# How many images a warm-up request holds: a batch, so batched kernels are warmed too.
WARMUP_BATCH = 2


def predict_log(inputs, signature_name=tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY):
  """A PredictionLog of one PredictRequest with these {input name: value} tensors."""
  request = predict_pb2.PredictRequest()
  request.model_spec.signature_name = signature_name
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
  return prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))


def write(path, logs):
  """Writes PredictionLog messages to a TFRecord file (atomically); returns path."""
  with files.atomic_path(path) as tmp:
    with tf.io.TFRecordWriter(tmp) as writer:
      for log in logs:
        writer.write(log.SerializeToString())
  return path


def read(path):
  """The PredictionLog messages of a warm-up file."""
  return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
          for r in tf.data.TFRecordDataset(path)]


def assets_extra(warmup_path):
  """The `assets_extra` argument of Estimator exports that ships the warm-up file."""
  return {WARMUP_FILE: warmup_path}
