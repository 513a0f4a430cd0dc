"""See a model before training it: one row per block (its name, output shape and
trainable parameters), the receptive field, and the trainable parameters in all, as
basenji users read them from `seqnn_model.model.summary()`. Each model family builds
its model for it (ModelSpec.describe: seqnn/describe.py, image/describe.py):

  python -m estimator_pipeline.models --model_name=seqnn --params_file=params.json
  python -m estimator_pipeline.models --model_name=resnet_v1_50

Blocks are the name scopes two levels deep (trunk/conv_tower_1, resnet_v1_50/block1);
a block's output is the last tensor of its scope that a later block reads. The
receptive field is read from the graph: convolutions and pools from their kernels,
strides and dilations along the sequence (an image's width), every other op as
position-wise, except the ops a model marks in RECEPTIVE_FIELD (attention, flattening,
global pooling, upsampling), which can see every position.
"""

import dataclasses
import math
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import tensor_util  # pylint: disable=g-direct-tensorflow-import


v1 = tf.compat.v1

# Graph collection of 'output name<TAB>source name<TAB>kind<TAB>amount' strings: kind is
# whole (sees every position), pool (windows of amount), upsample (amount copies of
# each position) or window (amount positions averaged).
RECEPTIVE_FIELD = 'receptive_field_overrides'
WHOLE = math.inf


def mark_field(output, source, kind, amount=0):
  """Records how `output` sees along the sequence relative to `source`."""
  v1.add_to_collection(RECEPTIVE_FIELD, '%s\t%s\t%s\t%s' % (
      output.name, source.name, kind, amount))
  return output


@dataclasses.dataclass
class Overview:
  rows: List[Tuple[str, Tuple, int]]  # (block, output shape, trainable parameters)
  output_shape: Tuple
  trainable: int
  input_length: int
  receptive_field: float  # in input positions; WHOLE when every position is seen
  largest_finite: Optional[int]  # the widest field short of the whole input
  unit: str


def _apply(kind, amount, field):
  size, jump = field
  if kind == 'whole':
    return WHOLE, jump
  if kind == 'pool':
    return size + (amount - 1) * jump, jump * amount
  if kind == 'upsample':
    return size, jump / amount
  return size + (amount - 1) * jump, jump  # window


def _reduces_positions(op, rank):
  axes = tensor_util.constant_value(op.inputs[1])
  if axes is None:
    return True
  spatial = {1} if rank == 3 else {1, 2}
  return bool(spatial & {int(a) % rank for a in np.ravel(axes)})


def _flattens(before, after):
  """Whether a reshape folds positions into the feature axis (known, other width)."""
  if not before.rank or not after.rank or after.rank >= before.rank:
    return False
  return (before[-1] is not None and after[-1] is not None and
          before[-1] != after[-1])


def _op_field(op, fields):
  """The field of op's outputs from its inputs' fields (None: not from the input)."""
  known = [fields.get(t.name) for t in op.inputs]
  if not any(known):
    return None
  kind = op.type
  if kind in ('Conv2D', 'DepthwiseConv2dNative') and known[0]:
    size, jump = known[0]
    width = int(op.inputs[1].shape[1])
    stride, dilation = op.get_attr('strides')[2], op.get_attr('dilations')[2]
    return size + (width - 1) * dilation * jump, jump * stride
  if kind in ('MaxPool', 'AvgPool') and known[0]:
    size, jump = known[0]
    width, stride = op.get_attr('ksize')[2], op.get_attr('strides')[2]
    return size + (width - 1) * jump, jump * stride
  if kind in ('Mean', 'Sum', 'Max', 'Min', 'Prod') and op.inputs[0].shape.rank in (3, 4):
    if _reduces_positions(op, op.inputs[0].shape.rank):
      return WHOLE, known[0][1]
  if kind in ('MatMul', 'BatchMatMulV2') and all(known[:2]):
    return WHOLE, known[0][1]  # attention: positions against positions
  if kind == 'Reshape' and _flattens(op.inputs[0].shape, op.outputs[0].shape):
    return WHOLE, known[0][1]  # positions flattened into features
  # Statistics broadcast back over positions (per-image standardization) are not a
  # view of other positions; a model marks what is (squeeze-excite, attention).
  present = [f for f, t in zip(known, op.inputs)
             if f and not _broadcast(t.shape, op.outputs[0].shape)] or [
                 f for f in known if f]
  return max(f[0] for f in present), max(f[1] for f in present)


