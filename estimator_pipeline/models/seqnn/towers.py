"""basenji's repeated blocks: towers that grow the filters, and dilated stacks.

Towers repeat a conv block `repeat` times, the filters growing from filters_init by
filters_mult (or geometrically to filters_end), rounded to divisible_by; they append
each repetition's output to ctx.reprs, where basenji's U-net blocks look for the
representation of twice their length. Dilated stacks double (rate_mult) the dilation
each repetition:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import layers, towers
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 256, 8])
    print(towers.res_tower(x, layers.Context(False), filters_init=8, filters_end=16,
                           repeat=3, kernel_size=5))"
"""

import functools

import numpy as np
import tensorflow as tf

from estimator_pipeline.models.seqnn import conv_blocks
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import recompute

v1 = layers.v1


def tower_filters(filters_init, filters_end, filters_mult, divisible_by, repeat):
  """The filters of each repetition, as basenji rounds them."""
  if filters_mult is None:
    filters_mult = np.exp(np.log(filters_end / filters_init) / max(repeat - 1, 1))
  filters, out = filters_init, []
  for _ in range(repeat):
    out.append(int(np.round(filters / divisible_by) * divisible_by))
    filters *= filters_mult
  return out


def _tower(block, x, ctx, scope, filters_init, filters_end, filters_mult, divisible_by,
           repeat, kwargs):
  for i, filters in enumerate(tower_filters(filters_init, filters_end, filters_mult,
                                            divisible_by, repeat)):
    with v1.variable_scope(scope % i):
      x = recompute.recomputed(ctx, functools.partial(_filtered, block, filters,
                                                   kwargs), x)
    ctx.reprs.append(x)
  return x


def _filtered(block, filters, kwargs, x, ctx):
  return block(x, ctx, filters=filters, **kwargs)


def conv_tower(x, ctx, *, filters_init, filters_end=None, filters_mult=None,
               divisible_by=1, repeat=1, **kwargs):
  """repeat conv_blocks whose filters grow from filters_init."""
  return _tower(conv_blocks.conv_block, x, ctx, 'conv_block_%d', filters_init,
                filters_end, filters_mult, divisible_by, repeat, kwargs)


def conv_tower_nac(x, ctx, *, filters_init, filters_end=None, filters_mult=None,
                   divisible_by=1, repeat=1, **kwargs):
  """repeat conv_nacs whose filters grow from filters_init."""
  return _tower(conv_blocks.conv_nac, x, ctx, 'conv_nac_%d', filters_init, filters_end,
                filters_mult, divisible_by, repeat, kwargs)


def res_tower(x, ctx, *, filters_init, filters_end=None, filters_mult=None,
              kernel_size=1, dropout=0, pool_size=2, pool_type='max', divisible_by=1,
              repeat=1, num_convs=2, **kwargs):
  """repeat (conv_nac, num_convs-1 more conv_nacs + scaled residual, pool)."""
  for i, filters in enumerate(tower_filters(filters_init, filters_end, filters_mult,
                                            divisible_by, repeat)):
    with v1.variable_scope('rep_%d' % i):
      x = recompute.recomputed(ctx, functools.partial(
          _res_repetition, filters, kernel_size, dropout, num_convs, pool_size,
          pool_type, kwargs), x)
  return x


def _res_repetition(filters, kernel_size, dropout, num_convs, pool_size, pool_type,
                    kwargs, x, ctx):
  with v1.variable_scope('conv_nac_0'):
    x = conv_blocks.conv_nac(x, ctx, filters=filters, kernel_size=kernel_size,
                             **kwargs)
  x0 = x
  for c in range(1, num_convs):
    with v1.variable_scope('conv_nac_%d' % c):
      x = conv_blocks.conv_nac(x, ctx, filters=filters, **kwargs)
  x = layers.dropout(x, dropout, ctx)
  if num_convs > 1:
    x = x0 + layers.scale(x)
  ctx.reprs.append(x)
  return layers.pool(x, pool_size, pool_type, 'same')


