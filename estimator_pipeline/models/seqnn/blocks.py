"""basenji's SeqNN blocks by name (basenji/blocks.py's name_func): each block that
config/params_blocks.py's BLOCKS names, found under that name in the modules that build
them in graph-mode TF1 ops.

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

config/params_blocks.py's BLOCKS is the one table of block names and of the keys each
takes (tests/test_seqnn_blocks.py checks those keys against each function's keyword
arguments); blocks basenji has and this project refuses (2D, ...) are its UNSUPPORTED.
A new block is a row there and a function of the same name in one of these modules.
"""

import functools

from estimator_pipeline.config import params_blocks
from estimator_pipeline.models.seqnn import attention
from estimator_pipeline.models.seqnn import conv_blocks
from estimator_pipeline.models.seqnn import dense_blocks
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import towers

activate = layers.activate

# The block modules, searched by block name.
_MODULES = (conv_blocks, towers, attention, dense_blocks)
# basenji's names whose function here has another name or a fixed argument.
_ALIASES = {
    'fpn_unet': functools.partial(dense_blocks.unet_conv, upsample_conv=True),
    'upsample_unet': dense_blocks.unet_concat,
    'Cropping1D': dense_blocks.cropping_1d,
}


def _function(name):
  """The function of a block of config/params_blocks.py's table, by name."""
  if name in _ALIASES:
    return _ALIASES[name]
  found = [getattr(m, name) for m in _MODULES
           if getattr(getattr(m, name, None), '__module__', None) == m.__name__]
  if len(found) != 1:
    raise LookupError('config/params_blocks.py names block %r, which %s of %s '
                      'defines: define it in one, or name its function in _ALIASES.' % (
                          name, 'more than one' if found else 'none',
                          ', '.join(m.__name__ for m in _MODULES)))
  return found[0]


# Blocks that recompute each repetition on its own under --recompute_trunk (the others
# are recomputed whole).
RECOMPUTED_BY_REPETITION = ('conv_tower', 'conv_tower_nac', 'res_tower',
                            'transformer_tower', 'dilated_residual')

# U-net blocks read an earlier representation besides their input: recomputed, its
# gradient would be lost (tf.recompute_grad differentiates the block's input only).
NOT_RECOMPUTED = ('unet_conv', 'unet_concat', 'fpn_unet', 'upsample_unet')

# The one table of block names is config/params_blocks.py's BLOCKS (with each block's
# keys; config/ lies below models/); this maps each name to its function.
FUNCTIONS = {name: _function(name) for name in params_blocks.BLOCKS}


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
