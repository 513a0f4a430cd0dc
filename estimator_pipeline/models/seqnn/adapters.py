"""baskerville's transfer adapters (adapters.py, transfer.py) in the graph-mode SeqNN.

A transfer (config/transfer.py's settings) decides which variables train, as
hound_transfer freezes Keras layers: `full` trains everything, `linear` the head (the
trunk's batch norms then use their moving statistics, as a frozen Keras layer does),
`adapter` the head's last layer and the adapter's weights (every batch norm frozen):

  lora        q and v projections of each attention: W + A B * alpha / rank (B zero)
  lora_full   q, k, v and the output projection
  ia3         k and v outputs scaled (ones), and the input of each dense of 1536
              inputs (Borzoi's feed-forward contraction), as baskerville picks them
  locon       lora (rank 8, alpha 16) and each of the last conv_select convolutions
              + up(down(x)) * locon_alpha / conv_latent (all but the first, trained
              itself, when conv_select counts every convolution)
  lora_conv   lora (rank 8, alpha 16), the last conv_select convolutions trained
  houlsby     a bottleneck adapter on each transformer residual branch; layer norms
              trained
  houlsby_se  houlsby (latent 8) and x + x * tanh(squeeze-excite(x)) after each of
              the last conv_select convolutions

LoRA, IA3 and LoCon change a weight, so they are built here as the weight itself
(a custom getter: the network reads W + A B where it read W), which is what
merge_checkpoint folds into W for export. Houlsby and squeeze-excite layers are
layers; a run keeps them. Variables a transfer adds are named as baskerville names
them (`q_layer/lora_a/kernel`, `adapter_houlsby/adapter_down/kernel`) and listed in
ADAPTER_VARIABLES, which the .h5 import and warm start skip:

  python -c "
  from estimator_pipeline.models.seqnn import adapters; print(adapters.__doc__)"
"""

import numpy as np
import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import layers

v1 = tf.compat.v1

ADAPTER_VARIABLES = layers.ADAPTER_VARIABLES
_IA3_FF_INPUTS = 1536  # baskerville's add_ia3 scales the dense layers of this input.
_TINY = 1e-3  # baskerville's TruncatedNormal stddev of houlsby and squeeze-excite.
_NEEDS = {
    'lora': 'attention (a transformer block)', 'lora_full': 'attention (a transformer '
    'block)', 'ia3': 'attention (a transformer block)', 'houlsby': 'a transformer '
    'block', 'locon': 'attention (a transformer block) and convolutions',
    'lora_conv': 'attention (a transformer block) and convolutions',
}


def _outer(scopes, everything):
  return [s for s in scopes if not any(s.startswith(o + '/') for o in everything)]


class Survey:
  """What a plain build of the network holds: its layers by kind, in order."""

  def __init__(self, graph):
    def listed(key):
      return list(dict.fromkeys(graph.get_collection(key)))
    every = listed(layers.SEQNN_LAYERS)
    shapes = {v.op.name: v.shape.as_list()
              for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)}
    self.convs = listed(layers.SEQNN_CONVS)
    self.layer_norms = listed(layers.SEQNN_LAYER_NORMS)
    self.attention = listed(layers.SEQNN_ATTENTION)
    self.dense_inputs = {s: shapes[s + '/kernel'][0]
                         for s in _outer(listed(layers.SEQNN_DENSE), every)}
    self.separable_qkv = [s for s in self.attention
                          if s + '/q_layer/kernel' not in shapes]
    head = [s for s in _outer(every, every) if s.startswith('head/')]
    self.head_last = head[-1] if head else None


def _remember(name):
  """Lists variable `name` in ADAPTER_VARIABLES once (a getter may hand out a cast of
  it, under mixed precision)."""
  listed = {v.op.name for v in v1.get_collection(ADAPTER_VARIABLES)}
  if name not in listed:
    v1.add_to_collection(ADAPTER_VARIABLES, next(
        v for v in v1.global_variables() if v.op.name == name))


def _in(name, scopes):
  return any(name == s or name.startswith(s + '/') for s in scopes)


