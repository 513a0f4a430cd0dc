"""The Model contract every registered model implements (see DESIGN.md).

model_fn calls, in order: preprocess -> predict -> postprocess, then loss and accuracy
when labels exist. A model never reads files; it declares the record layout it reads
(`layout`), and for images the preprocessing family and default input size, so the input
and serving layers pick the right decoder and preprocessing:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import models
  print(models.get('resnet_v1_50'))"
"""

import abc


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

  # Optional: serving_outputs(features, outputs) -> (outputs, export_outputs). model_fn
  # calls it in PREDICT mode when a model defines it, to add signatures beside
  # serving_default (SeqNN: one-hot input, saliency) or change what is served.

  def train_summaries(self, postprocessed_dict, groundtruth):
    """-> {name: scalar} logged on training batches (e.g. batch accuracy)."""
    del postprocessed_dict, groundtruth
    return {}