def convnext_tower(x, ctx, *, filters_init, filters_end=None, filters_mult=None,
                   kernel_size=1, dropout=0, pool_size=2, pool_type='max',
                   divisible_by=1, repeat=1, num_convs=2, **kwargs):
  """repeat (conv_next, num_convs-1 more + scaled residual, pool)."""
  for i, filters in enumerate(tower_filters(filters_init, filters_end, filters_mult,
                                            divisible_by, repeat)):
    with v1.variable_scope('rep_%d' % i):
      x0 = None
      for c in range(num_convs):
        with v1.variable_scope('conv_next_%d' % c):
          x = conv_blocks.conv_next(x, ctx, filters=filters, kernel_size=kernel_size,
                                    dropout=dropout, **kwargs)
        x0 = x if x0 is None else x0
      if num_convs > 1:
        x = x0 + layers.scale(x)
      x = layers.pool(x, pool_size, pool_type, 'same')
      ctx.reprs.append(x)
  return x


def _rates(repeat, rate_mult, rounded=False):
  rate = 1.0
  for _ in range(repeat):
    yield int(np.round(rate))
    rate *= rate_mult
    if rounded:
      rate = np.round(rate)


def dilated_residual(x, ctx, *, filters, kernel_size=3, rate_mult=2, dropout=0,
                     repeat=1, norm_type=None, round=False,  # pylint: disable=redefined-builtin
                     **kwargs):
  """repeat (dilated conv_block -> 1-wide conv_block back to the input width, + input);
  the second conv_block's batch-norm gamma starts at zero."""
  for i, rate in enumerate(_rates(repeat, rate_mult, round)):
    with v1.variable_scope('rep_%d' % i):
      x = recompute.recomputed(ctx, functools.partial(
          _dilated_repetition, filters, kernel_size, rate, dropout, norm_type,
          kwargs), x)
  return x


def _dilated_repetition(filters, kernel_size, rate, dropout, norm_type, kwargs, x,
                        ctx):
  rep_input = x
  with v1.variable_scope('dilate'):
    x = conv_blocks.conv_block(x, ctx, filters=filters, kernel_size=kernel_size,
                               dilation_rate=rate, norm_type=norm_type,
                               norm_gamma='ones', **kwargs)
  with v1.variable_scope('return'):
    x = conv_blocks.conv_block(x, ctx, filters=int(rep_input.shape[-1]),
                               dropout=dropout, norm_type=norm_type,
                               norm_gamma='zeros', **kwargs)
    if norm_type is None:
      x = layers.scale(x)
  return rep_input + x


def dilated_residual_nac(x, ctx, *, filters, kernel_size=3, rate_mult=2, dropout=0,
                         repeat=1, **kwargs):
  """repeat (dilated conv_nac -> conv_nac back to the input width, + input)."""
  for i, rate in enumerate(_rates(repeat, rate_mult)):
    with v1.variable_scope('rep_%d' % i):
      rep_input = x
      with v1.variable_scope('dilate'):
        x = conv_blocks.conv_nac(x, ctx, filters=filters, kernel_size=kernel_size,
                                 dilation_rate=rate, **kwargs)
      with v1.variable_scope('return'):
        x = conv_blocks.conv_nac(x, ctx, filters=int(rep_input.shape[-1]),
                                 dropout=dropout, **kwargs)
      x = rep_input + x
  return x


def dilated_dense(x, ctx, *, filters, kernel_size=3, rate_mult=2, repeat=1, **kwargs):
  """repeat (dilated conv_block, concatenated to its input along channels)."""
  for i, rate in enumerate(_rates(repeat, rate_mult)):
    with v1.variable_scope('rep_%d' % i):
      rep_input = x
      x = conv_blocks.conv_block(x, ctx, filters=filters, kernel_size=kernel_size,
                                 dilation_rate=rate, **kwargs)
      x = tf.concat([rep_input, x], axis=-1)
  return x
