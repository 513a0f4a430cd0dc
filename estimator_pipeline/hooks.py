"""Session hooks and exporters that report progress while the Estimator trains.

  python train.py ... --log_every_steps=20
  # step 40/2000  loss 1.2034  lr 0.010000  812.4 ex/s  ETA 2m31s
"""

import time

import tensorflow as tf

from estimator_pipeline import console
from estimator_pipeline import model_fn as model_fn_lib


class ProgressHook(tf.compat.v1.train.SessionRunHook):
  """One console line every `every_n_steps`: step/total, loss, lr, examples/sec, ETA."""

  def __init__(self, num_steps, batch_size, every_n_steps):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._every = max(1, every_n_steps)

  def begin(self):
    graph = tf.compat.v1.get_default_graph()
    self._global_step = tf.compat.v1.train.get_global_step()
    self._fetches = {'step': self._global_step}
    for key, name in (('loss', model_fn_lib.TOTAL_LOSS_NAME + ':0'),
                      ('lr', model_fn_lib.LEARNING_RATE_NAME + ':0')):
      try:
        self._fetches[key] = graph.get_tensor_by_name(name)
      except KeyError:
        pass
    self._last_time = None
    self._last_step = None

  def before_run(self, run_context):
    del run_context
    return tf.compat.v1.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    del run_context
    values = run_values.results
    step = int(values['step']) + 1  # The value was read before this step's update.
    now = time.time()
    if self._last_time is None:
      self._last_time, self._last_step = now, step
      return
    if (step % self._every and step < self._num_steps) or step == self._last_step:
      # The second test: with gradient accumulation several batches share a step.
      return
    steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_time, self._last_step = now, step
    parts = ['step %d/%d' % (step, self._num_steps)]
    if 'loss' in values:
      parts.append('loss %.4f' % values['loss'])
    if 'lr' in values:
      parts.append('lr %.6f' % values['lr'])
    parts.append('%.1f ex/s' % (steps_per_sec * self._batch_size))
    if steps_per_sec > 0:
      parts.append('ETA %s' % console.duration(
          (self._num_steps - step) / steps_per_sec))
    console.line('  '.join(parts))


class EvalReporter(tf.estimator.Exporter):
  """Prints one line after each evaluation.

  train_and_evaluate hands every evaluation's result to its exporters, which makes an
  exporter that writes nothing the one place to see them all.
  """

  @property
  def name(self):
    return 'eval_reporter'

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del estimator, export_path, checkpoint_path, is_the_final_export
    console.line('eval at step %d: %s' % (int(eval_result.get('global_step', -1)),
                                          console.metrics_text(eval_result)))
    return None
