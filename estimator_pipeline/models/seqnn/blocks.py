"""basenji's SeqNN blocks by name: the one name -> function table (basenji/blocks.py's
name_func), over the modules that build them in graph-mode TF1 ops.

Each block takes `[batch, length, channels]` and builds its variables with
`tf.compat.v1.get_variable` inside readable variable scopes (`conv/kernel`,
`batch_norm/gamma`, `rep_0/dilate/...`, `rep_1/mha/q_layer/kernel`), so the caller's
scopes (`trunk/conv_block_0`) give stable checkpoint names for warm start and
--scopes_to_freeze. Batch-norm moving statistics are updated by ops in the UPDATE_OPS
collection, as slim's batch_norm does:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import blocks as b
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 1024, 4])
    print(b.build('conv_block', x, {'filters': 8, 'kernel_size': 15, 'pool_size': 8},
                  is_training=True))"

  conv_blocks.py   conv_block, conv_nac, conv_dna, conv_next, tconv_nac
  towers.py        conv_tower, conv_tower_nac, res_tower, convnext_tower,
                   dilated_residual, dilated_residual_nac, dilated_dense
  attention.py     transformer, transformer_tower
  dense_blocks.py  dense_block, dense_nac, final, dense, Cropping1D, center_slice,
                   center_average, average_pooling, squeeze_excite, wheeze_excite,
                   unet_conv, unet_concat (and basenji's fpn_unet, upsample_unet)
  layers.py        the Keras layers they are made of

Which keys each block takes is config/params_blocks.py's BLOCKS; blocks basenji has and
this project refuses (2D, ...) are its UNSUPPORTED.
"""

import functools

from estimator_pipeline.models.seqnn import attention
from estimator_pipeline.models.seqnn import conv_blocks
from estimator_pipeline.models.seqnn import dense_blocks
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import towers

activate = layers.activate

FUNCTIONS = {
    'conv_block': conv_blocks.conv_block,
    'conv_nac': conv_blocks.conv_nac,
    'conv_dna': conv_blocks.conv_dna,
    'conv_next': conv_blocks.conv_next,
    'tconv_nac': conv_blocks.tconv_nac,
    'conv_tower': towers.conv_tower,
    'conv_tower_nac': towers.conv_tower_nac,
    'res_tower': towers.res_tower,
    'convnext_tower': towers.convnext_tower,
    'dilated_residual': towers.dilated_residual,
    'dilated_residual_nac': towers.dilated_residual_nac,
    'dilated_dense': towers.dilated_dense,
    'transformer': attention.transformer,
    'transformer_tower': attention.transformer_tower,
    'squeeze_excite': dense_blocks.squeeze_excite,
    'wheeze_excite': dense_blocks.wheeze_excite,
    'dense_block': dense_blocks.dense_block,
    'dense_nac': dense_blocks.dense_nac,
    'final': dense_blocks.final,
    'dense': dense_blocks.dense,
    'center_slice': dense_blocks.center_slice,
    'center_average': dense_blocks.center_average,
    'average_pooling': dense_blocks.average_pooling,
    'unet_conv': dense_blocks.unet_conv,
    'unet_concat': dense_blocks.unet_concat,
    'fpn_unet': functools.partial(dense_blocks.unet_conv, upsample_conv=True),
    'upsample_unet': dense_blocks.unet_concat,
    'Cropping1D': dense_blocks.cropping_1d,
}


def build(name, x, block_args, *, is_training=None, ctx=None, gelu='tanh'):
  """Builds one block by basenji name; block_args hold its keys (globals included).

  ctx: the layers.Context of the network being built (its mode, GELU form and the
  representations U-net blocks reach back to); without one, a fresh Context of
  is_training and gelu.
  """
  ctx = ctx or layers.Context(is_training, gelu)
  args = dict(block_args)
  args.pop('name', None)
  if args.get('batch_norm') is not None:
    # basenji's older global: batch_norm: true meant batch normalization.
    if args.pop('batch_norm') and 'norm_type' not in args:
      args['norm_type'] = 'batch'
  return FUNCTIONS[name](x, ctx, **args)
