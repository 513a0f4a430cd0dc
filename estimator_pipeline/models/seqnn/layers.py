"""The Keras layers basenji's blocks are made of, as graph-mode TF1 ops.

Each function here stands for one Keras layer of basenji/baskerville (Conv1D,
SeparableConv1D, Conv1DTranspose, Dense, BatchNormalization, LayerNormalization, Scale,
SoftmaxPool1D) with Keras' defaults: epsilon 1e-3, zero biases, Keras' initializers. A
layer with weights opens its own variable scope, creates its variables in the order
Keras lists that layer's weights, and names the scope in the SEQNN_LAYERS collection,
so models/seqnn/weights.py can match an .h5 written by basenji's SeqNN.save layer by
layer, in order:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import layers
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 64, 4])
    print(layers.conv1d(x, 8, 5, ctx=layers.Context(False)))"

Ops that change how far along the sequence one output position sees (attention,
flatten, global pooling, upsampling, softmax pooling) mark their output for
models/overview.py, which reads convolutions and pools from the graph itself.
"""

import numpy as np
import tensorflow as tf

from estimator_pipeline.models import overview
from estimator_pipeline.models.seqnn import batch_stats
from estimator_pipeline.models.seqnn import conv_grad

v1 = tf.compat.v1

# Graph collection of the scopes of layers with weights, in order (strings, so it
# survives in exported meta graphs).
SEQNN_LAYERS = 'seqnn_keras_layers'
# Scopes of layers by kind (Keras Conv1D, LayerNormalization, Dense, attention), which
# a transfer (adapters.py) picks its layers from, as baskerville picks them by name.
SEQNN_CONVS = 'seqnn_conv1d_layers'
SEQNN_LAYER_NORMS = 'seqnn_layer_norm_layers'
SEQNN_DENSE = 'seqnn_dense_layers'
SEQNN_ATTENTION = 'seqnn_attention_layers'
# The variables a transfer adds to the model it starts from (adapters.py).
ADAPTER_VARIABLES = 'seqnn_adapter_variables'

mark_field = overview.mark_field


class Context:
  """What every block needs besides its input: the mode, basenji's GELU form, the
  representations a U-net block reaches back to (basenji's SeqNN.reprs) and the
  transfer's adapters (adapters.Adapters, or None)."""

  def __init__(self, is_training, gelu='tanh', reprs=None, adapters=None,
               recompute=False):
    self.is_training = is_training
    self.gelu = gelu
    self.reprs = [] if reprs is None else reprs
    self.adapters = adapters
    # --recompute_trunk: recomputed() wraps each trunk block (or repetition).
    self.recompute = recompute
    # Inside recomputed(): the dropout seeds of the block, and whether this build is
    # the forward one (which alone adds batch-norm updates).
    self.seed, self.dropouts, self.updates = None, 0, True



def _register(scope):
  v1.add_to_collection(SEQNN_LAYERS, scope.name)


# Graph collection holding, in a graph built for DeepLIFT (analysis/deeplift.py), the
# function (fn, x) -> fn(x) that gives each activation and max pool, taken whole,
# DeepLIFT's gradient; other graphs have none and are built as they always were.
NONLINEAR_HOOK = 'seqnn_nonlinear_hook'


def _hooked(fn, x, kind='elementwise'):
  hook = v1.get_collection(NONLINEAR_HOOK)
  return hook[0](fn, x, kind) if hook else fn(x)


def activate(x, name, gelu='tanh'):
  """basenji's layers.activate: the activations a params file names.

  gelu is the tanh approximation (tf.keras.activations.gelu(approximate=True), basenji
  0.6 and later, baskerville) or, with gelu='sigmoid', x * sigmoid(1.702 x) (basenji
  0.5.1 and earlier, e.g. the 2020 Basenji2 models).
  """
  if name in (None, 'linear'):
    return x
  return _hooked(lambda v: _activate(v, name, gelu), x)


def _activate(x, name, gelu):
  if name == 'relu':
    return tf.nn.relu(x)
  if name == 'gelu':
    if gelu == 'sigmoid':
      return tf.sigmoid(1.702 * x) * x
    return tf.nn.gelu(x, approximate=True)
  if name == 'softplus':
    # basenji clips before softplus so an extreme pre-activation cannot overflow.
    return tf.nn.softplus(tf.clip_by_value(x, -10000., 10000.))
  if name == 'sigmoid':
    return tf.sigmoid(x)
  if name == 'exp':
    return tf.exp(x)
  if name == 'tanh':
    return tf.tanh(x)
  raise ValueError('unknown activation %r' % name)


