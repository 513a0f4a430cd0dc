"""basenji's transformer: relative-position multi-head attention as baskerville's
layers.MultiheadAttention defines it (Enformer's, after Ziga Avsec), the transformer
block around it and the tower that repeats it.

Attention logits are (q + r_w_bias) . k plus (q + r_r_bias) . r_k, the second made of
central-mask positional features of the relative distance (half of them signed),
projected by r_k_layer and shifted as in Transformer-XL; the output projection starts
at zero. The block is layer norm -> attention -> dropout -> + input, then layer norm ->
dense x dense_expansion -> dropout -> relu -> dense -> dropout -> + input (ReLU there
whatever the model's activation, as basenji's transformer_dense has it):

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import attention, layers
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 32, 64])
    print(attention.transformer_tower(x, layers.Context(False), key_size=16, heads=2,
                                      num_position_features=8, repeat=2))"
"""

import numpy as np
import tensorflow as tf

from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import recompute

v1 = tf.compat.v1


def positional_features(positions, feature_size, seq_length):
  """Central-mask features of relative positions [1, 2T-1] -> [1, 2T-1, feature_size]:
  half "|position| < width_i" for widths growing geometrically to seq_length, half the
  same times the position's sign."""
  half = feature_size // 2
  pow_rate = np.exp(np.log(seq_length + 1) / half).astype('float32')
  widths = tf.pow(pow_rate, tf.range(1, half + 1, dtype=tf.float32)) - 1
  widths = tf.reshape(widths, [1] * positions.shape.rank + [half])
  mask = tf.cast(widths > tf.abs(positions)[..., tf.newaxis], tf.float32)
  return tf.concat([mask, tf.sign(positions)[..., tf.newaxis] * mask], axis=-1)


def relative_shift(x):
  """Transformer-XL's shift: [B, H, T, 2T-1] relative logits -> [B, H, T, T]."""
  x = tf.concat([tf.zeros_like(x[..., :1]), x], -1)
  _, heads, t1, t2 = x.shape
  x = tf.reshape(x, [-1, heads, t2, t1])
  x = tf.slice(x, [0, 0, 1, 0], [-1, -1, -1, -1])
  x = tf.reshape(x, [-1, heads, t1, t2 - 1])
  return tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, (t2 + 1) // 2])


def _projection(x, units, scope, *, init, l2_scale, qkv_width=1):
  """A bias-free projection (Dense, or SeparableConv1D for basenji's qkv_width > 1)."""
  with v1.variable_scope(scope):
    if qkv_width > 1:
      channels = int(x.shape[-1])
      reg = layers.regularizer(l2_scale)
      depthwise = v1.get_variable('depthwise_kernel', [qkv_width, channels, 1],
                                  initializer=layers.initializer(init), regularizer=reg)
      pointwise = v1.get_variable('pointwise_kernel', [1, channels, units],
                                  initializer=layers.initializer(init), regularizer=reg)
      y = tf.nn.separable_conv2d(tf.expand_dims(x, 1), depthwise[tf.newaxis],
                                 pointwise[tf.newaxis], [1, 1, 1, 1], 'SAME')
      return tf.squeeze(y, [1])
    kernel = v1.get_variable('kernel', [x.shape[-1], units],
                             initializer=layers.initializer(init),
                             regularizer=layers.regularizer(l2_scale))
    return tf.tensordot(x, kernel, [[x.shape.rank - 1], [0]])


