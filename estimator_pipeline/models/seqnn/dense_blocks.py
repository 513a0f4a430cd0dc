"""basenji's dense, head, pooling, cropping, excitation and U-net blocks.

  dense_block  activation -> (flatten) -> dense -> norm -> dropout -> residual -> end act.
  dense_nac    norm -> activation -> (flatten) -> dense -> dropout -> residual
  final        (flatten) -> dense with its Keras activation: the head
  unet_conv    norm + activation of the input and of the representation of twice its
               length, (dense), upsample x stride, add, separable conv, dropout
  unet_concat  norms, upsample, concatenate, activation, dense 1.5x, activation, conv
               back to the representation's width, + representation

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import dense_blocks, layers
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 32, 16])
    print(dense_blocks.final(x, layers.Context(False), units=3, activation='softplus'))"
"""

import tensorflow as tf

from estimator_pipeline.models.seqnn import layers


def dense_block(x, ctx, *, units=None, activation='relu', activation_end=None,
                flatten=False, dropout=0, l2_scale=0, l1_scale=0, residual=False,
                norm_type=None, bn_momentum=0.99, norm_gamma=None,
                kernel_initializer='he_normal'):
  inputs = x
  units = units or int(x.shape[-1])
  x = layers.activate(x, activation, ctx.gelu)
  if flatten:
    x = layers.flatten(x)
  x = layers.dense(x, units, use_bias=norm_type is None,
                   kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                   l1_scale=l1_scale)
  gamma = norm_gamma or ('zeros' if residual else 'ones')
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum, gamma=gamma)
  x = layers.dropout(x, dropout, ctx)
  if residual:
    x = inputs + x
  return layers.activate(x, activation_end, ctx.gelu)


def dense_nac(x, ctx, *, units=None, activation='relu', flatten=False, dropout=0,
              l2_scale=0, l1_scale=0, residual=False, norm_type=None, bn_momentum=0.99,
              norm_gamma=None, kernel_initializer='he_normal'):
  inputs = x
  units = units or int(x.shape[-1])
  gamma = norm_gamma or ('zeros' if residual else 'ones')
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum, gamma=gamma)
  x = layers.activate(x, activation, ctx.gelu)
  if flatten:
    x = layers.flatten(x)
  x = layers.dense(x, units, kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                   l1_scale=l1_scale)
  x = layers.dropout(x, dropout, ctx)
  if residual:
    x = inputs + x
  return x


def final(x, ctx, *, units, activation='linear', flatten=False,
          kernel_initializer='he_normal', l2_scale=0, l1_scale=0):
  """The last dense transform before the targets (per position)."""
  del ctx
  if flatten:
    x = layers.flatten(x)
  x = layers.dense(x, units, kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                   l1_scale=l1_scale)
  # Mixed precision: the final activation in float32 (baskerville's append_activation).
  return layers.keras_activation(tf.cast(x, tf.float32), activation)


def dense(x, ctx, *, units, activation='linear', kernel_initializer='he_normal',
          l2_scale=0, l1_scale=0):
  """basenji's deprecated 'dense' block: final without flatten."""
  return final(x, ctx, units=units, activation=activation,
               kernel_initializer=kernel_initializer, l2_scale=l2_scale,
               l1_scale=l1_scale)


def cropping_1d(x, ctx, *, cropping):
  """Keras Cropping1D: an int crops both ends alike, a pair crops (start, end)."""
  del ctx
  start, end = (cropping, cropping) if isinstance(cropping, int) else cropping
  length = int(x.shape[1])
  if start + end >= length:
    raise ValueError('Cropping1D cropping=%r leaves nothing of length %d'
                     % (cropping, length))
  return x[:, start:length - end, :]


def center_slice(x, ctx, *, center):
  """basenji's CenterSlice: the `center` middle positions."""
  del ctx
  length = int(x.shape[1])
  if center > length:
    raise ValueError('center_slice center=%d exceeds length %d' % (center, length))
  start = (length - center) // 2
  return x[:, start:start + center, :]


