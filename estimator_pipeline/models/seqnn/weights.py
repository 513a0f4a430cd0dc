"""basenji's and baskerville's trained weights (.h5) matched to the SeqNN graph.

basenji keeps a model as the .h5 that SeqNN.save writes (Keras' legacy HDF5 full-model
file: the weights under /model_weights) or that Keras' save_weights writes (the same
groups at the root). Keras loads such a file layer by layer in order, every layer with
weights taking the next stored layer's weights; so does this module. The graph's
layers are the scopes layers.py names in the SEQNN_LAYERS collection, in the order they
were created, which is the order basenji's Keras model lists them; each layer's weights
are its trainable variables, then the others (batch-norm moving statistics), as Keras
stores them:

  python -c "
  from estimator_pipeline.models.seqnn import weights
  print([(l.name, l.weights) for l in weights.H5Weights('model_best.h5').layers][:3])"

The match becomes a TensorFlow checkpoint with the graph's variable names
(write_checkpoint), which warm start and export read like any other checkpoint.
"""

import collections
import os

import numpy as np
import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import layers

v1 = tf.compat.v1

_FIX = ('pass the params file (and --head) the .h5 was saved from, or name the block in '
        '--checkpoint_exclude_scopes to train it anew')

FileLayer = collections.namedtuple('FileLayer', 'name weights')  # weights: (name, shape)
ModelLayer = collections.namedtuple('ModelLayer', 'scope block variables')


def _text(value):
  return value.decode('utf8') if isinstance(value, bytes) else str(value)


class H5Weights:
  """The layers with weights of a Keras 2 .h5 file, in the file's order."""

  def __init__(self, path, flag='--checkpoint_path'):
    import h5py  # pylint: disable=g-import-not-at-top  (only .h5 users pay for it)
    self.path, self.flag = path, flag
    try:
      self._file = h5py.File(path, 'r')
    except OSError as e:
      raise UserError('%s=%s cannot be read as HDF5 (%s).' % (flag, path, e)) from None
    group = self._file['model_weights'] if 'model_weights' in self._file else self._file
    if 'layer_names' not in group.attrs:
      raise UserError('%s=%s is an HDF5 file but not Keras weights (no layer_names): '
                      'pass the .h5 that basenji\'s SeqNN.save or Keras\' save_weights '
                      'wrote.' % (flag, path))
    self._group = group
    self.layers = []
    for name in (_text(n) for n in group.attrs['layer_names']):
      names = [_text(w) for w in group[name].attrs.get('weight_names', [])]
      if names:
        self.layers.append(FileLayer(name, [(w, list(group[name][w].shape))
                                            for w in names]))

  def value(self, layer, weight):
    """The array of weight (index) of layer (index), as float32."""
    layer = self.layers[layer]
    return np.asarray(self._group[layer.name][layer.weights[weight][0]],
                      dtype=np.float32)

  def close(self):
    self._file.close()


def model_layers(graph=None):
  """[ModelLayer(scope, block, [(variable name, shape)])] of a SeqNN graph, in order."""
  graph = graph or v1.get_default_graph()
  scopes = []
  for scope in graph.get_collection(layers.SEQNN_LAYERS):
    if scope not in scopes:
      scopes.append(scope)
  # A composite layer (attention, squeeze-excite) owns the layers inside it.
  outer = [s for s in scopes if not any(s.startswith(o + '/') for o in scopes)]
  owned = collections.OrderedDict((s, ([], [])) for s in outer)
  trainable = {v.op.name for v in graph.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES)}
  # A transfer's new variables are not in the model it starts from; frozen weights
  # are stored where Keras stores them (a layer's weights, then its statistics).
  fresh = {v.op.name for v in graph.get_collection(layers.ADAPTER_VARIABLES)}
  stats = {v.op.name for v in graph.get_collection(v1.GraphKeys.MOVING_AVERAGE_VARIABLES)}
  for variable in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
    name = variable.op.name
    if name in fresh:
      continue
    for scope in outer:
      if name == scope or name.startswith(scope + '/'):
        owned[scope][0 if name in trainable or name not in stats else 1].append(
            (name, variable.shape.as_list()))
        break
  return [ModelLayer(scope, '/'.join(scope.split('/')[:2]), first + rest)
          for scope, (first, rest) in owned.items() if first or rest]


