"""What keeps a run's model_dir whole when the run dies: signals, NaN, killed writes.

- Ctrl-C or `kill` (SIGINT, SIGTERM): `StopSignals` turns the signal into a flag;
  `SafetyHook` sees it after the current step, saves a checkpoint at that step with the
  Estimator's own Saver and stops the run with `errors.Interrupted` (exit status 130 or
  143, one line naming the checkpoint). A second signal stops at once without saving.
- NaN or Inf: `FiniteCheckpointListener` refuses to save a checkpoint whose variables
  are not finite, so the last checkpoint is always one training can resume from.
- SIGKILL, OOM killer, power loss: TensorFlow writes checkpoints, the `checkpoint`
  index and SavedModels under temporary names and renames them when complete;
  `clean_partial_files` removes what a killed writer left behind.

  python train.py --model_dir=runs/x ...   # Ctrl-C
  # interrupted by SIGINT at step 137: saved runs/x/model.ckpt-137; run the same
  # command to resume.
"""

import os
import re
import shutil
import signal
import threading

import numpy as np
import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import Interrupted
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import checkpoint_saver

# Left by a killed tf.compat.v1.train.Saver (sharded V2 save), by
# file_io.atomic_write_string_to_file (the `checkpoint` index), by core/files.py's
# atomic writes (config.json, flags.txt, params.json, class_names.txt), and by the
# Estimator's SavedModel export and serving/exporters.py's pruning.
_PARTIAL_IN_MODEL_DIR = re.compile(
    r'^(.*\.ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]{32}|'
    r'(config\.json|flags\.txt|params\.json|class_names\.txt)\.tmp)$')
_PARTIAL_IN_EXPORT = re.compile(r'^temp-.*$')

_SIGNAL_NAMES = {signal.SIGINT: 'SIGINT', signal.SIGTERM: 'SIGTERM'}


def clean_partial_files(model_dir):
  """Removes temporary files and directories a killed run left; returns their names.

  Only the names TensorFlow and this project give to unfinished writes are touched.
  Call it while holding the model_dir lock, so no live writer owns them.
  """
  removed = []
  if not os.path.isdir(model_dir):
    return removed
  candidates = [(model_dir, n, _PARTIAL_IN_MODEL_DIR) for n in os.listdir(model_dir)]
  export_root = os.path.join(model_dir, 'export')
  if os.path.isdir(export_root):
    for name in os.listdir(export_root):
      sub = os.path.join(export_root, name)
      if os.path.isdir(sub):
        candidates.extend((sub, n, _PARTIAL_IN_EXPORT) for n in os.listdir(sub))
  for folder, name, pattern in candidates:
    if not pattern.match(name):
      continue
    path = os.path.join(folder, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path, ignore_errors=True)
    else:
      try:
        os.remove(path)
      except OSError:
        continue
    removed.append(os.path.relpath(path, model_dir))
  return sorted(removed)


class StopSignals:
  """While active, SIGINT/SIGTERM set `received` instead of killing the process.

  Python runs signal handlers in the main thread between bytecodes, so the flag is seen
  as soon as the running session step returns. Handlers can only be installed from the
  main thread; elsewhere (a library caller's worker thread) this does nothing.
  saving=False (a cluster's tasks) says the stop saves nothing.
  """

  def __init__(self, saving=True):
    self.received = None
    self._saving = saving
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in _SIGNAL_NAMES:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}

  @property
  def name(self):
    return _SIGNAL_NAMES.get(self.received, 'a signal')

  def _handle(self, signum, frame):
    del frame
    if self.received is not None:
      # Asked twice: the user does not want to wait for the save.
      raise Interrupted(signum, '%s again: stopped at once without saving; run the '
                        'same command to resume from the last checkpoint.'
                        % _SIGNAL_NAMES.get(signum, signum))
    self.received = signum
    console.line('%s received: %s, then stopping (send it again to stop at once).' % (
        _SIGNAL_NAMES[signum], 'saving a checkpoint after this step' if self._saving
        else 'finishing this step'))


