"""What a basenji/baskerville params file may say about its blocks, as data.

BLOCKS is the one table of block names: config/ lies below models/, so the blocks are
described here by their keys only; their semantics are basenji's (basenji/blocks.py,
baskerville/blocks.py) and live in models/seqnn/blocks.py, which finds each block's
function by the name given here (tests/test_seqnn_blocks.py checks the keys against
each function's keyword arguments). Per block: the keys the block uses, the keys it
needs, the keys basenji's function takes but does nothing with (listed on the console
as not applied, never refused), and whether basenji's function swallows any other key
(**kwargs), which decides whether a model-level key it does not take would have
stopped basenji:

  python -c "
  from estimator_pipeline.config import params_blocks as b
  print(sorted(b.BLOCKS), b.UNSUPPORTED['conv_block_2d'])"
"""

import collections

Block = collections.namedtuple('Block', 'used required ignored lenient')

# Keys basenji injects from the model section into every block that takes them.
GLOBAL_KEYS = ('activation', 'batch_norm', 'bn_momentum', 'norm_type', 'l2_scale',
               'l1_scale', 'padding', 'kernel_initializer')

ACTIVATIONS = ('relu', 'gelu', 'softplus', 'sigmoid', 'linear', 'exp', 'tanh')
NORM_TYPES = ('batch', 'batch-sync', 'layer')
INITIALIZERS = ('he_normal', 'he_uniform', 'glorot_normal', 'glorot_uniform',
                'lecun_normal', 'lecun_uniform')
CHOICES = {
    'activation': ACTIVATIONS, 'activation_end': ACTIVATIONS,
    'norm_type': NORM_TYPES + (None,), 'kernel_initializer': INITIALIZERS,
    'mha_initializer': INITIALIZERS, 'conv_type': ('standard', 'separable'),
    'pool_type': ('max', 'softmax'), 'padding': ('same', 'valid'),
    'block_type': ('transformer',),
}

_CONV = ('filters', 'kernel_size', 'activation', 'activation_end', 'stride',
         'dilation_rate', 'l2_scale', 'dropout', 'conv_type', 'pool_size', 'pool_type',
         'norm_type', 'bn_momentum', 'norm_gamma', 'residual', 'kernel_initializer',
         'padding')
_NAC = ('filters', 'kernel_size', 'activation', 'stride', 'dilation_rate', 'l2_scale',
        'dropout', 'conv_type', 'residual', 'pool_size', 'pool_type', 'norm_type',
        'bn_momentum', 'kernel_initializer', 'padding', 'se')
_NEXT = ('filters', 'kernel_size', 'activation', 'dense_expansion', 'dilation_rate',
         'l2_scale', 'dropout', 'residual', 'pool_size', 'pool_type',
         'kernel_initializer', 'padding')
_TOWER = ('filters_init', 'filters_end', 'filters_mult', 'divisible_by', 'repeat')
_RES = ('kernel_size', 'dropout', 'pool_size', 'pool_type', 'num_convs')
_DILATED = ('filters', 'kernel_size', 'rate_mult', 'repeat')
_MHA = ('key_size', 'heads', 'dense_expansion', 'content_position_bias', 'dropout',
        'attention_dropout', 'position_dropout', 'l2_scale', 'mha_l2_scale',
        'num_position_features', 'qkv_width', 'mha_initializer', 'kernel_initializer',
        'seqlen_train')
# transformer's activation is never used (its feed-forward part is ReLU); adapter and
# latent are baskerville transfer settings its transformer swallows.
_MHA_IGNORED = ('activation', 'out_size', 'adapter', 'latent')
_DENSE = ('units', 'activation', 'flatten', 'dropout', 'l2_scale', 'l1_scale',
          'residual', 'norm_type', 'bn_momentum', 'norm_gamma', 'kernel_initializer')
_UNET = ('activation', 'stride', 'l2_scale', 'dropout', 'norm_type', 'bn_momentum',
         'kernel_size', 'kernel_initializer')
_TOWER_REQUIRED = ('filters_init', 'filters_mult or filters_end')


def _minus(keys, *drop):
  return tuple(k for k in keys if k not in drop)


