"""A tf-slim net behind the Model contract: softmax cross-entropy, slim's preprocessing
family, and what a served classifier answers (outputs.py).

  python -c "
  import estimator_pipeline
  from estimator_pipeline import models
  model = models.get('cifarnet').build(is_training=False, num_classes=5)
  print(type(model).__name__)"
"""

import tensorflow as tf
import tf_slim as slim

from estimator_pipeline.data import image_ops
from estimator_pipeline.models import model
from estimator_pipeline.models.image import outputs as outputs_lib
from estimator_pipeline.models.image import summaries

# inception_v3's auxiliary classifier loss weight, as in slim's train_image_classifier.
_AUX_LOSS_WEIGHT = 0.4


class SlimClassifier(model.Model):
  """A slim net + softmax cross-entropy, with slim's preprocessing family."""

  layout = 'image'

  def __init__(self, is_training, num_classes=None, *, net_fn, arg_scope_fn, family,
               takes_dropout, image_size=0, weight_decay=-1.0, dropout_keep_prob=-1.0,
               label_smoothing=0.0, class_names=None, class_names_file=None, **params):
    """class_names name the class ids in summaries; class_names_file (one name a
    line, records/image_format.py writes it) names them in exports."""
    super().__init__(is_training, num_classes, **params)
    if not num_classes or num_classes < 2:
      raise ValueError('a classifier needs num_classes >= 2, got %r' % num_classes)
    self._net_fn = net_fn
    self._arg_scope_fn = arg_scope_fn
    self._family = family
    self._takes_dropout = takes_dropout
    self._weight_decay = weight_decay
    self._dropout_keep_prob = dropout_keep_prob
    self._label_smoothing = label_smoothing
    self.image_size = image_size
    self.class_names = tuple(class_names) if class_names else None
    self.class_names_file = class_names_file

  def preprocess(self, inputs):
    # Geometry (crops, flips, resize) ran in the input pipeline or serving receiver;
    # what is left is the family's normalization, kept in the graph so the SavedModel
    # takes plain 0..255 pixels.
    return image_ops.normalize(tf.cast(inputs['image'], tf.float32), self._family)

  def predict(self, preprocessed_inputs):
    scope_kwargs = {}
    if self._weight_decay >= 0:
      scope_kwargs['weight_decay'] = self._weight_decay
    net_kwargs = {'num_classes': self.num_classes, 'is_training': self.is_training}
    if self._takes_dropout and self._dropout_keep_prob > 0:
      net_kwargs['dropout_keep_prob'] = self._dropout_keep_prob
    # tf_keras 2.15 does not list its own legacy layers as library code, so autograph
    # rewrites every slim batch_norm call: the graph is the same, but building a
    # resnet_v1_50 takes ~10x longer (9 s instead of 1 s), on every graph the
    # Estimator builds (train, each evaluation, each export).
    net_fn = tf.autograph.experimental.do_not_convert(self._net_fn)
    with slim.arg_scope(self._arg_scope_fn(**scope_kwargs)):
      logits, end_points = net_fn(preprocessed_inputs, **net_kwargs)
    prediction = {'logits': _squeeze_spatial(logits)}
    if self.is_training and end_points.get('AuxLogits') is not None:
      prediction['aux_logits'] = _squeeze_spatial(end_points['AuxLogits'])
    return prediction

  def postprocess(self, prediction_dict):
    logits = prediction_dict['logits']
    return {'classes': tf.argmax(logits, axis=-1),
            'probabilities': tf.nn.softmax(logits)}

  def loss(self, prediction_dict, groundtruth):
    onehot = tf.one_hot(groundtruth, self.num_classes)
    # loss_collection=None: model_fn adds the regularization losses itself, once.
    loss = tf.compat.v1.losses.softmax_cross_entropy(
        onehot, prediction_dict['logits'], label_smoothing=self._label_smoothing,
        loss_collection=None)
    losses = {'classification_loss': loss}
    if 'aux_logits' in prediction_dict:
      aux = tf.compat.v1.losses.softmax_cross_entropy(
          onehot, prediction_dict['aux_logits'],
          label_smoothing=self._label_smoothing, weights=_AUX_LOSS_WEIGHT,
          loss_collection=None)
      losses['aux_loss'] = aux
      loss = loss + aux
    losses['loss'] = loss
    return losses

  def accuracy(self, postprocessed_dict, groundtruth):
    labels = tf.cast(groundtruth, tf.int64)
    classes = postprocessed_dict['classes']
    metrics = {
        'accuracy': tf.compat.v1.metrics.accuracy(labels, classes),
        'mean_per_class_accuracy': tf.compat.v1.metrics.mean_per_class_accuracy(
            labels, classes, self.num_classes),
    }
    if self.num_classes > 5:
      in_top5 = tf.math.in_top_k(targets=tf.cast(labels, tf.int32),
                                 predictions=postprocessed_dict['probabilities'], k=5)
      metrics['top_5_accuracy'] = tf.compat.v1.metrics.mean(tf.cast(in_top5,
                                                                    tf.float32))
    metrics[summaries.CONFUSION_MATRIX] = summaries.confusion_matrix_metric(
        labels, classes, self.num_classes, self.class_names)
    return metrics

  def serving_outputs(self, features, outputs):
    """Classes, probabilities, top-k and class names; classify for tf.Examples."""
    del features
    return outputs_lib.classifier_outputs(outputs, self.class_names_file)

  def train_summaries(self, features, postprocessed_dict, groundtruth):
    """Batch accuracy, and the first input images with their labels."""
    if isinstance(features, dict) and 'image' in features:
      summaries.input_image_summaries(features['image'], groundtruth, self.class_names)
    correct = tf.equal(postprocessed_dict['classes'], tf.cast(groundtruth, tf.int64))
    return {'accuracy': tf.reduce_mean(tf.cast(correct, tf.float32))}


def _squeeze_spatial(logits):
  # resnet and some slim nets keep [N, 1, 1, C]; everything downstream wants [N, C].
  if logits.shape.rank == 4:
    return tf.squeeze(logits, axis=[1, 2])
  return logits
