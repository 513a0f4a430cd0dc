r"""Training hooks that write what TensorBoard shows beside the model's own summaries.

- ExamplesPerSecondHook: `examples/sec` in the train run (the Estimator writes
  `global_step/sec` itself).
- ConfigSummaryHook: the run's configuration (every flag, the resolved model params) as
  one text summary `config`, written once when training starts (again on a resume, at
  its step, so each stretch of a curve shows what produced it).
- ProfileHook: `--profile_steps=100,110` profiles those steps with the TensorFlow
  profiler; TensorBoard's Profile tab opens the result (model_dir/plugins/profile/).

  python train.py ... --profile_steps=100,110 && tensorboard --logdir runs/flowers
"""

import os

import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.config import controls
from estimator_pipeline.core import console
from estimator_pipeline.models import summaries

CONFIG_TAG = 'config'
PROFILE_DIR = os.path.join('plugins', 'profile')


class ExamplesPerSecondHook(tf.compat.v1.train.StepCounterHook):
  """Writes `examples/sec` (steps/sec times the batch size) every n steps."""

  def __init__(self, batch_size, every_n_steps, output_dir):
    super().__init__(every_n_steps=every_n_steps, output_dir=output_dir)
    self._batch_size = batch_size

  def _log_and_record(self, elapsed_steps, elapsed_time, global_step):
    rate = elapsed_steps * self._batch_size / elapsed_time
    if self._summary_writer is not None:
      self._summary_writer.add_summary(tf.compat.v1.Summary(value=[
          tf.compat.v1.Summary.Value(tag='examples/sec', simple_value=rate)]),
                                       global_step)


class ConfigSummaryHook(tf.compat.v1.train.SessionRunHook):
  """Writes {name: value} as a markdown table under the text tag `config`, once."""

  def __init__(self, values, output_dir):
    self._table = summaries.config_table(values)
    self._output_dir = output_dir

  def begin(self):
    # collections=[]: not in the merged summary op, which runs every summary step.
    self._summary = tf.compat.v1.summary.text(CONFIG_TAG, tf.constant(self._table),
                                              collections=[])
    self._global_step = tf.compat.v1.train.get_global_step()

  def after_create_session(self, session, coord):
    del coord
    serialized, step = session.run([self._summary, self._global_step])
    writer = tf.compat.v1.summary.FileWriterCache.get(self._output_dir)
    writer.add_summary(serialized, int(step))
    writer.flush()


class ProfileHook(tf.compat.v1.train.SessionRunHook):
  """Profiles the training steps that take the global step from `start` to `end`.

  The TensorFlow profiler (tf.profiler.experimental.start/stop) traces the runtime
  under the Estimator's session in graph mode too, and writes
  <logdir>/plugins/profile/<time>/<host>.xplane.pb: the file the Profile tab of
  TensorBoard (package tensorboard_plugin_profile) opens. tf.estimator's own
  ProfilerHook writes a Chrome trace (timeline-N.json) that the Profile tab does not
  read. The first steps of a run are slow (graph start-up); profile later ones.
  """

  def __init__(self, start, end, logdir):
    self._start = start
    self._end = end
    self._logdir = logdir
    self._step = None
    self._active = False
    self.profile_dir = None

  def begin(self):
    self._global_step = training_util._get_or_create_global_step_read()  # pylint: disable=protected-access

  def after_create_session(self, session, coord):
    del coord
    self._step = int(session.run(self._global_step))
    if self._step >= self._end:
      console.line('--profile_steps=%d,%d: this run starts at step %d, past them; '
                   'nothing is profiled.' % (self._start, self._end, self._step))

  def before_run(self, run_context):
    if not self._active and self._start <= self._step < self._end:
      before = set(self._runs())
      tf.profiler.experimental.start(self._logdir)
      self._active = True
      self._before = before
      self._first = self._step
    return tf.compat.v1.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    self._step = int(run_values.results) + 1
    if self._active and self._step >= self._end:
      self._stop()

  def end(self, session):
    del session
    if self._active:  # Training ended inside the range: keep what was traced.
      self._stop()

  def _runs(self):
    root = os.path.join(self._logdir, PROFILE_DIR)
    return tf.io.gfile.listdir(root) if tf.io.gfile.isdir(root) else []

  def _stop(self):
    tf.profiler.experimental.stop()
    self._active = False
    new = sorted(set(self._runs()) - self._before)
    self.profile_dir = (os.path.join(self._logdir, PROFILE_DIR, new[-1].strip('/'))
                        if new else os.path.join(self._logdir, PROFILE_DIR))
    console.line('Profiled steps %d-%d into %s (TensorBoard: Profile tab).'
                  % (self._first, self._step, self.profile_dir))


def training_hooks(cfg, model_params=None, examples_per_step=None):
  """The hooks above for a run's Config: examples/sec, config text, profile if asked.

  examples_per_step: what one global step consumes (every replica's batch, times
  --grad_accum_steps); --batch_size by default.
  """
  values = dict(cfg.to_dict())
  values.update({'model_params.%s' % k: v for k, v in (model_params or {}).items()})
  hooks = [ExamplesPerSecondHook(examples_per_step or cfg.batch_size,
                                 cfg.log_every_steps, cfg.model_dir),
           ConfigSummaryHook(values, cfg.model_dir)]
  profile = controls.parse_profile_steps(cfg.profile_steps, cfg.num_steps)
  if profile:
    hooks.append(ProfileHook(profile[0], profile[1], cfg.model_dir))
  return hooks
