r"""The network as an attribution reads it: one-hot and readout weights -> a scalar per
sequence, and its gradient, optionally with DeepLIFT's rescale rule.

  python -c "
  from estimator_pipeline.analysis import attribution_graph
  net = attribution_graph.load('params.json', 'model_best.h5', transform='sum',
                               deeplift=True)
  print(net.seq_length, net.bins, net.num_targets)"

Built from the params file and its checkpoint by the model's own code (the plan
`python -m export` restores), without its ensemble. With deeplift=True the graph is
built with a hook (models/seqnn/layers.py NONLINEAR_HOOK) that gives each activation
taken whole (GELU, softplus, ReLU, ...) and each max pool the gradient of DeepLIFT's
rescale rule, as tangermeme's deep_lift_shap and captum's DeepLift do: the batch is
[inputs; references], and an elementwise function's multiplier is
(f(x) - f(r)) / (x - r) (its derivative where |x - r| < 1e-6); a max pool's is
captum's (the change of the maximum sent to the maximal positions of both halves).
Convolutions, dense layers, batch norm at inference, average pooling, crops, residual
sums and upsampling are linear and keep their gradient. Anything else nonlinear in
the input (attention, layer norm, squeeze-excitation, softmax pooling) is refused,
naming its block.
"""

import shutil
import tempfile

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.train import exporting

v1 = tf.compat.v1

# Below this |x - r| an elementwise multiplier is the function's derivative (shap's).
EPSILON = 1e-6
RESCALE_SCOPE = 'deeplift_rescale'
# Ops that are nonlinear in an input that reaches them.
_NONLINEAR = {'Relu', 'Relu6', 'Elu', 'Selu', 'LeakyRelu', 'Sigmoid', 'Tanh',
              'Softplus', 'Softsign', 'Exp', 'Log', 'Log1p', 'Softmax', 'LogSoftmax',
              'Erf', 'Pow', 'Sqrt', 'Rsqrt', 'Square', 'Reciprocal', 'Abs', 'Sign',
              'MaxPool', 'MaxPoolV2', 'Max', 'Min', 'Maximum', 'Minimum',
              'ClipByValue', 'TopKV2', 'Gelu'}
# Ops that are nonlinear when two or more of their inputs depend on the input.
_PRODUCTS = {'Mul', 'RealDiv', 'Div', 'MatMul', 'BatchMatMul', 'BatchMatMulV2',
             'BatchMatMulV3', 'Einsum', 'SquaredDifference'}


def rescale(fn, x, kind='elementwise'):
  """fn(x) with DeepLIFT's rescale gradient; x's batch is [inputs; references]."""
  with tf.name_scope(RESCALE_SCOPE):

    @tf.custom_gradient
    def forward(v):
      y = fn(v)

      def grad(dy):
        half = tf.shape(v)[0] // 2
        xs, rs = v[:half], v[half:]
        delta = xs - rs
        safe = tf.abs(delta) > EPSILON
        denominator = tf.where(safe, delta, tf.ones_like(delta))
        if kind == 'max_pool':
          out_x, out_r = y[:half], y[half:]
          top = tf.maximum(out_x, out_r)
          moved = (tf.gradients(fn(xs), xs, grad_ys=dy[:half] * (top - out_r))[0] +
                   tf.gradients(fn(rs), rs, grad_ys=dy[:half] * (out_x - top))[0])
          mult = _where_safe(safe, moved / denominator,
                             lambda: tf.gradients(fn(xs), xs, grad_ys=dy[:half])[0])
          return tf.concat([mult, tf.zeros_like(mult)], axis=0)
        ratio = (y[:half] - y[half:]) / denominator
        mult = _where_safe(safe, ratio, lambda: tf.gradients(fn(xs), xs)[0])
        return dy * tf.concat([mult, mult], axis=0)

      return y, grad

    return forward(x)


def _where_safe(safe, value, fallback):
  """value where safe, else fallback() (the plain gradient); fallback's pass is run
  only when some position is not safe, which is rare (x and r equal there)."""
  return tf.cond(tf.reduce_all(safe), lambda: value,
                 lambda: tf.where(safe, value, fallback()))