class Adapters:
  """One transfer of one network: what trains, the reparametrized weights, the
  adapter layers. merged: build the weights as they are (an export of a checkpoint
  merge_checkpoint wrote), keeping only the adapter layers."""

  def __init__(self, found, survey, merged=False):
    self.found, self.merged = found, merged
    self.mode, self.adapter = found['mode'], found['adapter']
    self.fresh_layers = not found['layers_from_model']
    adapter = None if merged and self.adapter not in ('houlsby', 'houlsby_se') else (
        self.adapter)
    self.lora, self.ia3_out, self.ia3_in, self.locon = {}, set(), set(), {}
    self.trained, self.se_convs = [], set()
    self.houlsby = adapter in ('houlsby', 'houlsby_se')
    self._check(survey)
    if self.mode == 'adapter' and survey.head_last:
      self.trained.append(survey.head_last)
    if adapter in ('lora', 'lora_full', 'locon', 'lora_conv'):
      names = ('q_layer', 'v_layer') + (('k_layer', 'embedding_layer')
                                        if adapter == 'lora_full' else ())
      for scope in survey.attention:
        for n in names:
          self.lora['%s/%s/kernel' % (scope, n)] = (found['rank'], found['alpha'])
    if adapter == 'ia3':
      for scope in survey.attention:
        self.ia3_out.update('%s/%s/kernel' % (scope, n) for n in ('k_layer', 'v_layer'))
      self.ia3_in.update(s + '/kernel' for s, n in survey.dense_inputs.items()
                         if n == _IA3_FF_INPUTS)
    convs = survey.convs
    if adapter in ('locon', 'lora_conv', 'houlsby_se'):
      chosen = convs[-found['conv_select']:]
      if adapter == 'lora_conv':
        self.trained.extend(chosen)
      elif adapter == 'houlsby_se':
        self.se_convs.update(chosen)
      else:
        if found['conv_select'] == len(convs):
          self.trained.append(convs[0])
          chosen = convs[1:]
        self.locon.update((s + '/kernel', (found['conv_rank'], found['conv_alpha']))
                          for s in chosen)
    if self.houlsby:
      self.trained.extend(survey.layer_norms)

  def _check(self, survey):
    adapter, found = self.adapter, self.found
    if adapter in _NEEDS and not survey.attention:
      raise UserError('transfer adapter %s needs a model with %s; this model has none: '
                      'pick houlsby_se, or "mode": "linear" or "full".'
                      % (adapter, _NEEDS[adapter]))
    if adapter in ('lora', 'lora_full', 'locon', 'lora_conv') and survey.separable_qkv:
      raise UserError('transfer adapter %s needs dense q, k and v projections; %s has '
                      'qkv_width > 1.' % (adapter, survey.separable_qkv[0]))
    count, select = len(survey.convs), found['conv_select']
    if adapter in ('locon', 'lora_conv') and select > count:
      raise UserError('transfer conv_select=%d, but the model has %d convolutions: '
                      'conv_select must be at most %d.' % (select, count, count))
    if adapter == 'houlsby_se' and select >= count:
      raise UserError('transfer adapter houlsby_se needs more convolutions than '
                      'conv_select=%d; the model has %d: conv_select must be less than '
                      '%d.' % (select, count, count))

  def trains(self, name):
    """Whether variable `name` (not one the transfer adds) trains."""
    if self.mode == 'full':
      return True
    if self.mode == 'linear':
      return name.startswith('head/')
    return _in(name, self.trained) or (self.houlsby and any(
        part.startswith('adapter_') for part in name.split('/')))

  def frozen_norm(self, scope):
    """Whether a batch norm runs on its moving statistics while training."""
    return (self.mode == 'adapter' or
            (self.mode == 'linear' and not scope.startswith('head/')))

  def _fresh(self, getter, name, shape, init, kwargs):
    found = dict(kwargs, shape=shape, initializer=layers.initializer(init)
                 if isinstance(init, str) else init, regularizer=None, trainable=True,
                 constraint=None, partitioner=None)
    variable = getter(name, **found)
    _remember(name)
    return variable

  def getter(self, getter, name, *args, **kwargs):
    """The variable scope's custom getter: frozen variables, reparametrized weights."""
    if kwargs.get('trainable') is not False:
      kwargs['trainable'] = self.trains(name)
    base = getter(name, *args, **kwargs)
    if self.merged:
      return base
    prefix, shape = name[:-len('/kernel')], base.shape.as_list()
    fresh = kwargs.copy()
    fresh.pop('shape', None)
    if name in self.lora:
      rank, alpha = self.lora[name]
      a = self._fresh(getter, prefix + '/lora_a/kernel', [shape[0], rank],
                      'he_uniform', fresh)
      b = self._fresh(getter, prefix + '/lora_b/kernel', [rank, shape[1]], 'zeros',
                      fresh)
      return base + tf.matmul(a, b) * (alpha / rank)
    if name in self.ia3_out:
      scale = self._fresh(getter, prefix + '/ia3/kernel', [1, shape[1]], 'ones', fresh)
      return base * scale
    if name in self.ia3_in:
      scale = self._fresh(getter, prefix + '/ia3_ff/kernel', [1, shape[0]], 'ones',
                          fresh)
      return base * tf.transpose(scale)
    if name in self.locon:
      rank, alpha = self.locon[name]
      down = self._fresh(getter, prefix + '/locon_down/kernel',
                         [shape[0], shape[1], rank], 'he_uniform', fresh)
      up = self._fresh(getter, prefix + '/locon_up/kernel', [1, rank, shape[2]],
                       'zeros', fresh)
      return base + tf.einsum('abc,cd->abd', down, up[0]) * (alpha / rank)
    return base

  def _layer_variable(self, name, shape, init):
    variable = v1.get_variable(name, shape, initializer=init)
    if self.fresh_layers:
      _remember(v1.get_variable_scope().name + '/' + name)
    return variable

  def residual(self, x, scope):
    """A transformer residual branch, through baskerville's AdapterHoulsby."""
    if not self.houlsby:
      return x
    tiny = v1.truncated_normal_initializer(stddev=_TINY)
    width, latent = int(x.shape[-1]), self.found['houlsby_latent']
    with v1.variable_scope(scope) as vs:
      v1.add_to_collection(layers.SEQNN_LAYERS, vs.name)
      down = self._layer_variable('adapter_down/kernel', [width, latent], tiny)
      down_bias = self._layer_variable('adapter_down/bias', [latent],
                                       v1.zeros_initializer())
      up = self._layer_variable('adapter_up/kernel', [latent, width], tiny)
      up_bias = self._layer_variable('adapter_up/bias', [width], v1.zeros_initializer())
      hidden = tf.nn.relu(tf.tensordot(x, down, [[2], [0]]) + down_bias)
      return tf.tensordot(hidden, up, [[2], [0]]) + up_bias + x

  def after_conv(self, y, scope):
    """houlsby_se: y + y * tanh(squeeze-excite(y)) after a chosen convolution."""
    if scope not in self.se_convs:
      return y
    tiny = v1.truncated_normal_initializer(stddev=_TINY)
    width, rank = int(y.shape[-1]), self.found['se_rank']
    with v1.variable_scope('adapter_squeeze_excite_' + scope.split('/')[-1]) as vs:
      v1.add_to_collection(layers.SEQNN_LAYERS, vs.name)
      dense1 = self._layer_variable('dense/kernel', [width, rank], tiny)
      dense2 = self._layer_variable('dense_1/kernel', [rank, width], tiny)
      excite = tf.matmul(tf.nn.relu(tf.matmul(tf.reduce_mean(y, axis=1), dense1)),
                         dense2)
      return y + y * tf.tanh(excite[:, tf.newaxis, :])