class SafetyHook(tf.compat.v1.train.SessionRunHook):
  """Tracks the step; on a stop signal saves a checkpoint there and raises Interrupted.

  Raising (rather than run_context.request_stop()) skips the Estimator's end-of-training
  evaluation and export, which a user who pressed Ctrl-C does not want to wait for. With
  save=False it only raises, naming the last checkpoint: evaluation runs right after a
  save, and a cluster's task leaves saving to the chief's saver (`during`: what was
  stopped; `resume`: how to go on; `announce`: a console line as each evaluation
  starts).
  """

  def __init__(self, signals, model_dir, save=True, during='evaluation',
               resume='run the same command to resume', announce=False):
    self._signals = signals
    self._model_dir = model_dir
    self._save = save
    self._announce = announce
    self._during = during
    self._resume = resume
    self.last_step = None  # The global step after the last completed run() call.

  def begin(self):
    self._global_step = training_util._get_or_create_global_step_read()  # pylint: disable=protected-access

  def after_create_session(self, session, coord):
    del coord
    if self._announce and self._global_step is not None:
      # The checkpoint is restored by now: its step is the one being evaluated.
      console.line('Evaluating the checkpoint of step %d (Ctrl-C stops at once; the '
                   'checkpoint stays).' % session.run(self._global_step))

  def before_run(self, run_context):
    del run_context
    if self._global_step is None:
      return None
    return tf.compat.v1.train.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    if self._global_step is not None:
      self.last_step = int(run_values.results) + 1
    if self._signals.received is None:
      return
    if not self._save:
      raise self.interrupted()
    session = run_context.session
    step = int(session.run(self._global_step))
    latest = tf.train.latest_checkpoint(self._model_dir)
    if files.checkpoint_step(latest) != step:
      savers = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.SAVERS)
      if savers:
        # The Estimator's Saver: it knows keep_checkpoint_max and updates the index.
        latest = savers[0].save(session, os.path.join(self._model_dir, 'model.ckpt'),
                                global_step=step)
    raise Interrupted(self._signals.received, '%s at step %d: saved %s; run the same '
                      'command to resume.' % (self._signals.name, step, latest))

  def interrupted(self):
    """The Interrupted a stop without saving raises (also after a failed step)."""
    return Interrupted(self._signals.received, '%s during %s; the last checkpoint is '
                       '%s: %s.' % (self._signals.name, self._during,
                                    tf.train.latest_checkpoint(self._model_dir),
                                    self._resume))


class FiniteCheckpointListener(checkpoint_saver.WrittenCheckpointListener):
  """Refuses to save non-finite variables, so a NaN never replaces a good checkpoint.

  The loss check (slim's check_numerics) catches a NaN loss, but the update of the step
  before it may already have written Inf into the weights; the Saver would keep them.
  reread: with parameter servers another worker's update can land between this check
  and the save, so the written checkpoint is read back too, and removed before the
  `checkpoint` index names it if it holds a NaN or an Inf.
  """

  def __init__(self, model_dir, advice, reread=False):
    self._model_dir = model_dir
    self._advice = advice
    self._reread = reread

  def begin(self):
    checks = [tf.reduce_all(tf.math.is_finite(v))
              for v in tf.compat.v1.global_variables() if v.dtype.base_dtype.is_floating]
    self._all_finite = tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)

  def before_save(self, session, global_step_value):
    if not session.run(self._all_finite):
      raise non_finite_error(global_step_value, self._model_dir, self._advice,
                             what='the weights')

  def after_write(self, prefix, step):
    if not self._reread:
      return
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      value = np.asarray(reader.get_tensor(name))
      if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        for path in tf.io.gfile.glob(prefix + '.*'):
          tf.io.gfile.remove(path)
        raise non_finite_error(step, self._model_dir, self._advice, what='the weights')


def non_finite_error(step, model_dir, advice, what='the loss'):
  latest = tf.train.latest_checkpoint(model_dir)
  kept = ('the last good checkpoint %s is kept' % latest if latest
          else 'no checkpoint was saved')
  return UserError('%s became NaN or Inf at step %s; nothing from that step was '
                   'saved and %s: %s' % (what, step if step is not None else '?', kept,
                                         advice))