class AttributionNetwork:
  """A restored network with its readout and gradient, in a session of its own.

  Attributes: seq_length, bins, num_targets, strand_pair (or None), deeplift.
  """

  def __init__(self, session, onehot, weights, values, gradient, strand_pair,
               deeplift, source):
    """weights: the (bin weights [n, bins], target weights [n, targets]) inputs."""
    self._session = session
    self._onehot, self._weights = onehot, weights
    self._values, self._gradient = values, gradient
    self.seq_length = int(onehot.shape[1])
    self.bins, self.num_targets = int(weights[0].shape[1]), int(weights[1].shape[1])
    self.strand_pair = strand_pair
    self.deeplift = deeplift
    self.source = source

  def _run(self, fetches, onehot, weights):
    try:
      return self._session.run(fetches, {self._onehot: onehot,
                                         self._weights[0]: weights[0],
                                         self._weights[1]: weights[1]})
    except (tf.errors.OpError, ValueError) as e:
      raise UserError('the model %s failed on a batch of shape %s: %s' % (
          self.source, list(np.shape(onehot)), short_tf_message(e)))

  def readout(self, onehot, weights):
    """float32 [n, L, 4], weights ([n, bins], [n, targets]) -> the readout [n]."""
    return self._run(self._values, onehot, weights)

  def gradient(self, onehot, weights):
    """-> d readout / d one-hot [n, L, 4]: the plain gradient or, in a DeepLIFT
    graph fed [inputs; references], the multipliers of the inputs' half."""
    found = self._run(self._gradient, onehot, weights)
    return found[:len(found) // 2] if self.deeplift else found

  def gradient_and_readout(self, onehot, weights):
    """(gradient() of the batch, the readout of every row), in one pass."""
    found, values = self._run((self._gradient, self._values), onehot, weights)
    return (found[:len(found) // 2] if self.deeplift else found), values


def load(params_file, checkpoint, transform='sum', deeplift=False, head='', gelu=''):
  """-> AttributionNetwork of a params file and its checkpoint (an .h5 included)."""
  overrides = {'params_file': params_file, 'head': head, 'gelu': gelu or 'tanh'}
  scratch = tempfile.mkdtemp(prefix='attribution-')
  try:
    plan, ckpt = exporting.restore_plan('', checkpoint, scratch, '', overrides)
    return build(plan, ckpt, transform, deeplift,
                 '%s with %s' % (params_file, checkpoint))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def build(plan, checkpoint, transform, deeplift, source):
  """The plan's network, restored from checkpoint (a prefix), as an
  AttributionNetwork."""
  seq_length = plan.data.params['model']['seq_length']
  graph = tf.Graph()
  with graph.as_default():
    onehot = v1.placeholder(tf.float32, [None, seq_length, 4], 'onehot')
    if deeplift:
      graph.add_to_collection(layers.NONLINEAR_HOOK, rescale)
    model = plan.spec.build(is_training=False, num_classes=plan.num_classes,
                            **plan.model_params)
    preds = model.predict(model.preprocess({'sequence': onehot}))['predictions']
    weights = (v1.placeholder(tf.float32, [None, preds.shape[1]], 'bin_weights'),
               v1.placeholder(tf.float32, [None, preds.shape[2]], 'target_weights'))
    values = readout_lib.tf_apply(preds, weights[0], weights[1], transform,
                                  rescale if deeplift else None)
    if deeplift:
      check_rescalable(graph, onehot)
      half = tf.shape(values)[0] // 2
      total = tf.reduce_sum(values[:half])
    else:
      total = tf.reduce_sum(values)
    gradient = tf.gradients(total, onehot)[0]
    saver = v1.train.Saver(v1.global_variables())
    session = v1.Session(graph=graph)
    saver.restore(session, checkpoint)
  graph.finalize()
  return AttributionNetwork(session, onehot, weights, values, gradient,
                            getattr(model, 'strand_pair', None), deeplift, source)


def check_rescalable(graph, onehot):
  """UserError naming the first block with an op DeepLIFT's rules do not cover."""
  reached = {onehot.op}
  for op in graph.get_operations():  # creation order is a topological order
    if not any(t.op in reached for t in op.inputs):
      continue
    reached.add(op)
    if RESCALE_SCOPE in op.name:
      continue
    dependent = sum(1 for t in op.inputs if t.op in reached)
    if op.type in _NONLINEAR or (op.type in _PRODUCTS and dependent > 1):
      parts = op.name.split('/')
      block = '/'.join(parts[:2]) if len(parts) > 2 else op.name
      raise UserError('--method=deepshap cannot explain the model\'s block %s (its '
                      '%s op is nonlinear in the input, as attention is, and '
                      'DeepLIFT has no rule for it): use --method=ig.' % (
                          block, op.type))