def _excluded(name, scopes):
  return any(name == s or name.startswith(s.rstrip('/') + '/') for s in scopes)


def _short(variable, block):
  return variable[len(block) + 1:]


def _problem(model_layer, file_layer, h5):
  """The first weight of model_layer that file_layer does not give: a message, or None."""
  ours = [(n, s) for n, s in model_layer.variables]
  theirs = file_layer.weights if file_layer else []
  block = model_layer.block
  where = '%s=%s does not fit block %s' % (h5.flag, h5.path, block)
  if not theirs:
    name, shape = ours[0]
    return ('%s: its weight %s (shape %s) is not in the .h5 (it holds weights for %d '
            'layers, fewer than the model)' % (where, _short(name, block), shape,
                                             len(h5.layers)))
  for (name, shape), (weight, stored) in zip(ours, theirs):
    if list(shape) != list(stored):
      return ('%s: its weight %s has shape %s in the model but %s in the .h5 (%s of '
              'layer %s)' % (where, _short(name, block), shape, stored, weight,
                             file_layer.name))
  if len(ours) != len(theirs):
    return ('%s: its layer %s has %d weights (%s), but layer %s of the .h5 holds %d '
            '(%s)' % (where, _short(model_layer.scope, block), len(ours),
                      ', '.join('%s %s' % (_short(n, model_layer.scope), s)
                                for n, s in ours),
                      file_layer.name, len(theirs),
                      ', '.join('%s %s' % (n, s) for n, s in theirs)))
  return None


def match(model, h5, exclude_scopes=(), ignore_missing=False):
  """{variable name: (file layer index, weight index)} and the skipped variables.

  Layers are matched in order, as Keras loads an .h5; layers in exclude_scopes take
  their place in that order but nothing from the file. A missing or mismatched weight
  is a UserError naming the block, the weight and both shapes (with ignore_missing,
  its layer is skipped and listed).
  """
  mapping, skipped = {}, []
  for i, layer in enumerate(model):
    if _excluded(layer.scope, exclude_scopes):
      continue
    file_layer = h5.layers[i] if i < len(h5.layers) else None
    problem = _problem(layer, file_layer, h5)
    if problem:
      if not ignore_missing:
        raise UserError(problem + ': ' + _FIX + '.')
      skipped.extend(n for n, _ in layer.variables)
      continue
    for j, (name, _) in enumerate(layer.variables):
      mapping[name] = (i, j)
  if len(h5.layers) > len(model) and not exclude_scopes and not ignore_missing:
    extra = h5.layers[len(model)]
    raise UserError('%s=%s holds weights for %d layers, the model has %d: its layer %s '
                    '(%s) lies beyond the model\'s last block: %s.' % (
                        h5.flag, h5.path, len(h5.layers), len(model), extra.name,
                        ', '.join('%s %s' % w for w in extra.weights), _FIX))
  return mapping, skipped


def write_checkpoint(h5, mapping, prefix):
  """Writes the matched weights as a TensorFlow checkpoint at prefix (global step 0,
  which an export restores too); returns prefix."""
  values = {n: h5.value(*mapping[n]) for n in mapping}
  values['global_step'] = np.int64(0)
  return save_arrays(values, prefix)


def save_arrays(values, prefix):
  """Writes {variable name: array} as a TensorFlow checkpoint at prefix; returns it."""
  names = sorted(values)
  arrays = [np.asarray(values[n]) for n in names]
  tf.io.gfile.makedirs(os.path.dirname(prefix))
  with tf.Graph().as_default():
    feeds = [v1.placeholder(tf.as_dtype(v.dtype), v.shape) for v in arrays]
    save = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                             shape_and_slices=[''] * len(names), tensors=feeds)
    with v1.Session() as sess:
      sess.run(save, dict(zip(feeds, arrays)))
  return prefix
