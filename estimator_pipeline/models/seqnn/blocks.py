"""basenji's SeqNN blocks (basenji/blocks.py) as graph-mode TF1 ops.

Each block takes `[batch, length, channels]` and builds its variables with
`tf.compat.v1.get_variable` inside readable variable scopes (`conv/kernel`,
`batch_norm/gamma`, `rep_0/dilate/...`), so the caller's scopes (`trunk/conv_block_0`)
give stable checkpoint names for warm start and --scopes_to_freeze. Batch-norm moving
statistics are updated by ops in the UPDATE_OPS collection, as slim's batch_norm does:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import blocks as b
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 1024, 4])
    print(b.build('conv_block', x, {'filters': 8, 'kernel_size': 15, 'pool_size': 8},
                  is_training=True))"

Defaults, orders of operations and initial values are basenji's: conv_block is
activation -> conv -> norm -> dropout -> (residual add) -> (end activation) -> pool;
dilated_residual's second conv_block starts with a zero batch-norm gamma.
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def activate(x, name):
  """basenji's layers.activate for the activations it names."""
  if name in (None, 'linear'):
    return x
  if name == 'relu':
    return tf.nn.relu(x)
  if name == 'gelu':
    # basenji's GELU is the sigmoid approximation, not tf.nn.gelu.
    return tf.sigmoid(1.702 * x) * x
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


def _initializer(name):
  scale, mode, dist = {
      'he_normal': (2.0, 'fan_in', 'truncated_normal'),
      'he_uniform': (2.0, 'fan_in', 'uniform'),
      'glorot_normal': (1.0, 'fan_avg', 'truncated_normal'),
      'glorot_uniform': (1.0, 'fan_avg', 'uniform'),
      'lecun_normal': (1.0, 'fan_in', 'truncated_normal'),
      'lecun_uniform': (1.0, 'fan_in', 'uniform'),
  }[name]
  return v1.variance_scaling_initializer(scale=scale, mode=mode, distribution=dist)


def _regularizer(l2_scale=0, l1_scale=0):
  # Keras' l1_l2: l1 * sum|w| + l2 * sum(w^2), gathered in REGULARIZATION_LOSSES.
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


def conv1d(x, filters, kernel_size, *, stride=1, dilation_rate=1, use_bias=True,
           kernel_initializer='he_normal', l2_scale=0, scope='conv'):
  with v1.variable_scope(scope):
    kernel = v1.get_variable(
        'kernel', [kernel_size, x.shape[-1], filters],
        initializer=_initializer(kernel_initializer),
        regularizer=_regularizer(l2_scale))
    y = tf.nn.conv1d(x, kernel, stride=stride, padding='SAME',
                     dilations=dilation_rate)
    if use_bias:
      y += v1.get_variable('bias', [filters], initializer=v1.zeros_initializer())
    return y


def dense(x, units, *, use_bias=True, kernel_initializer='he_normal', l2_scale=0,
          l1_scale=0, scope='dense'):
  with v1.variable_scope(scope):
    kernel = v1.get_variable(
        'kernel', [x.shape[-1], units], initializer=_initializer(kernel_initializer),
        regularizer=_regularizer(l2_scale, l1_scale))
    y = tf.tensordot(x, kernel, [[x.shape.rank - 1], [0]])
    if use_bias:
      y += v1.get_variable('bias', [units], initializer=v1.zeros_initializer())
    return y