def _heads(x, heads):
  """[B, T, H * K] -> [B, H, T, K]."""
  length, channels = int(x.shape[1]), int(x.shape[2])
  return tf.transpose(tf.reshape(x, [-1, length, heads, channels // heads]),
                      [0, 2, 1, 3])


def multihead_attention(x, ctx, *, key_size, heads, num_position_features=None,
                        attention_dropout=0.05, position_dropout=0.01,
                        content_position_bias=True, initializer='he_normal',
                        l2_scale=0, qkv_width=1, seqlen_train=None, scope='mha'):
  """baskerville's MultiheadAttention; weights created in the order Keras lists them
  (r_w_bias, r_r_bias, q, k, v, embedding, r_k), the order of an .h5."""
  length, channels = int(x.shape[1]), int(x.shape[2])
  if channels % heads:
    raise ValueError('transformer heads=%d do not divide the %d channels'
                     % (heads, channels))
  value_size = channels // heads
  if num_position_features is None:
    num_position_features = (value_size // 2) * 2
  key_proj, embedding = key_size * heads, value_size * heads
  proj = dict(init=initializer, l2_scale=l2_scale)
  with v1.variable_scope(scope) as vs:
    v1.add_to_collection(layers.SEQNN_LAYERS, vs.name)
    v1.add_to_collection(layers.SEQNN_ATTENTION, vs.name)
    r_w_bias = v1.get_variable('r_w_bias', [1, heads, 1, key_size],
                               initializer=layers.initializer(initializer))
    r_r_bias = v1.get_variable('r_r_bias', [1, heads, 1, key_size],
                               initializer=layers.initializer(initializer))
    q = _heads(_projection(x, key_proj, 'q_layer', qkv_width=qkv_width, **proj), heads)
    k = _heads(_projection(x, key_proj, 'k_layer', qkv_width=qkv_width, **proj), heads)
    v = _heads(_projection(x, embedding, 'v_layer', qkv_width=qkv_width, **proj),
               heads)
    with v1.variable_scope('embedding_layer'):
      # Created here, used last: Keras lists it before r_k_layer.
      out_kernel = v1.get_variable('kernel', [embedding, embedding],
                                   initializer=v1.zeros_initializer(),
                                   regularizer=layers.regularizer(l2_scale))
      out_bias = v1.get_variable('bias', [embedding], initializer=v1.zeros_initializer())
    q *= key_size ** -0.5
    logits = tf.matmul(q + r_w_bias, k, transpose_b=True)
    if num_position_features:
      distances = tf.range(-length + 1, length, dtype=tf.float32)[tf.newaxis]
      # The features are float32 constants; the projections take x's dtype.
      features = tf.cast(positional_features(distances, num_position_features,
                                             seqlen_train or length), x.dtype)
      features = layers.dropout(features, position_dropout, ctx)
      r_k = _heads(_projection(features, key_proj, 'r_k_layer', **proj), heads)
      if content_position_bias:
        relative = tf.matmul(q + r_r_bias, r_k, transpose_b=True)
      else:
        relative = tf.broadcast_to(tf.matmul(r_r_bias, r_k, transpose_b=True),
                                   [1, heads, length, 2 * length - 1])
      logits += relative_shift(relative)
    weights = layers.dropout(tf.nn.softmax(logits), attention_dropout, ctx)
    attended = tf.reshape(tf.transpose(tf.matmul(weights, v), [0, 2, 1, 3]),
                          [-1, length, embedding])
    out = tf.tensordot(attended, out_kernel, [[2], [0]]) + out_bias
  return layers.mark_field(out, x, 'whole')


def transformer(x, ctx, *, key_size, heads=1, dense_expansion=2.0,
                content_position_bias=True, dropout=0.25, attention_dropout=0.05,
                position_dropout=0.01, l2_scale=0, mha_l2_scale=0,
                num_position_features=None, qkv_width=1, mha_initializer='he_normal',
                kernel_initializer='he_normal', seqlen_train=None):
  """layer norm -> attention -> dropout -> + input -> feed-forward block."""
  inputs = x
  x = layers.normalize(x, 'layer', ctx=ctx)
  x = multihead_attention(
      x, ctx, key_size=key_size, heads=heads,
      num_position_features=num_position_features,
      attention_dropout=attention_dropout, position_dropout=position_dropout,
      content_position_bias=content_position_bias, initializer=mha_initializer,
      l2_scale=mha_l2_scale, qkv_width=qkv_width, seqlen_train=seqlen_train)
  x = inputs + _adapted(layers.dropout(x, dropout, ctx), ctx, 'adapter_houlsby')
  if not dense_expansion:
    return x
  inputs, width = x, int(x.shape[-1])
  x = layers.normalize(x, 'layer', ctx=ctx, scope='ff_layer_norm')
  x = layers.dense(x, int(dense_expansion * width), l2_scale=l2_scale,
                   kernel_initializer=kernel_initializer, scope='ff_expand')
  x = tf.nn.relu(layers.dropout(x, dropout, ctx))
  x = layers.dense(x, width, l2_scale=l2_scale, kernel_initializer=kernel_initializer,
                   scope='ff_contract')
  return inputs + _adapted(layers.dropout(x, dropout, ctx), ctx, 'adapter_houlsby_1')


def _adapted(branch, ctx, scope):
  """A residual branch, through a transfer's houlsby adapter when it has one."""
  return ctx.adapters.residual(branch, scope) if ctx.adapters else branch


def transformer_tower(x, ctx, *, repeat=2, block_type='transformer', **kwargs):
  """repeat transformer blocks (basenji's block_type 'transformer', the only one
  offered)."""
  del block_type  # the params check refuses every other type
  for i in range(repeat):
    with v1.variable_scope('rep_%d' % i):
      x = recompute.recomputed(ctx, lambda y, c: transformer(y, c, **kwargs), x)
  return x
