r"""A 1-D convolution whose gradients take faster forms on a CPU, for wide convolutions.

TensorFlow's gradients of a wide 1-D convolution are slow on the CPU, on both kernel
libraries. In a training step of Basenji2 (288 to 768 filters) the gradients took
62 to 73% of the op time and the forward convolutions 14%:

- The input gradient (Conv2DBackpropInput) of a dilated convolution runs on the
  space_to_batch form, many short rows, where Eigen's kernel is at its worst: 850 ms a
  step against 170 ms for the same convolutions forward. The same gradient is a forward
  convolution of the output's gradient with the kernel flipped and transposed, at the
  same dilation; that is what is built here, on both kernel libraries.
- The filter gradient (Conv2DBackpropFilter) of oneDNN (TF_ENABLE_ONEDNN_OPTS=1, the
  default on CPUs with AVX-512) takes two to three times as long as the forward
  convolution. One matrix product per tap of the kernel, dW[t] = x[shifted by t]^T dy,
  takes half of oneDNN's time; Eigen's own filter gradient is faster than the
  products, so they are used with oneDNN only.

Both apply on a machine that sees no GPU (cuDNN's gradients are fast), for stride 1,
float32, and at least MIN_CHANNEL_PRODUCT input x output channels; elsewhere the
convolution is tf.nn.convolution, as before. The forward convolution is always
TensorFlow's: predictions are the same to the bit, the gradients the same to float32
rounding (tests/test_conv_grad.py; bench/CHANGES.md, 16).

  python -c "
  import tensorflow as tf
  from estimator_pipeline.models.seqnn import conv_grad
  print(conv_grad.forms(tf.zeros([1, 8, 256]), tf.zeros([5, 256, 256]), 1))"
"""

import functools

import tensorflow as tf

from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-direct-tensorflow-import

# Below this many input x output channels TensorFlow's own gradients are as fast or
# faster (64 x 72 channels on oneDNN: 20 ms for its filter gradient, 28 ms for the
# products; 16 ms for its input gradient, 27 ms for the forward form).
MIN_CHANNEL_PRODUCT = 128 * 128


@functools.lru_cache(maxsize=None)
def _kernels():
  """'gpu', 'onednn' or 'eigen': what runs this process's convolutions."""
  if tf.config.list_physical_devices('GPU'):
    return 'gpu'
  return 'onednn' if _pywrap_util_port.IsMklEnabled() else 'eigen'


def forms(x, kernel, stride):
  """(input gradient by a forward convolution?, filter gradient by products?)."""
  width, channels, filters = kernel.shape.as_list()
  if (_kernels() == 'gpu' or stride != 1 or x.dtype != tf.float32 or
      x.shape[1] is None or width == 1 or channels * filters < MIN_CHANNEL_PRODUCT):
    return False, False
  return True, _kernels() == 'onednn'


def convolution(x, kernel, *, stride=1, padding='SAME', dilation_rate=1, force=None):
  """tf.nn.convolution(x, kernel, ...) for x [batch, length, channels].

  force: None decides by forms(); a pair (input form, filter form) of booleans forces
  them (tests check every form whichever kernel library runs them).
  """
  def plain(inputs, weights):
    return tf.nn.convolution(inputs, weights, strides=stride, padding=padding,
                             dilations=dilation_rate)
  by_forward, by_products = force or forms(x, kernel, stride)
  if not (by_forward or by_products):
    return plain(x, kernel)

  @tf.custom_gradient
  def conv(inputs, weights):
    outputs = plain(inputs, weights)

    def grad(d_outputs):
      shape = weights.shape.as_list()
      left, right = _padding(shape[0], padding, dilation_rate)
      if by_forward:
        d_inputs = _input_gradient(d_outputs, weights, left, right, dilation_rate)
      else:
        d_inputs = tf.gradients(outputs, inputs, grad_ys=d_outputs)[0]
      if by_products:
        d_weights = _filter_gradient(inputs, d_outputs, shape, left, right,
                                     dilation_rate)
      else:
        d_weights = tf.gradients(outputs, weights, grad_ys=d_outputs)[0]
      return d_inputs, d_weights
    return outputs, grad
  return conv(x, tf.convert_to_tensor(kernel))


def _padding(width, padding, rate):
  """The zeros TensorFlow puts (left, right) of the input for this padding."""
  if padding == 'VALID':
    return 0, 0
  total = (width - 1) * rate
  return total // 2, total - total // 2


def _input_gradient(dy, kernel, left, right, rate):
  """dX = dy, padded by what the forward padding left out, convolved (VALID) with the
  kernel reversed in its taps and with input and output channels swapped."""
  total = (kernel.shape[0] - 1) * rate
  padded = tf.pad(dy, [[0, 0], [total - left, total - right], [0, 0]])
  flipped = tf.transpose(tf.reverse(kernel, [0]), [0, 2, 1])
  return tf.nn.convolution(padded, flipped, padding='VALID', dilations=rate)


def _filter_gradient(x, dy, kernel_shape, left, right, rate):
  """dW[t] = sum over batch and positions of x[p + t * rate - left]^T dy[p]."""
  width, channels, filters = kernel_shape
  out_length = dy.shape[1]
  x = tf.pad(x, [[0, 0], [left, right], [0, 0]])
  d_flat = tf.reshape(dy, [-1, filters])
  taps = []
  for t in range(width):
    # One shifted copy of x at a time: each waits for the previous product, so the
    # gradient never holds more than one copy (an im2col of all taps would hold
    # width copies, gigabytes for a long sequence).
    with tf.control_dependencies(taps[-1:]):
      shifted = tf.reshape(x[:, t * rate:t * rate + out_length], [-1, channels])
    taps.append(tf.matmul(shifted, d_flat, transpose_a=True))
  return tf.stack(taps)