def keras_activation(x, name):
  """A Keras layer's activation= argument (final, dense): Keras' own functions, so
  'gelu' there is the exact erf form, as tf.keras.activations.get('gelu') gives."""
  if name == 'gelu':
    return _hooked(lambda v: tf.nn.gelu(v, approximate=False), x)
  return activate(x, name)


def initializer(name):
  """Keras' initializers by name, as tf.compat.v1 initializers."""
  if name == 'zeros':
    return v1.zeros_initializer()
  if name == 'ones':
    return v1.ones_initializer()
  scale, mode, dist = {
      'he_normal': (2.0, 'fan_in', 'truncated_normal'),
      'he_uniform': (2.0, 'fan_in', 'uniform'),
      'glorot_normal': (1.0, 'fan_avg', 'truncated_normal'),
      'glorot_uniform': (1.0, 'fan_avg', 'uniform'),
      'lecun_normal': (1.0, 'fan_in', 'truncated_normal'),
      'lecun_uniform': (1.0, 'fan_in', 'uniform'),
  }[name]
  return v1.variance_scaling_initializer(scale=scale, mode=mode, distribution=dist)


def regularizer(l2_scale=0, l1_scale=0):
  """Keras' l1_l2: l1 * sum|w| + l2 * sum(w^2), gathered in REGULARIZATION_LOSSES."""
  if not l2_scale and not l1_scale:
    return None

  def regularize(w):
    loss = 0.
    if l2_scale:
      loss += l2_scale * tf.reduce_sum(tf.square(w))
    if l1_scale:
      loss += l1_scale * tf.reduce_sum(tf.abs(w))
    return loss
  return regularize


def _weight(name, shape, init, l2_scale=0, l1_scale=0):
  return v1.get_variable(name, shape, initializer=initializer(init)
                         if isinstance(init, str) else init,
                         regularizer=regularizer(l2_scale, l1_scale))


def _bias(y, filters, use_bias):
  if use_bias:
    y += v1.get_variable('bias', [filters], initializer=v1.zeros_initializer())
  return y


def conv1d(x, filters, kernel_size, *, ctx, stride=1, dilation_rate=1, use_bias=True,
           kernel_initializer='he_normal', l2_scale=0, padding='same',
           conv_type='standard', scope='conv'):
  """Keras Conv1D, or SeparableConv1D with conv_type='separable' (whose depthwise and
  pointwise kernels take Keras' glorot_uniform and no L2: Keras routes
  kernel_initializer and kernel_regularizer of a SeparableConv1D nowhere)."""
  if conv_type == 'separable':
    return separable_conv1d(x, filters, kernel_size, stride=stride,
                            dilation_rate=dilation_rate, use_bias=use_bias,
                            padding=padding)
  with v1.variable_scope(scope) as vs:
    _register(vs)
    v1.add_to_collection(SEQNN_CONVS, vs.name)
    kernel = _weight('kernel', [kernel_size, x.shape[-1], filters], kernel_initializer,
                     l2_scale)
    # tf.nn.convolution, as Keras' Conv1D calls it: a dilated convolution becomes
    # space_to_batch -> plain convolution -> batch_to_space, whose gradients every CPU
    # kernel library has. tf.nn.conv1d(dilations=r) trains only where oneDNN runs
    # (AVX-512 CPUs): Eigen's Conv2DBackpropFilter has no dilation. conv_grad keeps
    # that forward and, for wide convolutions on a CPU, builds faster gradients.
    y = conv_grad.convolution(x, kernel, stride=stride, padding=padding.upper(),
                              dilation_rate=dilation_rate)
    y = _bias(_dilated_field(y, x, kernel_size, dilation_rate), filters, use_bias)
  return ctx.adapters.after_conv(y, vs.name) if ctx and ctx.adapters else y


def separable_conv1d(x, filters, kernel_size, *, stride=1, dilation_rate=1,
                     use_bias=True, padding='same', scope='separable_conv'):
  """Keras SeparableConv1D (depth multiplier 1)."""
  channels = int(x.shape[-1])
  with v1.variable_scope(scope) as vs:
    _register(vs)
    depthwise = _weight('depthwise_kernel', [kernel_size, channels, 1],
                        'glorot_uniform')
    pointwise = _weight('pointwise_kernel', [1, channels, filters], 'glorot_uniform')
    y = tf.nn.separable_conv2d(
        tf.expand_dims(x, 1), depthwise[tf.newaxis], pointwise[tf.newaxis],
        strides=[1, stride, stride, 1], padding=padding.upper(),
        dilations=[1, dilation_rate])
    y = _dilated_field(tf.squeeze(y, [1]), x, kernel_size, dilation_rate)
    return _bias(y, filters, use_bias)