def normalize(x, norm_type, *, is_training, bn_momentum=0.99, norm_gamma=None,
              scope=None):
  """Keras BatchNormalization/LayerNormalization semantics (epsilon 1e-3)."""
  if norm_type is None:
    return x
  channels = x.shape[-1]
  gamma_init = (v1.zeros_initializer() if norm_gamma == 'zeros'
                else v1.ones_initializer())
  if norm_type == 'layer':
    with v1.variable_scope(scope or 'layer_norm'):
      gamma = v1.get_variable('gamma', [channels], initializer=gamma_init)
      beta = v1.get_variable('beta', [channels], initializer=v1.zeros_initializer())
      mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
      return tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-3)
  with v1.variable_scope(scope or 'batch_norm'):
    gamma = v1.get_variable('gamma', [channels], initializer=gamma_init)
    beta = v1.get_variable('beta', [channels], initializer=v1.zeros_initializer())
    stats = dict(trainable=False, collections=[
        v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES,
        v1.GraphKeys.MOVING_AVERAGE_VARIABLES])
    moving_mean = v1.get_variable('moving_mean', [channels],
                                  initializer=v1.zeros_initializer(), **stats)
    moving_var = v1.get_variable('moving_variance', [channels],
                                 initializer=v1.ones_initializer(), **stats)
    if is_training:
      axes = list(range(x.shape.rank - 1))
      mean, var = tf.nn.moments(x, axes=axes)
      decay = 1.0 - bn_momentum
      for variable, value in ((moving_mean, mean), (moving_var, var)):
        v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, v1.assign_sub(
            variable, (variable - value) * decay))
    else:
      mean, var = moving_mean, moving_var
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-3)


def apply_dropout(x, rate, is_training):
  if rate and is_training:
    return tf.nn.dropout(x, rate=rate)
  return x


def max_pool(x, pool_size):
  if pool_size and pool_size > 1:
    return tf.nn.max_pool1d(x, pool_size, pool_size, padding='SAME')
  return x


def conv_block(x, *, is_training, filters=None, kernel_size=1, activation='relu',
               activation_end=None, stride=1, dilation_rate=1, l2_scale=0, dropout=0,
               conv_type='standard', pool_size=1, pool_type='max', norm_type=None,
               bn_momentum=0.99, norm_gamma=None, residual=False,
               kernel_initializer='he_normal', padding='same'):
  """activation -> conv -> norm -> dropout -> residual -> end activation -> pool."""
  del conv_type, pool_type, padding  # Only 'standard', 'max', 'same' are offered.
  inputs = x
  filters = filters or int(x.shape[-1])
  x = activate(x, activation)
  x = conv1d(x, filters, kernel_size, stride=stride, dilation_rate=dilation_rate,
             use_bias=norm_type is None, kernel_initializer=kernel_initializer,
             l2_scale=l2_scale)
  x = normalize(x, norm_type, is_training=is_training, bn_momentum=bn_momentum,
                norm_gamma=norm_gamma)
  x = apply_dropout(x, dropout, is_training)
  if residual:
    x = inputs + x
  x = activate(x, activation_end)
  return max_pool(x, pool_size)


def conv_nac(x, *, is_training, filters=None, kernel_size=1, activation='relu',
             stride=1, dilation_rate=1, l2_scale=0, dropout=0, conv_type='standard',
             residual=False, pool_size=1, pool_type='max', norm_type=None,
             bn_momentum=0.99, norm_gamma=None, kernel_initializer='he_normal',
             padding='same'):
  """norm -> activation -> conv -> dropout -> residual -> pool (basenji's conv_nac)."""
  del conv_type, pool_type, padding, norm_gamma
  inputs = x
  filters = filters or int(x.shape[-1])
  x = normalize(x, norm_type, is_training=is_training, bn_momentum=bn_momentum)
  x = activate(x, activation)
  x = conv1d(x, filters, kernel_size, stride=stride, dilation_rate=dilation_rate,
             use_bias=True, kernel_initializer=kernel_initializer, l2_scale=l2_scale)
  x = apply_dropout(x, dropout, is_training)
  if residual:
    x = inputs + x
  return max_pool(x, pool_size)


def _scale(x):
  # basenji's layers.Scale: a learned per-channel factor that starts at zero, so a
  # residual branch starts as the identity.
  scale = v1.get_variable('scale', [x.shape[-1]], initializer=v1.zeros_initializer())
  return x * scale