def _broadcast(shape, out):
  """Whether an input of shape is spread over the positions of an output of out."""
  if not out.rank or out.rank not in (3, 4) or shape.rank is None:
    return False
  if shape.rank < out.rank:
    return True
  axes = (1,) if out.rank == 3 else (1, 2)
  return any(shape[a] == 1 and out[a] != 1 for a in axes)


def receptive_fields(graph, source):
  """{tensor name: (field size, jump)} of every tensor that depends on source."""
  fields = {source.name: (1, 1)}
  overrides = {}
  for entry in graph.get_collection(RECEPTIVE_FIELD):
    output, origin, kind, amount = entry.split('\t')
    overrides[output] = (origin, kind, float(amount))
  for op in graph.get_operations():
    field = _op_field(op, fields)
    for out in op.outputs:
      if out.name in overrides:
        origin, kind, amount = overrides[out.name]
        if fields.get(origin):
          fields[out.name] = _apply(kind, amount, fields[origin])
      elif field is not None:
        fields[out.name] = field
  return fields


def _block_output(scope, ops, final):
  """The last float tensor of the scope's ops that a later op outside reads (or the
  model's output)."""
  for op in reversed(ops):
    if op.type == 'Const':
      continue
    for tensor in op.outputs:
      if not tensor.dtype.is_floating or not tensor.shape.rank:
        continue
      outside = [c for c in tensor.consumers() if c.name != scope and
                 not c.name.startswith(scope + '/')]
      if outside or tensor is final:
        return tensor
  return None


def _blocks(graph, roots, final):
  """[(scope, its output)] for each two-level scope (an op of that name included)."""
  ops = graph.get_operations()
  scopes = {'/'.join(op.name.split('/')[:2]) for op in ops
            if op.name.count('/') >= 2 and op.name.split('/')[0] in roots}
  members = {}
  for op in ops:
    scope = '/'.join(op.name.split('/')[:2])
    if scope in scopes:
      members.setdefault(scope, []).append(op)
  found = []
  for scope, scope_ops in members.items():
    output = _block_output(scope, scope_ops, final)
    if output is not None:
      found.append((scope, output))
  return found


def describe(model, features, source, unit='bp'):
  """Builds model on the features placeholders in the current graph -> Overview.

  source: the placeholder whose positions the receptive field counts (the sequence,
  or the image whose width is counted).
  """
  graph = v1.get_default_graph()
  prediction = model.predict(model.preprocess(features))
  output = next(iter(prediction.values()))
  trainable = v1.trainable_variables()
  roots = {v.op.name.split('/')[0] for v in trainable}
  rows = []
  for scope, tensor in _blocks(graph, roots, output):
    params = sum(int(np.prod(v.shape)) for v in trainable
                 if v.op.name.startswith(scope + '/'))
    rows.append((scope, tuple(tensor.shape.as_list()), params))
  fields = receptive_fields(graph, source)
  finite = [f[0] for f in fields.values() if f[0] != WHOLE]
  return Overview(rows=rows, output_shape=tuple(output.shape.as_list()),
                  trainable=sum(int(np.prod(v.shape)) for v in trainable),
                  input_length=int(source.shape[-2]),
                  receptive_field=fields.get(output.name, (WHOLE, 1))[0],
                  largest_finite=int(max(finite)) if finite else None, unit=unit)


def lines(overview):
  """The printed table: blocks, then the receptive field, then the parameters."""
  width = max([len(r[0]) for r in overview.rows] + [5]) + 2
  out = ['%-*s%-26s%s' % (width, 'block', 'output shape', 'trainable parameters')]
  out += ['%-*s%-26s%d' % (width, name, str(shape).replace(', ', ','), params)
          for name, shape, params in overview.rows]
  if overview.receptive_field == WHOLE:
    out.append('receptive field: every position of the %d %s input (attention, '
               'flattening or global pooling); %s %s before that' % (
                   overview.input_length, overview.unit,
                   overview.largest_finite, overview.unit))
  else:
    out.append('receptive field: %d %s' % (overview.receptive_field, overview.unit))
  out.append('trainable parameters: %d' % overview.trainable)
  return out
