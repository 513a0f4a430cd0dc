"""tf-slim image classifiers behind the Model contract, with slim's own variable names.

Variable names equal tf-slim's (resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights,
InceptionV3/Mixed_5b/..., vgg_16/conv1/conv1_1/weights), so the published slim
checkpoints load into them:

  python train.py --model_name=resnet_v1_50 --checkpoint_path=ckpt/resnet_v1_50.ckpt \
      --checkpoint_exclude_scopes=resnet_v1_50/logits --num_classes=5 ...

Each net is registered with the preprocessing family it was trained with (slim's
preprocessing_factory), so features from a published checkpoint mean what they should.
"""

import functools

import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import alexnet
from tf_slim.nets import inception
from tf_slim.nets import resnet_v1
from tf_slim.nets import resnet_v2
from tf_slim.nets import vgg

from estimator_pipeline import model
from estimator_pipeline import models
from estimator_pipeline import preprocessing

# inception_v3's auxiliary classifier loss weight, as in slim's train_image_classifier.
_AUX_LOSS_WEIGHT = 0.4


def cifarnet(images, num_classes=10, is_training=False, dropout_keep_prob=0.5,
             scope='CifarNet'):
  """slim's CifarNet (tensorflow/models research/slim/nets/cifarnet.py): 2 conv, 3 fc.

  The package tf-slim does not ship it; it is the small net that trains in minutes on a
  CPU. Returns (logits, end_points) like every slim net.
  """
  end_points = {}
  with tf.compat.v1.variable_scope(scope, 'CifarNet', [images]):
    net = slim.conv2d(images, 64, [5, 5], scope='conv1')
    net = slim.max_pool2d(net, [2, 2], 2, scope='pool1')
    net = tf.nn.lrn(net, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, name='norm1')
    net = slim.conv2d(net, 64, [5, 5], scope='conv2')
    net = tf.nn.lrn(net, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75, name='norm2')
    net = slim.max_pool2d(net, [2, 2], 2, scope='pool2')
    net = slim.flatten(net)
    net = slim.fully_connected(net, 384, scope='fc3')
    net = slim.dropout(net, dropout_keep_prob, is_training=is_training,
                       scope='dropout3')
    net = slim.fully_connected(net, 192, scope='fc4')
    end_points['fc4'] = net
    logits = slim.fully_connected(
        net, num_classes, biases_initializer=tf.compat.v1.zeros_initializer(),
        weights_initializer=tf.compat.v1.truncated_normal_initializer(stddev=1 / 192.0),
        weights_regularizer=None, activation_fn=None, scope='logits')
    end_points['Logits'] = logits
  return logits, end_points


def cifarnet_arg_scope(weight_decay=0.004):
  with slim.arg_scope(
      [slim.conv2d],
      weights_initializer=tf.compat.v1.truncated_normal_initializer(stddev=5e-2),
      activation_fn=tf.nn.relu):
    with slim.arg_scope(
        [slim.fully_connected],
        biases_initializer=tf.compat.v1.constant_initializer(0.1),
        weights_initializer=tf.compat.v1.truncated_normal_initializer(stddev=0.04),
        weights_regularizer=slim.l2_regularizer(weight_decay),
        activation_fn=tf.nn.relu) as sc:
      return sc


class SlimClassifier(model.Model):
  """A slim net + softmax cross-entropy, with slim's preprocessing family."""

  layout = 'image'

  def __init__(self, is_training, num_classes=None, *, net_fn, arg_scope_fn, family,
               takes_dropout, image_size=0, weight_decay=-1.0, dropout_keep_prob=-1.0,
               label_smoothing=0.0, **params):
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

  def preprocess(self, inputs):
    # Geometry (crops, flips, resize) ran in the input pipeline or serving receiver;
    # what is left is the family's normalization, kept in the graph so the SavedModel
    # takes plain 0..255 pixels.
    return preprocessing.normalize(tf.cast(inputs['image'], tf.float32), self._family)

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
    return metrics

  def train_summaries(self, postprocessed_dict, groundtruth):
    correct = tf.equal(postprocessed_dict['classes'], tf.cast(groundtruth, tf.int64))
    return {'accuracy': tf.reduce_mean(tf.cast(correct, tf.float32))}


def _squeeze_spatial(logits):
  # resnet and some slim nets keep [N, 1, 1, C]; everything downstream wants [N, C].
  if logits.shape.rank == 4:
    return tf.squeeze(logits, axis=[1, 2])
  return logits


# name: (net function, arg scope, default input size, preprocessing family,
#        takes dropout_keep_prob, head scopes to exclude when fine-tuning)
_NETS = {
    'alexnet_v2': (alexnet.alexnet_v2, alexnet.alexnet_v2_arg_scope, 224, 'vgg', True,
                   ('alexnet_v2/fc8',)),
    'cifarnet': (cifarnet, cifarnet_arg_scope, 32, 'cifarnet', True,
                 ('CifarNet/logits',)),
    'inception_v1': (inception.inception_v1, inception.inception_v1_arg_scope, 224,
                     'inception', True, ('InceptionV1/Logits',)),
    'inception_v2': (inception.inception_v2, inception.inception_v2_arg_scope, 224,
                     'inception', True, ('InceptionV2/Logits',)),
    'inception_v3': (inception.inception_v3, inception.inception_v3_arg_scope, 299,
                     'inception', True, ('InceptionV3/Logits', 'InceptionV3/AuxLogits')),
    'vgg_16': (vgg.vgg_16, vgg.vgg_arg_scope, 224, 'vgg', True, ('vgg_16/fc8',)),
    'vgg_19': (vgg.vgg_19, vgg.vgg_arg_scope, 224, 'vgg', True, ('vgg_19/fc8',)),
}
for _depth in (50, 101, 152):
  _NETS['resnet_v1_%d' % _depth] = (
      getattr(resnet_v1, 'resnet_v1_%d' % _depth), resnet_v1.resnet_arg_scope, 224,
      'vgg', False, ('resnet_v1_%d/logits' % _depth,))
  _NETS['resnet_v2_%d' % _depth] = (
      getattr(resnet_v2, 'resnet_v2_%d' % _depth), resnet_v2.resnet_arg_scope, 224,
      'inception', False, ('resnet_v2_%d/logits' % _depth,))

for _name, (_fn, _scope, _size, _family, _dropout, _head) in sorted(_NETS.items()):
  models.register(models.ModelSpec(
      name=_name,
      build=functools.partial(SlimClassifier, net_fn=_fn, arg_scope_fn=_scope,
                              family=_family, takes_dropout=_dropout),
      layout='image', preprocessing=_family, default_image_size=_size,
      head_scopes=_head))