def conv_dna(x, *, is_training, filters=None, kernel_size=15, activation='relu',
             stride=1, l2_scale=0, residual=False, dropout=0, dropout_residual=0,
             pool_size=1, pool_type='max', norm_type=None, bn_momentum=0.99,
             norm_gamma=None, use_bias=None, conv_type='standard',
             kernel_initializer='he_normal', padding='same'):
  """The first convolution on one-hot DNA: conv -> (norm, activation | residual nac)."""
  del pool_type, conv_type, padding, norm_gamma
  filters = filters or int(x.shape[-1])
  if use_bias is None:
    use_bias = norm_type is None and not residual
  x = conv1d(x, filters, kernel_size, stride=stride, use_bias=use_bias,
             kernel_initializer=kernel_initializer, l2_scale=l2_scale)
  if residual:
    with v1.variable_scope('residual'):
      r = conv_nac(x, is_training=is_training, activation=activation,
                   l2_scale=l2_scale, dropout=dropout_residual, norm_type=norm_type,
                   bn_momentum=bn_momentum, kernel_initializer=kernel_initializer)
      x = x + _scale(r)
  else:
    x = normalize(x, norm_type, is_training=is_training, bn_momentum=bn_momentum)
    x = activate(x, activation)
  x = apply_dropout(x, dropout, is_training)
  return max_pool(x, pool_size)


def _tower_filters(filters_init, filters_end, filters_mult, divisible_by, repeat):
  if filters_mult is None:
    filters_mult = np.exp(np.log(filters_end / filters_init) / max(repeat - 1, 1))
  filters, out = float(filters_init), []
  for _ in range(repeat):
    out.append(int(np.round(filters / divisible_by) * divisible_by))
    filters *= filters_mult
  return out


def conv_tower(x, *, is_training, filters_init, filters_end=None, filters_mult=None,
               divisible_by=1, repeat=1, **kwargs):
  """repeat conv_blocks whose filters grow from filters_init by filters_mult."""
  for i, filters in enumerate(_tower_filters(filters_init, filters_end, filters_mult,
                                             divisible_by, repeat)):
    with v1.variable_scope('conv_block_%d' % i):
      x = conv_block(x, is_training=is_training, filters=filters, **kwargs)
  return x


def res_tower(x, *, is_training, filters_init, filters_end=None, filters_mult=None,
              kernel_size=1, dropout=0, pool_size=2, pool_type='max', divisible_by=1,
              repeat=1, num_convs=2, **kwargs):
  """repeat (conv_nac, num_convs-1 more conv_nacs + scaled residual, pool)."""
  del pool_type
  for i, filters in enumerate(_tower_filters(filters_init, filters_end, filters_mult,
                                             divisible_by, repeat)):
    with v1.variable_scope('rep_%d' % i):
      with v1.variable_scope('conv_nac_0'):
        x = conv_nac(x, is_training=is_training, filters=filters,
                     kernel_size=kernel_size, **kwargs)
      x0 = x
      for c in range(1, num_convs):
        with v1.variable_scope('conv_nac_%d' % c):
          x = conv_nac(x, is_training=is_training, filters=filters, **kwargs)
      x = apply_dropout(x, dropout, is_training)
      if num_convs > 1:
        x = x0 + _scale(x)
      x = max_pool(x, pool_size)
  return x


def dilated_residual(x, *, is_training, filters, kernel_size=3, rate_mult=2, dropout=0,
                     repeat=1, conv_type='standard', norm_type=None, round=False,  # pylint: disable=redefined-builtin
                     **kwargs):
  """repeat (dilated conv_block -> 1-wide conv_block back to the input width, + input),
  the dilation rate multiplied by rate_mult each time."""
  del conv_type
  rate = 1.0
  for i in range(repeat):
    with v1.variable_scope('rep_%d' % i):
      rep_input = x
      with v1.variable_scope('dilate'):
        x = conv_block(x, is_training=is_training, filters=filters,
                       kernel_size=kernel_size, dilation_rate=int(np.round(rate)),
                       norm_type=norm_type, norm_gamma='ones', **kwargs)
      with v1.variable_scope('return'):
        x = conv_block(x, is_training=is_training, filters=int(rep_input.shape[-1]),
                       dropout=dropout, norm_type=norm_type, norm_gamma='zeros',
                       **kwargs)
        if norm_type is None:
          x = _scale(x)
      x = rep_input + x
    rate *= rate_mult
    if round:
      rate = np.round(rate)
  return x