BLOCKS = {
    'conv_block': Block(_CONV, (), (), False),
    'conv_nac': Block(_NAC, (), ('norm_gamma',), False),
    'conv_dna': Block(_minus(_NAC, 'dilation_rate') + ('dropout_residual', 'use_bias'),
                      (), ('norm_gamma',), False),
    'conv_next': Block(_NEXT, (), ('norm_type', 'bn_momentum'), False),
    'tconv_nac': Block(('filters', 'kernel_size', 'activation', 'stride', 'l2_scale',
                        'dropout', 'norm_type', 'bn_momentum', 'kernel_initializer'),
                       (), ('conv_type', 'norm_gamma', 'padding'), False),
    'conv_tower': Block(_minus(_CONV, 'filters') + _TOWER, _TOWER_REQUIRED, (), False),
    'conv_tower_nac': Block(_minus(_NAC, 'filters') + _TOWER, _TOWER_REQUIRED,
                            ('norm_gamma',), False),
    'res_tower': Block(_minus(_NAC, 'filters', *_RES) + _TOWER + _RES, _TOWER_REQUIRED,
                       ('norm_gamma',), False),
    'convnext_tower': Block(_minus(_NEXT, 'filters', *_RES) + _TOWER + _RES,
                            _TOWER_REQUIRED, ('norm_type', 'bn_momentum'), False),
    'dilated_residual': Block(_minus(_CONV, 'dilation_rate', 'norm_gamma') +
                              ('rate_mult', 'repeat', 'round'), ('filters',), (),
                              False),
    'dilated_residual_nac': Block(_minus(_NAC, 'dilation_rate') + _DILATED,
                                  ('filters',), ('norm_gamma',), False),
    'dilated_dense': Block(_minus(_CONV, 'dilation_rate', 'dropout') + _DILATED,
                           ('filters',), ('dropout',), False),
    'transformer': Block(_MHA, ('key_size',), _MHA_IGNORED, True),
    'transformer_tower': Block(_MHA + ('repeat', 'block_type'), ('key_size',),
                               _MHA_IGNORED, True),
    'squeeze_excite': Block(('activation', 'bottleneck_ratio', 'additive', 'norm_type',
                             'bn_momentum'), (),
                            ('kernel_initializer', 'use_bias', 'scale_fun'), True),
    'wheeze_excite': Block(('pool_size',), ('pool_size',), (), True),
    'dense_block': Block(_DENSE + ('activation_end',), (), (), True),
    'dense_nac': Block(_DENSE, (), (), True),
    'final': Block(('units', 'activation', 'flatten', 'kernel_initializer', 'l2_scale',
                    'l1_scale'), ('units',), (), True),
    'dense': Block(('units', 'activation', 'kernel_initializer', 'l2_scale',
                    'l1_scale'), ('units',), (), True),
    'center_slice': Block(('center',), ('center',), (), True),
    'center_average': Block(('center',), ('center',), (), True),
    'average_pooling': Block(('pool_size',), (), (), True),
    'unet_conv': Block(_UNET + ('upsample_conv',), (), (), False),
    'unet_concat': Block(_UNET, (), (), False),
    # basenji's names of the same two U-net blocks (fpn_unet always convolves the
    # upsampled input).
    'fpn_unet': Block(_UNET, (), (), False),
    'upsample_unet': Block(_UNET, (), (), False),
    # A Keras layer by class name is given only the model-level keys it takes.
    'Cropping1D': Block(('cropping',), ('cropping',), (), True),
}

_2D = '2D (Akita contact-map) blocks: 2D models are not supported'
# basenji block names that are refused, with the reason.
UNSUPPORTED = dict(
    {name: _2D for name in (
        'conv_block_2d', 'dilated_residual_2d', 'cropping_2d', 'one_to_two',
        'concat_dist_2d', 'symmetrize_2d', 'upper_tri', 'average_to_2d', 'max_to_2d',
        'dot_to_2d', 'geodot_to_2d', 'concat_to_2d', 'Cropping2D')},
    swin_transformer='attention in split windows is not offered (no published params '
    'file uses it)',
    transformer_split='attention in split windows is not offered (no published '
    'params file uses it)',
    global_context='not offered (no published params file uses it)',
    concat_position='not offered (no published params file uses it)',
    fpn1_unet='not offered (no published params file uses it): use unet_conv',
    concat_unet='not offered (no published params file uses it): use unet_concat',
    exp='not offered as a block: use "activation": "exp"',
    factor_inverse='reads a components .npy file while building; a model here reads '
    'no files',
    Conv1D='Keras layers by class name are not offered: use conv_block',
    Dense='Keras layers by class name are not offered: use dense_block or final',
    Flatten='Keras layers by class name are not offered: use "flatten": true on '
    'dense_block or final',
)

# Keys of a recurrent (Saluki) model section.
RNN_KEYS = ('rnn_type', 'num_layers', 'go_backwards', 'rnn_dropout')
