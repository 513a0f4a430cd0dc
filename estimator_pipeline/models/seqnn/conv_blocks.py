"""basenji's single convolution blocks (basenji/blocks.py, baskerville/blocks.py).

Each takes [batch, length, channels] and a layers.Context; orders of operations,
defaults and initial values are basenji's:

  conv_block  activation -> conv -> norm -> dropout -> residual -> end activation -> pool
  conv_nac    norm -> activation -> conv -> squeeze-excite -> dropout -> residual -> pool
  conv_dna    conv -> squeeze-excite -> (norm -> activation | scaled residual conv_nac)
              -> dropout -> pool
  conv_next   separable conv -> layer norm (eps 1e-5) -> dense x expansion -> dropout
              -> activation -> dense back -> residual -> pool
  tconv_nac   norm -> activation -> transposed conv (length x stride) -> dropout

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import conv_blocks, layers
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 1024, 4])
    print(conv_blocks.conv_block(x, layers.Context(True), filters=8, kernel_size=15,
                                 pool_size=8))"
"""

from estimator_pipeline.models.seqnn import layers

v1 = layers.v1


def _width(x, filters):
  return filters or int(x.shape[-1])


def conv_block(x, ctx, *, filters=None, kernel_size=1, activation='relu',
               activation_end=None, stride=1, dilation_rate=1, l2_scale=0, dropout=0,
               conv_type='standard', pool_size=1, pool_type='max', norm_type=None,
               bn_momentum=0.99, norm_gamma=None, residual=False,
               kernel_initializer='he_normal', padding='same'):
  """activation -> conv -> norm -> dropout -> residual -> end activation -> pool.

  norm_gamma None leaves gamma to Keras, as basenji does: glorot_uniform.
  """
  inputs = x
  x = layers.activate(x, activation, ctx.gelu)
  x = layers.conv1d(x, _width(x, filters), kernel_size, ctx=ctx, stride=stride,
                    dilation_rate=dilation_rate, use_bias=norm_type is None,
                    kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                    conv_type=conv_type)
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum,
                       gamma=norm_gamma or 'glorot_uniform')
  x = layers.dropout(x, dropout, ctx)
  if residual:
    x = inputs + x
  x = layers.activate(x, activation_end, ctx.gelu)
  return layers.pool(x, pool_size, pool_type, padding)


def conv_nac(x, ctx, *, filters=None, kernel_size=1, activation='relu', stride=1,
             dilation_rate=1, l2_scale=0, dropout=0, conv_type='standard',
             residual=False, pool_size=1, pool_type='max', norm_type=None,
             bn_momentum=0.99, kernel_initializer='he_normal', padding='same',
             se=False):
  """norm -> activation -> conv -> squeeze-excite -> dropout -> residual -> pool."""
  inputs = x
  filters = _width(x, filters)
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum)
  x = layers.activate(x, activation, ctx.gelu)
  x = layers.conv1d(x, filters, kernel_size, ctx=ctx, stride=stride,
                    dilation_rate=dilation_rate, kernel_initializer=kernel_initializer,
                    l2_scale=l2_scale, padding=padding, conv_type=conv_type)
  if se:
    x = layers.squeeze_excite(x, ctx)
  x = layers.dropout(x, dropout, ctx)
  if residual:
    x = inputs + x
  return layers.pool(x, pool_size, pool_type, padding)


def conv_dna(x, ctx, *, filters=None, kernel_size=15, activation='relu', stride=1,
             l2_scale=0, residual=False, dropout=0, dropout_residual=0, pool_size=1,
             pool_type='max', norm_type=None, bn_momentum=0.99, use_bias=None, se=False,
             conv_type='standard', kernel_initializer='he_normal', padding='same'):
  """The first convolution on one-hot DNA: conv -> (norm, activation | residual nac)."""
  filters = _width(x, filters)
  if use_bias is None:
    use_bias = norm_type is None and not residual
  x = layers.conv1d(x, filters, kernel_size, ctx=ctx, stride=stride, use_bias=use_bias,
                    kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                    conv_type=conv_type)
  if se:
    x = layers.squeeze_excite(x, ctx)
  if residual:
    with v1.variable_scope('residual'):
      branch = conv_nac(x, ctx, activation=activation, l2_scale=l2_scale,
                        dropout=dropout_residual, conv_type=conv_type,
                        norm_type=norm_type, se=se, bn_momentum=bn_momentum,
                        kernel_initializer=kernel_initializer)
      x = x + layers.scale(branch)
  else:
    x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum)
    x = layers.activate(x, activation, ctx.gelu)
  x = layers.dropout(x, dropout, ctx)
  return layers.pool(x, pool_size, pool_type, padding)


def conv_next(x, ctx, *, filters=None, kernel_size=7, activation='relu',
              dense_expansion=2.0, dilation_rate=1, l2_scale=0, dropout=0,
              residual=False, pool_size=1, pool_type='max', kernel_initializer='he_normal',
              padding='same'):
  """ConvNeXt: separable conv -> layer norm -> expanding dense -> activation -> dense."""
  inputs = x
  filters = _width(x, filters)
  x = layers.separable_conv1d(x, filters, kernel_size, dilation_rate=dilation_rate)
  # The one layer norm of basenji's with another epsilon than Keras' default.
  x = layers.normalize(x, 'layer', ctx=ctx, epsilon=1e-5)
  x = layers.dense(x, int(dense_expansion) * filters,
                   kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                   scope='expand')
  x = layers.dropout(x, dropout, ctx)
  x = layers.activate(x, activation, ctx.gelu)
  x = layers.dense(x, filters, kernel_initializer=kernel_initializer, l2_scale=l2_scale,
                   scope='contract')
  if residual:
    x = inputs + x
  return layers.pool(x, pool_size, pool_type, padding)


def tconv_nac(x, ctx, *, filters=None, kernel_size=1, activation='relu', stride=1,
              l2_scale=0, dropout=0, norm_type=None, bn_momentum=0.99,
              kernel_initializer='he_normal'):
  """norm -> activation -> transposed conv (length x stride) -> dropout."""
  filters = _width(x, filters)
  x = layers.normalize(x, norm_type, ctx=ctx, bn_momentum=bn_momentum)
  x = layers.activate(x, activation, ctx.gelu)
  y = layers.conv1d_transpose(x, filters, kernel_size, stride=stride,
                              kernel_initializer=kernel_initializer, l2_scale=l2_scale)
  if stride > 1:
    y = layers.mark_field(y, x, 'upsample', stride)
  return layers.dropout(y, dropout, ctx)
