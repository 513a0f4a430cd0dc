"""Mixed precision in graph mode: float16 computation, float32 variables, and the
dynamic loss scale of Keras' LossScaleOptimizer, as TF1 graph ops.

Training builds the model under `compute_scope()`: every float variable is created in
float32 and read as float16 (batch-norm moving statistics and slim's BatchNorm
parameters stay float32, as the fused kernels want them); the inputs are cast to float16
and the outputs back to float32, so the final activation and the loss are float32 (the
SeqNN's head casts before its activation, as baskerville's append_activation casts).
Checkpoints hold float32 variables only, plus the loss scale:

  loss_scale              the factor the loss is multiplied by before the gradients
  loss_scale/good_steps   finite steps since the scale last changed

A step whose gradients are not finite is skipped (no update) and halves the scale; 2000
finite steps in a row double it (Keras' defaults: start 2**15, growth every 2000):

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models import precision
  with tf.Graph().as_default():
    with precision.compute_scope():
      w = tf.compat.v1.get_variable('w', [2])
    print(w.dtype, tf.compat.v1.global_variables()[0].dtype)"
"""

import contextlib

import tensorflow as tf

v1 = tf.compat.v1

COMPUTE_DTYPE = tf.float16
INITIAL_SCALE = 2.0 ** 15
GROWTH_STEPS = 2000
SCALE_NAME = 'loss_scale'
GOOD_STEPS_NAME = 'loss_scale/good_steps'
# Variables kept float32 when read: what fused batch norm takes in float32.
_FLOAT32_PARTS = ('BatchNorm/beta', 'BatchNorm/gamma', 'BatchNorm/moving_mean',
                  'BatchNorm/moving_variance')


def _getter(getter, name, *args, **kwargs):
  dtype = tf.as_dtype(kwargs.get('dtype') or tf.float32)
  if not dtype.is_floating:
    return getter(name, *args, **kwargs)
  kwargs['dtype'] = tf.float32
  variable = getter(name, *args, **kwargs)
  statistics = v1.GraphKeys.MOVING_AVERAGE_VARIABLES in (kwargs.get('collections')
                                                         or ())
  if statistics or any(name.endswith(p) for p in _FLOAT32_PARTS):
    return variable
  return tf.cast(variable, COMPUTE_DTYPE)


@contextlib.contextmanager
def compute_scope():
  """Variables created inside are float32 and read as float16."""
  with v1.variable_scope(v1.get_variable_scope(), custom_getter=_getter,
                         auxiliary_name_scope=False):
    yield


def to_compute(value):
  """A float tensor (or a dict of them) cast to float16."""
  if isinstance(value, dict):
    return {k: to_compute(v) for k, v in value.items()}
  if isinstance(value, tf.Tensor) and value.dtype.is_floating:
    return tf.cast(value, COMPUTE_DTYPE)
  return value


def to_float32(value):
  """float16 tensors (or a dict of them) cast back to float32."""
  if isinstance(value, dict):
    return {k: to_float32(v) for k, v in value.items()}
  if isinstance(value, tf.Tensor) and value.dtype == COMPUTE_DTYPE:
    return tf.cast(value, tf.float32)
  return value


def scale_variables():
  """(loss scale, good steps): float32 and int64 variables in the checkpoint."""
  scale = v1.get_variable(SCALE_NAME, [], tf.float32,
                          v1.constant_initializer(INITIAL_SCALE), trainable=False)
  good = v1.get_variable(GOOD_STEPS_NAME, [], tf.int64, v1.zeros_initializer(),
                         trainable=False)
  return scale, good


def scaled_gradients(opt, loss, variables, scale):
  """[(gradient, variable)] of loss * scale, divided by scale, and whether every one
  is finite."""
  grads_and_vars = [(g, v) for g, v in opt.compute_gradients(loss * scale, variables)
                    if g is not None]
  unscaled = [(tf.cast(g, tf.float32) / scale, v) for g, v in grads_and_vars]
  finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g, _ in unscaled])
  return unscaled, finite


def update_scale(scale, good, finite):
  """The op that moves the scale after a step, as Keras' dynamic loss scale does."""
  grown = good + 1 >= GROWTH_STEPS
  new_scale = tf.where(finite, tf.where(grown, scale * 2.0, scale),
                       tf.maximum(scale / 2.0, 1.0))
  new_good = tf.where(tf.logical_and(finite, tf.logical_not(grown)), good + 1,
                      tf.zeros_like(good))
  return tf.group(scale.assign(new_scale), good.assign(new_good))


class ResumingSaver(v1.train.Saver):
  """A Saver that also restores checkpoints written without the loss scale (a float32
  run's): the scale then starts at its initial value."""

  def __init__(self, optional, **kwargs):
    super().__init__(**kwargs)
    self._optional = list(optional)
    names = {v.op.name for v in self._optional}
    self._without = v1.train.Saver(
        var_list=[v for v in v1.global_variables() if v.op.name not in names],
        **kwargs)

  def restore(self, sess, save_path):
    have = tf.train.load_checkpoint(save_path).get_variable_to_shape_map()
    if all(v.op.name in have for v in self._optional):
      return super().restore(sess, save_path)
    self._without.restore(sess, save_path)
    sess.run([v.initializer for v in self._optional])
    return None
