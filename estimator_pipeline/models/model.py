"""The Model contract every registered model implements (BUILD.md, "Where to add").

model_fn calls, in order: preprocess -> predict -> postprocess, then loss and accuracy
when labels exist, or serving_outputs when exporting. A model never reads files; its
ModelSpec declares the record layout it reads, and for images the preprocessing family
and default input size, so the input and serving layers pick the right decoder and
preprocessing:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import models
  print(models.get('resnet_v1_50'))"
"""

import abc

import tensorflow as tf


class Model(abc.ABC):
  """A model as model_fn sees it. Subclasses build graph-mode TF1 ops."""

  def __init__(self, is_training, num_classes=None, **params):
    self.is_training = is_training
    self.num_classes = num_classes
    self.params = params

  @abc.abstractmethod
  def preprocess(self, inputs):
    """Raw decoded feature tensors (a dict) -> the network's input tensor."""

  @abc.abstractmethod
  def predict(self, preprocessed_inputs):
    """Network input -> prediction_dict, e.g. {'logits': ...}."""

  @abc.abstractmethod
  def postprocess(self, prediction_dict):
    """prediction_dict -> user-facing outputs, e.g. {'classes': ..., ...}."""

  @abc.abstractmethod
  def loss(self, prediction_dict, groundtruth):
    """-> {'loss': scalar data loss, ...}; regularization is added by model_fn."""

  @abc.abstractmethod
  def accuracy(self, postprocessed_dict, groundtruth):
    """-> eval_metric_ops: {name: (value, update_op)} from tf.compat.v1.metrics."""

  def serving_outputs(self, features, outputs):
    """PREDICT mode: postprocess() outputs -> (predictions, {signature: ExportOutput}).

    The default serves the outputs as they are in serving_default. A model overrides
    it to add signatures (classify for classifiers; onehot and saliency for SeqNN) or
    to change what is served (a test-time ensemble).
    """
    del features
    return outputs, {tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
                     tf.estimator.export.PredictOutput(outputs)}

  def train_summaries(self, features, postprocessed_dict, groundtruth):
    """TRAIN mode: -> {name: scalar} logged on training batches (e.g. batch
    accuracy); a model may also add its own summary ops here (input images)."""
    del features, postprocessed_dict, groundtruth
    return {}
