"""Early stopping by evaluations, and the best checkpoint kept in model_dir/best/.

train_and_evaluate hands every evaluation to its exporters; `BestCheckpointExporter`
is one that writes no SavedModel: it judges the evaluation by --early_stopping_metric,
copies an improved checkpoint to model_dir/best/ (which keep_checkpoint_max never
prunes), and after --early_stopping_patience evaluations without improvement asks
`StopTrainingHook` to stop. Patience counts evaluations, whatever the checkpoint
cadence (tf.estimator.experimental.stop_if_no_decrease_hook counts steps).

  python train.py ... --early_stopping_metric=accuracy --early_stopping_patience=5
  ls runs/x/best/        # best.json  checkpoint  model.ckpt-1200.index  model.ckpt-1200.data-...
"""

import json
import math
import os
from typing import Optional

import tensorflow as tf

from estimator_pipeline.config import controls
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

BEST_DIR = 'best'
STATE_FILE = 'best.json'


def _is_better(value, best, direction):
  if best is None:
    return True
  return value < best if direction == 'min' else value > best


def read_state(model_dir):
  """The saved early-stopping state of model_dir (best.json), or None."""
  path = os.path.join(model_dir, BEST_DIR, STATE_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def finished_message(cfg, latest_checkpoint):
  """One line if model_dir already stopped early at its latest checkpoint, else None.

  Re-running a job that stopped early is then like re-running one that reached
  --num_steps: nothing to do, and the line says which flag would train further.
  """
  if not cfg.early_stopping_patience or not latest_checkpoint:
    return None
  state = read_state(cfg.model_dir)
  if (not state or state.get('metric') != cfg.early_stopping_metric or
      state.get('stopped_at_step') is None):
    return None
  if state['stopped_at_step'] != files.checkpoint_step(latest_checkpoint, default=-1):
    return None
  if state['evaluations_since_best'] < cfg.early_stopping_patience:
    return None
  return ('--model_dir=%s stopped early at step %d: %s has not improved on %.6g '
          '(step %d) in %d evaluations; nothing to train. Raise '
          '--early_stopping_patience (now %d) to train further.' % (
              cfg.model_dir, state['stopped_at_step'], state['metric'],
              state['value'], state['step'], state['evaluations_since_best'],
              cfg.early_stopping_patience))


class BestCheckpointKeeper:
  """Judges each evaluation; keeps the best checkpoint; decides when to stop."""

  def __init__(self, model_dir, metric, mode='auto', patience=0):
    self.model_dir = model_dir
    self.best_dir = os.path.join(model_dir, BEST_DIR)
    self.metric = metric
    self.direction = controls.metric_direction(metric, mode)
    self.patience = patience
    self.stop_reason = None
    self._last_step = None
    state = read_state(model_dir)
    if (state and state.get('metric') == metric and
        state.get('direction') == self.direction):
      # A resumed run keeps the best so far and the evaluations since it.
      self.state = state
      self.state['stopped_at_step'] = None
    else:
      self.state = {'metric': metric, 'direction': self.direction, 'value': None,
                    'step': None, 'checkpoint': None, 'evaluations_since_best': 0,
                    'stopped_at_step': None}

  @property
  def should_stop(self):
    return self.stop_reason is not None

  def observe(self, step, metrics, checkpoint_path):
    """Takes one evaluation's result; returns True if it was the best so far."""
    if self.metric not in metrics:
      raise UserError('--early_stopping_metric=%s is not among the evaluation '
                      'metrics: %s.' % (self.metric, ', '.join(
                          sorted(k for k in metrics if k != 'global_step'))))
    if step == self._last_step:
      return False  # The same checkpoint evaluated again (end of training).
    self._last_step = step
    value = float(metrics[self.metric])
    if math.isnan(value):
      improved = False
    else:
      improved = _is_better(value, self.state['value'], self.direction)
    if improved:
      self._copy_checkpoint(checkpoint_path)
      self.state.update(value=value, step=step,
                        checkpoint=os.path.basename(checkpoint_path),
                        evaluations_since_best=0)
    else:
      self.state['evaluations_since_best'] += 1
    if self.patience and self.state['evaluations_since_best'] >= self.patience:
      self.state['stopped_at_step'] = step
      self.stop_reason = (
          'Early stopping at step %d: %s has not improved on %.6g (step %d, kept in '
          '%s) for %d evaluations (--early_stopping_patience=%d, %s is better).' % (
              step, self.metric, self.state['value'], self.state['step'],
              self.best_dir, self.state['evaluations_since_best'], self.patience,
              'lower' if self.direction == 'min' else 'higher'))
      console.line(self.stop_reason)
    self._write_state()
    return improved

  def _copy_checkpoint(self, checkpoint_path):
    tf.io.gfile.makedirs(self.best_dir)
    name = os.path.basename(checkpoint_path)
    # Every file is copied under a temporary name first, and renamed only when all
    # are there, so best/ never holds half a checkpoint.
    new_files = []
    for source in tf.io.gfile.glob(checkpoint_path + '.*'):
      target = os.path.join(self.best_dir, os.path.basename(source))
      tf.io.gfile.copy(source, target + files.TMP_SUFFIX, overwrite=True)
      new_files.append(target)
    for target in new_files:
      tf.io.gfile.rename(target + files.TMP_SUFFIX, target, overwrite=True)
    # The state file tf.train.latest_checkpoint reads, with a relative path so best/
    # still works after model_dir is moved or copied.
    files.atomic_write(os.path.join(self.best_dir, 'checkpoint'),
                       'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n'
                       % (name, name))
    keep = {os.path.basename(t) for t in new_files} | {'checkpoint', STATE_FILE}
    for old in tf.io.gfile.listdir(self.best_dir):
      if old not in keep:
        tf.io.gfile.remove(os.path.join(self.best_dir, old))

  def _write_state(self):
    files.atomic_write(os.path.join(self.best_dir, STATE_FILE),
                       json.dumps(self.state, indent=2, sort_keys=True) + '\n')

  def compare_fn(self, best_eval_result, current_eval_result):
    """For tf.estimator.BestExporter: export/best/ judges by the same metric."""
    return compare_by(self.metric, self.direction)(best_eval_result,
                                                   current_eval_result)


def compare_by(metric, mode='auto'):
  """A tf.estimator.BestExporter compare_fn that judges evaluations by metric."""
  direction = controls.metric_direction(metric, mode)

  def compare(best_eval_result, current_eval_result):
    if metric not in (current_eval_result or {}):
      return False
    if not best_eval_result or metric not in best_eval_result:
      return True
    return _is_better(float(current_eval_result[metric]),
                      float(best_eval_result[metric]), direction)
  return compare


class BestCheckpointExporter(tf.estimator.Exporter):
  """An exporter that exports nothing: it hands each evaluation to the keeper."""

  def __init__(self, keeper):
    self._keeper = keeper

  @property
  def name(self):
    return 'best_checkpoint'

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    del estimator, export_path, is_the_final_export
    self._keeper.observe(int(eval_result['global_step']), eval_result,
                         checkpoint_path)
    return None


class StopTrainingHook(tf.compat.v1.train.SessionRunHook):
  """Stops training once the keeper says so.

  Run as a training chief hook, after the checkpoint saver whose listener evaluated:
  training stops in the same step as the evaluation that decided it.
  """

  def __init__(self, keeper):
    self._keeper = keeper

  def after_run(self, run_context, run_values):
    del run_values
    if self._keeper.should_stop:
      run_context.request_stop()


def summary_best(history, metric, direction) -> Optional[dict]:
  """The best evaluation in an eval_history by metric and direction, or None."""
  scored = [dict(m, global_step=step) for step, m in history.items() if metric in m]
  if not scored:
    return None
  pick = min if direction == 'min' else max
  return pick(scored, key=lambda m: m[metric])
