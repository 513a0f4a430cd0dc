"""Session hooks and exporters that report progress while the Estimator trains.

  python train.py ... --log_every_steps=20
  # step 40/2000 (2%)  loss 1.2034  lr 0.010000  812.4 ex/s  ETA 2m31s
"""

import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.core import console
from estimator_pipeline.models import loops
from estimator_pipeline.models import model_fn as model_fn_lib


class ProgressHook(tf.compat.v1.train.SessionRunHook):
  """The step line: step/total, loss, lr, examples/sec, ETA (see console.Progress).

  A plain line every `every_n_steps` (and at the last step) when stderr is not a
  terminal; on a terminal, one live line redrawn as the steps go.
  """

  def __init__(self, num_steps, batch_size, every_n_steps, live=None):
    self._num_steps = num_steps
    self._batch_size = batch_size
    self._every = max(1, every_n_steps)
    self._live = live
    self._progress = None

  def begin(self):
    graph = tf.compat.v1.get_default_graph()
    # The read the Estimator's own hooks fetch: the step before this call's update.
    self._global_step = training_util._get_or_create_global_step_read()  # pylint: disable=protected-access
    self._fetches = {'step': self._global_step}
    try:
      # With --steps_per_loop > 1 one call runs several steps: fetch where it ended.
      self._fetches['step_after'] = graph.get_tensor_by_name(
          loops.GLOBAL_STEP_AFTER_RUN_NAME + ':0')
    except KeyError:
      pass
    for key, name in (('loss', model_fn_lib.TOTAL_LOSS_NAME + ':0'),
                      ('lr', model_fn_lib.LEARNING_RATE_NAME + ':0')):
      try:
        self._fetches[key] = graph.get_tensor_by_name(name)
      except KeyError:
        pass

  def before_run(self, run_context):
    del run_context
    return tf.compat.v1.train.SessionRunArgs(self._fetches)

  def after_run(self, run_context, run_values):
    del run_context
    values = run_values.results
    if 'step_after' in values:
      step = int(values['step_after'])
    else:
      step = int(values['step']) + 1  # The value was read before this step's update.
    if self._progress is None:
      # Started after the first step, so graph start-up does not count in the rate.
      self._progress = console.Progress(self._num_steps, 'step', unit='ex',
                                        rate_scale=self._batch_size, start=step,
                                        live=self._live, plain_every_n=self._every)
      return
    if step == self._progress.done:
      # A call that ran no step (the last loop ended at --num_steps), or a batch
      # that shares its step with others (gradient accumulation).
      return
    fields = []
    if 'loss' in values:
      fields.append('loss %.4f' % values['loss'])
    if 'lr' in values:
      fields.append('lr %.6f' % values['lr'])
    self._progress.update(done=step, fields=fields, force=step >= self._num_steps)

  def end(self, session):
    del session
    if self._progress is not None:
      self._progress.close()
      self._progress = None


class StepCounter(tf.compat.v1.train.SessionRunHook):
  """Counts the steps this task ran and the last global step it saw.

  With parameter servers the workers step independently; the count shows how the
  steps were shared (a worker that joins late may run few or none).
  """

  def __init__(self):
    self.steps = 0
    self.global_step = None

  def begin(self):
    self._global_step = training_util._get_or_create_global_step_read()  # pylint: disable=protected-access

  def before_run(self, run_context):
    del run_context
    return tf.compat.v1.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    del run_context
    self.steps += 1
    self.global_step = int(run_values.results) + 1


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
