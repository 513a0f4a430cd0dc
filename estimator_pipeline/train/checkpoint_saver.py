r"""The chief's checkpoint saver: every checkpoint the index names holds its own step.

TensorFlow's CheckpointSaverHook reads the global step in one session call and runs
the Saver in the next (basic_session_run_hooks.py: `last_step =
session.run(self._global_step_tensor)` in end(), `global_step = run_context.session
.run(...)` in after_run, then `self._get_saver().save(session, ..., global_step=step)`
in _save). With parameter servers the other workers keep updating in between, so
`model.ckpt-40` can hold global_step 41. The evaluator restores that checkpoint and
reports (eval/ events) and exports (export/best, export/final) the step it holds, 41,
which no checkpoint in model_dir is named after; with no later save, model_dir ends at
step 40 and its evaluation at 41.

This hook saves as TensorFlow's does, then reads the step the files hold and, when it
differs, renames the files to it before the `checkpoint` index names them. Only the
chief runs it, and only it writes the index, so the index only ever moves forward
and only ever names checkpoints that hold the step in their name:

  python -m estimator_pipeline.launch_local --num_workers=2 --num_ps=1 --evaluator -- \
      --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet \
      --distribution=parameter_server --num_steps=200
"""

import os

import tensorflow as tf
from tensorflow.core.util import event_pb2  # pylint: disable=g-direct-tensorflow-import
from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=g-direct-tensorflow-import


def held_step(prefix):
  """The global step a checkpoint holds (not the one in its name), or None."""
  try:
    return int(tf.train.load_checkpoint(prefix).get_tensor('global_step'))
  except (tf.errors.OpError, ValueError):
    return None


def _rename(prefix, new_prefix):
  """Renames every file of a checkpoint; the index file last, so a reader never finds
  an index whose data files are not there yet."""
  found = tf.io.gfile.glob(prefix + '.*')
  for path in sorted(found, key=lambda p: p.endswith('.index')):
    tf.io.gfile.rename(path, new_prefix + path[len(prefix):], overwrite=True)
  return new_prefix


class WrittenCheckpointListener(tf.estimator.CheckpointSaverListener):
  """A saving listener that also sees each checkpoint's files once they are written,
  before the `checkpoint` index names them (StepNamedCheckpointSaverHook calls it)."""

  def after_write(self, prefix, step):
    """May refuse the checkpoint at prefix: remove its files and raise."""


class StepNamedCheckpointSaverHook(tf.compat.v1.train.CheckpointSaverHook):
  """CheckpointSaverHook whose checkpoints hold the global step they are named after.

  Built with the Estimator's own settings (build_estimator passes it as a training
  chief hook, so the Estimator adds no saver of its own and attaches the run's saving
  listeners to this one).
  """

  def _save(self, session, step):
    for listener in self._listeners:
      listener.before_save(session, step)
    saver = self._get_saver()
    path = saver.save(session, self._save_path, global_step=step,
                      write_meta_graph=self._save_graph_def, write_state=False)
    held = held_step(path)
    if held is not None and held != step:
      # Another worker's update landed between the read and the save.
      path = _rename(path, '%s-%d' % (self._save_path, held))
      step = held
      self._timer.update_last_triggered_step(step)
    for listener in self._listeners:
      if isinstance(listener, WrittenCheckpointListener):
        listener.after_write(path, step)
    # What Saver.save does with write_state=True, for the final name.
    # pylint: disable=protected-access
    saver._RecordLastCheckpoint(path)
    checkpoint_management.update_checkpoint_state_internal(
        save_dir=os.path.dirname(path), model_checkpoint_path=path,
        all_model_checkpoint_paths=saver.last_checkpoints,
        save_relative_paths=saver._save_relative_paths)
    saver._MaybeDeleteOldCheckpoints()
    # pylint: enable=protected-access
    self._summary_writer.add_session_log(
        event_pb2.SessionLog(status=event_pb2.SessionLog.CHECKPOINT,
                             checkpoint_path=self._save_path), step)
    should_stop = False
    for listener in self._listeners:
      if listener.after_save(session, step):
        should_stop = True
    return should_stop