def _dilated_field(y, x, kernel_size, dilation_rate):
  """Marks a dilated convolution's reach for models/overview.py: the graph holds a
  plain convolution between space_to_batch and batch_to_space, whose own kernel
  attributes no longer say how far apart the taps are."""
  if dilation_rate <= 1:
    return y
  return mark_field(y, x, 'window', (kernel_size - 1) * dilation_rate + 1)


def conv1d_transpose(x, filters, kernel_size, *, stride=1,
                     kernel_initializer='he_normal', l2_scale=0, scope='tconv'):
  """Keras Conv1DTranspose, padding 'same': length x stride."""
  batch, length = tf.shape(x)[0], int(x.shape[1])
  with v1.variable_scope(scope) as vs:
    _register(vs)
    kernel = _weight('kernel', [kernel_size, filters, x.shape[-1]], kernel_initializer,
                     l2_scale)
    y = tf.nn.conv1d_transpose(x, kernel, tf.stack([batch, length * stride, filters]),
                               strides=stride, padding='SAME')
    y = tf.ensure_shape(y, [x.shape[0], length * stride, filters])
    return _bias(y, filters, True)


def dense(x, units, *, use_bias=True, kernel_initializer='he_normal', l2_scale=0,
          l1_scale=0, scope='dense'):
  """Keras Dense on the last axis."""
  with v1.variable_scope(scope) as vs:
    _register(vs)
    v1.add_to_collection(SEQNN_DENSE, vs.name)
    kernel = _weight('kernel', [x.shape[-1], units], kernel_initializer, l2_scale,
                     l1_scale)
    y = tf.tensordot(x, kernel, [[x.shape.rank - 1], [0]])
    return _bias(y, units, use_bias)


def normalize(x, norm_type, *, ctx, bn_momentum=0.99, gamma='ones', scope=None,
              epsilon=1e-3):
  """Keras BatchNormalization ('batch'; 'batch-sync' synchronizes the batch statistics
  across replicas) or LayerNormalization ('layer'), Keras' epsilon. gamma: the gamma
  initializer ('ones', 'zeros', or 'glorot_uniform', Keras' choice where basenji passes
  gamma_initializer=None)."""
  if norm_type is None:
    return x
  if x.dtype != tf.float32:
    # Mixed precision: normalized in float32, as Keras' normalization layers do.
    return tf.cast(normalize(tf.cast(x, tf.float32), norm_type, ctx=ctx,
                             bn_momentum=bn_momentum, gamma=gamma, scope=scope,
                             epsilon=epsilon), x.dtype)
  channels = x.shape[-1]
  if norm_type == 'layer':
    with v1.variable_scope(scope or 'layer_norm') as vs:
      _register(vs)
      v1.add_to_collection(SEQNN_LAYER_NORMS, vs.name)
      scale = tf.cast(_weight('gamma', [channels], gamma), tf.float32)
      offset = tf.cast(_weight('beta', [channels], 'zeros'), tf.float32)
      mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
      return tf.nn.batch_normalization(x, mean, var, offset, scale, epsilon)
  with v1.variable_scope(scope or 'batch_norm') as vs:
    _register(vs)
    scale = tf.cast(_weight('gamma', [channels], gamma), tf.float32)
    offset = tf.cast(_weight('beta', [channels], 'zeros'), tf.float32)
    stats = dict(trainable=False, collections=[
        v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES,
        v1.GraphKeys.MOVING_AVERAGE_VARIABLES])
    moving_mean = v1.get_variable('moving_mean', [channels],
                                  initializer=v1.zeros_initializer(), **stats)
    moving_var = v1.get_variable('moving_variance', [channels],
                                 initializer=v1.ones_initializer(), **stats)
    # A batch norm a transfer freezes runs on its moving statistics, as a frozen
    # Keras layer does.
    frozen = ctx.adapters is not None and ctx.adapters.frozen_norm(vs.name)
    if ctx.is_training and not frozen:
      if (batch_stats.FUSED_BATCH_NORM and x.dtype == tf.float32 and
          not batch_stats.synchronized(norm_type)):
        y, mean, var = batch_stats.fused_batch_norm(x, scale, offset, epsilon)
      else:
        mean, var = batch_stats.batch_moments(x, norm_type == 'batch-sync')
        y = tf.nn.batch_normalization(x, mean, var, offset, scale, epsilon)
      decay = 1.0 - bn_momentum
      for variable, value in ((moving_mean, mean), (moving_var, var)):
        if ctx.updates:  # not again in a recomputation
          v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_sub(
              variable, (variable - value) * decay))
      return y
    return tf.nn.batch_normalization(x, moving_mean, moving_var, offset, scale,
                                     epsilon)