def merged_values(values, adapters):
  """{variable: array} of a checkpoint -> the same with every LoRA, IA3 and LoCon of
  `adapters` (an Adapters of the training graph) folded into its weight, as
  hound_transfer's merge_lora, merge_ia3 and merge_locon do, and those variables (and
  their optimizer slots) dropped; houlsby and squeeze-excite variables stay. A
  checkpoint without a weight's adapter variables (hound_transfer's merged .h5, or the
  base model) keeps that weight as it is."""
  out, folded = dict(values), []

  def fold(name, parts, merge):
    prefix = name[:-len('/kernel')]
    found = ['%s/%s/kernel' % (prefix, p) for p in parts]
    if all(f in values for f in found):
      out[name] = merge(values[name], *[values[f] for f in found])
      folded.extend(found)

  for name, (rank, alpha) in adapters.lora.items():
    fold(name, ('lora_a', 'lora_b'), lambda w, a, b, s=alpha / rank: w + (a @ b) * s)
  for name in adapters.ia3_out:
    fold(name, ('ia3',), lambda w, s: w * s)
  for name in adapters.ia3_in:
    fold(name, ('ia3_ff',), lambda w, s: w * s.T)
  for name, (rank, alpha) in adapters.locon.items():
    fold(name, ('locon_down', 'locon_up'), lambda w, d, u, s=alpha / rank: w + np.einsum(
        'abc,cd->abd', d, u[0]) * s)
  return {n: v for n, v in out.items()
          if not any(n == f or n.startswith(f + '/') for f in folded)}


_FRESH_PARTS = ('lora_a', 'lora_b', 'ia3', 'ia3_ff', 'locon_down', 'locon_up')


def fresh_names(names, found):
  """The variables among names that a transfer adds to the model it starts from (a
  warm start does not look for them)."""
  if not found:
    return ()
  layers_too = not found['layers_from_model']
  return tuple(sorted(n for n in names if any(
      p in _FRESH_PARTS or (layers_too and p.startswith('adapter_'))
      for p in n.split('/'))))


def trained_summary(found, variables, trainable):
  """One line for the console: what a transfer trains, counted."""
  count = sum(int(np.prod(variables[n])) for n in trainable)
  total = sum(int(np.prod(s)) for s in variables.values())
  tops = sorted({'/'.join(n.split('/')[:2]) for n in trainable})
  what = 'adapter %s' % found['adapter'] if found['mode'] == 'adapter' else (
      'the head' if found['mode'] == 'linear' else 'every layer')
  frozen = {'full': '', 'linear': '; the trunk\'s batch norms use their moving '
            'statistics', 'adapter': '; batch norms use their moving statistics'}
  return ('transfer mode %s (%s) trains %d variables, %d of %d parameters, in %s%s.'
          % (found['mode'], what, len(trainable), count, total,
             ', '.join(tops[:8]) + (', ...' if len(tops) > 8 else ''),
             frozen[found['mode']]))
