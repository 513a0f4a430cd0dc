"""The gradient forms of models/seqnn/conv_grad.py against TensorFlow's own.

Each form is forced on and off, so all are checked whichever kernel library runs the
test.
"""

import numpy as np
import pytest
import tensorflow as tf

import estimator_pipeline  # noqa: F401  pylint: disable=unused-import
from estimator_pipeline.models.seqnn import conv_grad
from estimator_pipeline.models.seqnn import layers

v1 = tf.compat.v1
# make test runs these again with oneDNN off: the forms chosen differ by kernel library.
pytestmark = pytest.mark.both_kernels


def _ancestor_types(tensor):
  """Types of the ops a fetch of tensor runs (the graph may hold others, unrun)."""
  seen, stack = set(), [tensor.op]
  while stack:
    op = stack.pop()
    if op not in seen:
      seen.add(op)
      stack.extend(t.op for t in op.inputs)
      stack.extend(op.control_inputs)
  return [op.type for op in seen]


def _gradients(force, shape, width, filters, padding, rate):
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    x = v1.get_variable('x', initializer=rng.randn(*shape).astype(np.float32))
    kernel = v1.get_variable(
        'kernel', initializer=rng.randn(width, shape[-1], filters).astype(np.float32))
    y = conv_grad.convolution(x, kernel, padding=padding, dilation_rate=rate,
                                force=force)
    weights = tf.constant(rng.randn(*y.shape.as_list()).astype(np.float32))
    loss = tf.reduce_sum(tf.square(y) * weights)
    grads = tf.gradients(loss, [kernel, x])
    ops = (_ancestor_types(grads[0]), _ancestor_types(grads[1]))
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      return sess.run([y] + grads), ops


@pytest.mark.parametrize('form', [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize('width,padding,rate', [
    (5, 'SAME', 1), (3, 'SAME', 4), (4, 'SAME', 3), (2, 'SAME', 1), (5, 'VALID', 2)])
def test_same_outputs_and_gradients(width, padding, rate, form):
  (y0, dw0, dx0), ops0 = _gradients((False, False), (2, 64, 6), width, 7, padding,
                                    rate)
  (y1, dw1, dx1), ops1 = _gradients(form, (2, 64, 6), width, 7, padding, rate)
  np.testing.assert_array_equal(y1, y0)  # The forward op is TensorFlow's own.
  np.testing.assert_allclose(dw1, dw0, rtol=0, atol=1e-5 * np.abs(dw0).max())
  np.testing.assert_allclose(dx1, dx0, rtol=0, atol=1e-5 * np.abs(dx0).max())
  # What computes each gradient: TensorFlow's op, or the faster form.
  (dw_ops0, dx_ops0), (dw_ops1, dx_ops1) = ops0, ops1
  assert 'Conv2DBackpropFilter' in dw_ops0 and 'MatMul' not in dw_ops0
  assert 'Conv2DBackpropInput' in dx_ops0
  by_forward, by_products = form
  assert ('Conv2DBackpropInput' in dx_ops1) != by_forward
  assert ('Conv2DBackpropFilter' in dw_ops1) != by_products
  assert dw_ops1.count('MatMul') == (width if by_products else 0)


def test_chosen_only_where_it_pays():
  wide = tf.zeros([5, 128, 128])
  x = tf.zeros([1, 32, 128])
  kernels = conv_grad._kernels()  # pylint: disable=protected-access
  assert conv_grad.forms(x, wide, 1) == (kernels != 'gpu', kernels == 'onednn')
  assert conv_grad.forms(x, wide, 2) == (False, False)  # Strided: TensorFlow's.
  assert conv_grad.forms(x, tf.zeros([5, 128, 64]), 1) == (False, False)  # Narrow.
  assert conv_grad.forms(x, tf.zeros([1, 256, 256]), 1) == (False, False)  # 1 wide.
  assert conv_grad.forms(tf.cast(x, tf.float16), wide, 1) == (False, False)


def test_a_seqnn_conv_trains_the_same_either_way(monkeypatch):
  """layers.conv1d routes through conv_grad: forcing both forms changes nothing but
  float32 rounding in the gradients."""
  results = []
  for form in ((False, False), (True, True)):
    monkeypatch.setattr(conv_grad, 'forms', lambda *a, f=form, **k: f)
    with tf.Graph().as_default():
      v1.set_random_seed(1)
      x = tf.constant(np.random.RandomState(2).randn(2, 32, 8).astype(np.float32))
      y = layers.conv1d(x, 16, 5, ctx=None, dilation_rate=2)
      grads = tf.gradients(tf.reduce_sum(tf.square(y)), v1.trainable_variables())
      with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        results.append(sess.run([y] + grads))
  for plain, products in zip(*results):
    np.testing.assert_allclose(products, plain, rtol=0, atol=1e-5 * np.abs(plain).max())
