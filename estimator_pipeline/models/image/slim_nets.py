"""The tf-slim nets this pipeline trains, with slim's own variable names, as ModelSpecs.

Variable names equal tf-slim's (resnet_v1_50/block1/unit_1/bottleneck_v1/conv1/weights,
InceptionV3/Mixed_5b/..., vgg_16/conv1/conv1_1/weights), so the published slim
checkpoints load into them:

  python train.py --model_name=resnet_v1_50 --checkpoint_path=ckpt/resnet_v1_50.ckpt \
      --checkpoint_exclude_scopes=resnet_v1_50/logits --num_classes=5 ...

Each net is listed with the preprocessing family it was trained with (slim's
preprocessing_factory), so features from a published checkpoint mean what they should;
classifier.py puts any of them behind the Model contract.
"""

import functools

import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import alexnet
from tf_slim.nets import inception
from tf_slim.nets import resnet_v1
from tf_slim.nets import resnet_v2
from tf_slim.nets import vgg

from estimator_pipeline.models import spec
from estimator_pipeline.models.image import classifier
from estimator_pipeline.models.image import describe



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

SPECS = [
    spec.ModelSpec(
        name=name,
        build=functools.partial(classifier.SlimClassifier, net_fn=fn,
                                arg_scope_fn=scope, family=family,
                                takes_dropout=dropout),
        layout='image', preprocessing=family, default_image_size=size,
        head_scopes=head, describe=describe.describe)
    for name, (fn, scope, size, family, dropout, head) in sorted(_NETS.items())]
