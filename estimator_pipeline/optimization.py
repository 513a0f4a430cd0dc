"""Learning-rate schedules (from tf-models-official) and TF1 optimizers for model_fn.

Graph mode: the schedule is called on the global step tensor, and the optimizer is a
`tf.compat.v1.train` optimizer, because Keras optimizers do not work with
`minimize(loss_tensor)` inside an Estimator's model_fn.

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline import optimization
  print(optimization.learning_rate(0.01, tf.constant(500), decay_steps=100, decay_rate=0.94))"
"""

import tensorflow as tf
from official.modeling.optimization import lr_schedule

from estimator_pipeline.errors import UserError

OPTIMIZERS = ('sgd', 'momentum', 'rmsprop', 'adam')


def learning_rate(initial, global_step, *, decay_steps, decay_rate, staircase=True):
  """slim's default: exponential decay, stepped, via tf-models-official's schedule."""
  schedule = lr_schedule.ExponentialDecayWithOffset(
      initial_learning_rate=initial, decay_steps=decay_steps, decay_rate=decay_rate,
      staircase=staircase)
  return schedule(tf.cast(global_step, tf.float32))


def optimizer(name, lr, *, momentum=0.9):
  """A tf.compat.v1.train optimizer by name (see OPTIMIZERS)."""
  v1 = tf.compat.v1.train
  if name == 'sgd':
    return v1.GradientDescentOptimizer(lr)
  if name == 'momentum':
    return v1.MomentumOptimizer(lr, momentum)
  if name == 'rmsprop':
    # slim's train_image_classifier defaults.
    return v1.RMSPropOptimizer(lr, decay=0.9, momentum=momentum, epsilon=1.0)
  if name == 'adam':
    return v1.AdamOptimizer(lr)
  raise UserError('--optimizer=%s is not known; known: %s.' % (name, ', '.join(OPTIMIZERS)))