def center_average(x, ctx, *, center):
  """basenji's CenterAverage: the mean of the `center` middle positions, length 1."""
  sliced = center_slice(x, ctx, center=center)
  return layers.mark_field(tf.reduce_mean(sliced, axis=1, keepdims=True), x, 'window',
                           center)


def average_pooling(x, ctx, *, pool_size=2):
  """basenji's average_pooling: Keras AveragePooling1D, padding 'same'."""
  del ctx
  return layers.average_pool(x, pool_size)


def squeeze_excite(x, ctx, *, activation='relu', bottleneck_ratio=8, additive=False,
                   norm_type=None, bn_momentum=0.9):
  return layers.squeeze_excite(x, ctx, activation=activation,
                               bottleneck_ratio=bottleneck_ratio, additive=additive,
                               norm_type=norm_type, bn_momentum=bn_momentum)


def wheeze_excite(x, ctx, *, pool_size):
  if pool_size % 2 != 1:
    raise ValueError('wheeze_excite pool_size=%d must be odd' % pool_size)
  return layers.wheeze_excite(x, ctx, pool_size=pool_size)


def unet_representation(x, ctx):
  """basenji's U-net helper: the latest representation (before this block's input)
  twice as long as x."""
  for earlier in reversed(ctx.reprs[:-1]):
    if int(earlier.shape[1]) == 2 * int(x.shape[1]):
      return earlier
  raise ValueError('a U-net block finds no earlier representation of length %d (twice '
                   'its input of %d)' % (2 * int(x.shape[1]), int(x.shape[1])))


def _unet_inputs(x, ctx, norm_type, bn_momentum):
  skip = unet_representation(x, ctx)
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum, scope='norm')
  skip_normed = layers.normalize(skip, norm_type, ctx=ctx, bn_momentum=bn_momentum,
                                 scope='skip_norm')
  return x, skip, skip_normed


def unet_conv(x, ctx, *, activation='relu', stride=2, l2_scale=0, dropout=0,
              norm_type=None, bn_momentum=0.99, kernel_size=1,
              kernel_initializer='he_normal', upsample_conv=False):
  """baskerville's unet_conv: upsample x stride and add the earlier representation."""
  filters = int(x.shape[-1])
  x, _, skip = _unet_inputs(x, ctx, norm_type, bn_momentum)
  x = layers.activate(x, activation, ctx.gelu)
  skip = layers.activate(skip, activation, ctx.gelu)
  dense_args = dict(l2_scale=l2_scale, kernel_initializer=kernel_initializer)
  if upsample_conv:
    x = layers.dense(x, filters, scope='dense', **dense_args)
  skip = layers.dense(skip, filters, scope='skip_dense', **dense_args)
  x = layers.upsample(x, stride) + skip
  x = layers.separable_conv1d(x, filters, kernel_size)
  return layers.dropout(x, dropout, ctx)


def unet_concat(x, ctx, *, activation='relu', stride=2, l2_scale=0, dropout=0,
                norm_type=None, bn_momentum=0.99, kernel_size=1,
                kernel_initializer='he_normal'):
  """baskerville's unet_concat: upsample, concatenate the earlier representation,
  transform back to its width and add it."""
  x, skip, skip_normed = _unet_inputs(x, ctx, norm_type, bn_momentum)
  width = int(skip.shape[-1])
  x = tf.concat([skip_normed, layers.upsample(x, stride)], axis=-1)
  x = layers.activate(x, activation, ctx.gelu)
  x = layers.dense(x, int(1.5 * width), l2_scale=l2_scale,
                   kernel_initializer=kernel_initializer)
  x = layers.activate(layers.dropout(x, dropout, ctx), activation, ctx.gelu)
  x = layers.conv1d(x, width, kernel_size, ctx=ctx, l2_scale=l2_scale,
                    kernel_initializer=kernel_initializer)
  return skip + layers.dropout(x, dropout, ctx)