def dropout(x, rate, ctx):
  if rate and ctx.is_training:
    if ctx.seed is not None:
      # A recomputed block drops the same units in its recomputation.
      ctx.dropouts += 1
      return tf.nn.experimental.stateless_dropout(
          x, rate, seed=ctx.seed + tf.constant([0, 1], tf.int64) * ctx.dropouts)
    return tf.nn.dropout(x, rate=rate)
  return x


def scale(x, init='zeros', name='scale'):
  """basenji's layers.Scale: a learned per-channel factor (zero at first, so a
  residual branch starts as the identity)."""
  variable = v1.get_variable(name, [x.shape[-1]], initializer=initializer(init))
  v1.add_to_collection(SEQNN_LAYERS, variable.op.name)
  return x * variable


def pool(x, pool_size, pool_type='max', padding='same'):
  """Keras MaxPool1D (padding 'same' rounds the length up, 'valid' down) or basenji's
  SoftmaxPool1D (pool_type 'softmax')."""
  if not pool_size or pool_size <= 1:
    return x
  if pool_type == 'softmax':
    return softmax_pool(x, pool_size)
  return _hooked(lambda v: tf.nn.max_pool1d(v, pool_size, pool_size,
                                             padding=padding.upper()), x, 'max_pool')


def softmax_pool(x, pool_size, init_gain=2.0, scope='softmax_pool'):
  """basenji's SoftmaxPool1D: windows averaged with softmax weights of a learned
  logit shared by every channel (starting near max pooling)."""
  length, channels = int(x.shape[1]), int(x.shape[-1])
  with v1.variable_scope(scope) as vs:
    _register(vs)
    kernel = v1.get_variable('kernel', [channels, 1], initializer=v1.constant_initializer(
        np.eye(channels, 1) * init_gain))
    windows = tf.reshape(x, [-1, length // pool_size, pool_size, channels])
    logits = tf.tensordot(windows, kernel, [[3], [0]])
    y = tf.reduce_sum(windows * tf.nn.softmax(logits, axis=-2), axis=-2)
  return mark_field(y, x, 'pool', pool_size)


def average_pool(x, pool_size):
  """Keras AveragePooling1D, padding 'same' (padded positions are not counted)."""
  return tf.nn.avg_pool1d(x, pool_size, pool_size, padding='SAME')


def upsample(x, size):
  """Keras UpSampling1D: each position repeated `size` times."""
  return mark_field(tf.repeat(x, size, axis=1), x, 'upsample', size)


def flatten(x):
  """[batch, length, channels] -> [batch, 1, length * channels] (basenji's Reshape)."""
  y = tf.reshape(x, [-1, 1, int(x.shape[1]) * int(x.shape[2])])
  return mark_field(y, x, 'whole')


def squeeze_excite(x, ctx, *, activation='relu', bottleneck_ratio=8, additive=False,
                   norm_type=None, bn_momentum=0.9, scope='squeeze_excite'):
  """basenji's SqueezeExcite: channel weights from the mean over length (a dense
  bottleneck of channels // bottleneck_ratio units, then an optional norm whose gamma
  starts at zero), multiplied in through a sigmoid (or added with additive)."""
  channels = int(x.shape[-1])
  with v1.variable_scope(scope) as vs:
    _register(vs)
    x = activate(x, activation, ctx.gelu)
    squeeze = tf.reduce_mean(x, axis=1)
    excite = tf.nn.relu(dense(squeeze, channels // bottleneck_ratio,
                              kernel_initializer='glorot_uniform', scope='dense1'))
    excite = dense(excite, channels, kernel_initializer='glorot_uniform',
                   scope='dense2')
    excite = normalize(excite, norm_type, ctx=ctx, bn_momentum=bn_momentum,
                       gamma='zeros', scope='norm')
    excite = excite[:, tf.newaxis, :]
    scaled = x + excite if additive else x * tf.sigmoid(excite)
  return mark_field(scaled, x, 'whole')


def wheeze_excite(x, ctx, *, pool_size, scope='wheeze_excite'):
  """basenji's WheezeExcite: channel weights from a sliding average (pool_size wide,
  symmetric padding) through dense layers of channels // 4 and channels units."""
  del ctx
  channels = int(x.shape[-1])
  with v1.variable_scope(scope) as vs:
    _register(vs)
    half = pool_size // 2
    padded = tf.pad(x, [[0, 0], [half, half], [0, 0]], 'SYMMETRIC')
    squeeze = tf.nn.avg_pool1d(padded, pool_size, 1, padding='VALID')
    excite = tf.nn.relu(dense(squeeze, channels // 4,
                              kernel_initializer='glorot_uniform', scope='excite1'))
    excite = tf.nn.relu(dense(excite, channels, kernel_initializer='glorot_uniform',
                              scope='excite2'))
    return x * tf.sigmoid(excite)