def _flatten(x):
  return tf.reshape(x, [-1, 1, int(x.shape[1]) * int(x.shape[2])])


def dense_block(x, *, is_training, units=None, activation='relu', activation_end=None,
                flatten=False, dropout=0, l2_scale=0, l1_scale=0, residual=False,
                norm_type=None, bn_momentum=0.99, norm_gamma=None,
                kernel_initializer='he_normal'):
  inputs = x
  units = units or int(x.shape[-1])
  x = activate(x, activation)
  if flatten:
    x = _flatten(x)
  x = dense(x, units, use_bias=norm_type is None,
            kernel_initializer=kernel_initializer, l2_scale=l2_scale,
            l1_scale=l1_scale)
  if norm_gamma is None:
    norm_gamma = 'zeros' if residual else 'ones'
  x = normalize(x, norm_type, is_training=is_training, bn_momentum=bn_momentum,
                norm_gamma=norm_gamma)
  x = apply_dropout(x, dropout, is_training)
  if residual:
    x = inputs + x
  return activate(x, activation_end)


def final(x, *, is_training, units, activation='linear', flatten=False,
          kernel_initializer='he_normal', l2_scale=0, l1_scale=0):
  """The last dense transform before the targets (per position)."""
  del is_training
  if flatten:
    x = _flatten(x)
  x = dense(x, units, kernel_initializer=kernel_initializer, l2_scale=l2_scale,
            l1_scale=l1_scale)
  return activate(x, activation)


def dense_head(x, *, is_training, units, activation='linear',
               kernel_initializer='he_normal', l2_scale=0, l1_scale=0):
  return final(x, is_training=is_training, units=units, activation=activation,
               kernel_initializer=kernel_initializer, l2_scale=l2_scale,
               l1_scale=l1_scale)


def cropping_1d(x, *, is_training, cropping):
  """Keras Cropping1D: an int crops both ends alike, a pair crops (start, end)."""
  del is_training
  start, end = (cropping, cropping) if isinstance(cropping, int) else cropping
  length = int(x.shape[1])
  if start + end >= length:
    raise ValueError('Cropping1D cropping=%r leaves nothing of length %d'
                     % (cropping, length))
  return x[:, start:length - end, :]


def center_slice(x, *, is_training, center):
  """basenji's CenterSlice: the `center` middle positions."""
  del is_training
  length = int(x.shape[1])
  if center > length:
    raise ValueError('center_slice center=%d exceeds length %d' % (center, length))
  start = (length - center) // 2
  return x[:, start:start + center, :]


FUNCTIONS = {
    'conv_block': conv_block,
    'conv_nac': conv_nac,
    'conv_dna': conv_dna,
    'conv_tower': conv_tower,
    'res_tower': res_tower,
    'dilated_residual': dilated_residual,
    'dense_block': dense_block,
    'final': final,
    'dense': dense_head,
    'Cropping1D': cropping_1d,
    'center_slice': center_slice,
}


def build(name, x, block_args, *, is_training):
  """Builds one block by basenji name; block_args hold its keys (globals included)."""
  args = dict(block_args)
  args.pop('name', None)
  if args.get('batch_norm') is not None:
    # basenji's older global: batch_norm: true meant batch normalization.
    if args.pop('batch_norm') and 'norm_type' not in args:
      args['norm_type'] = 'batch'
  return FUNCTIONS[name](x, is_training=is_training, **args)
