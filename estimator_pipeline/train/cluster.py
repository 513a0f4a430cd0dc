r"""run(cfg, task): one task of a TF_CONFIG cluster, on the Estimator's own runtime.

driver.run comes here when TF_CONFIG names a cluster. Every task runs the same
command; what it does follows from its TF_CONFIG task:

  chief      checks everything (as a single-process run does), writes config.json,
             trains and writes checkpoints and summaries; without an evaluator in the
             cluster it also evaluates the last checkpoint and writes the exports.
  worker     trains; leaves model_dir to the chief.
  ps         serves variables until the chief and the workers are gone: at once when
             the job reached --num_steps, after --ps_timeout_secs otherwise.
  evaluator  waits for the chief's checkpoints, evaluates each new one (writing eval/
             events) and runs the exporters; it ends after evaluating --num_steps.

The whole job ends when the global step reaches --num_steps, the one stop condition
distributed Estimator training has.

  python -m estimator_pipeline.launch_local --num_workers=2 --num_ps=1 --evaluator -- \
      --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet \
      --distribution=parameter_server --num_steps=200
"""

import contextlib
import os
import time

import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.config import cluster as distribute
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import failures
from estimator_pipeline.train import hooks
from estimator_pipeline.train import local
from estimator_pipeline.train import lock as lock_lib
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.train import processes
from estimator_pipeline.train import safety
from estimator_pipeline.train import skips as skips_lib
from estimator_pipeline.train import strategies
from estimator_pipeline.train import summary


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


def _no_eval_input():
  # train_and_evaluate insists on an EvalSpec on every task; only an evaluator calls it.
  raise UserError('--eval_record_path is empty, so there is nothing to evaluate.')


def run(cfg, task):
  """Runs this process as `task`; returns a summary.Result (None on a ps task)."""
  start = time.time()
  processes.watch_launcher()  # Started by launch_local: end with it.
  cfg.validate()
  if not task.is_chief:
    # The chief takes the lock below; the others only join a model_dir it holds (or
    # nobody does yet).
    lock_lib.check_cluster(cfg.model_dir, task.cluster)
  if task.type == distribute.PS:
    console.line('%s: serving variables at %s until the chief and the workers are '
                 'done.' % (task.name, task.address()))
    with safety.StopSignals(saving=False) as signals:
      console.line(strategies.serve(task, cfg.model_dir, cfg.num_steps,
                                    cfg.ps_timeout_secs, signals))
    return None
  if task.type == distribute.EVALUATOR and not cfg.eval_record_path:
    raise UserError('this task is the evaluator in TF_CONFIG, but --eval_record_path is '
                    'empty: pass the evaluation records, or drop the evaluator task.')
  if cfg.early_stopping_patience:
    # A distributed Estimator stops only at --num_steps (its one stop condition).
    raise UserError('--early_stopping_patience needs a single-process run; a cluster '
                    'trains to --num_steps: leave it at 0.')
  # Before preflight: multi_worker_mirrored configures collective ops, which TensorFlow
  # allows only before the first eager op (preflight reads records eagerly).
  strategy = strategies.make_strategy(cfg.distribution, task)
  plan = plan_lib.preflight(cfg, chief=task.is_chief)
  # plan.config: what preflight resolved (the best metric among it).
  plan.config = plan.config.replace(num_classes=plan.num_classes,
                                    image_size=plan.image_size)
  held = (lock_lib.ModelDirLock(cfg.model_dir, cluster=task.cluster) if task.is_chief
          else contextlib.nullcontext())
  with held, safety.StopSignals(saving=False) as signals:
    if task.is_chief:
      held.announce(console.line)
      safety.clean_partial_files(cfg.model_dir)
    return _run_task(plan, task, strategy, signals, start)


def _run_task(plan, task, strategy, signals, start):
  """Trains (or evaluates) as this task of the cluster; returns a summary.Result."""
  cfg = plan.config
  _write_files(plan, task)
  layout = strategies.layout(cfg.distribution, task, cfg.batch_size)
  if task.type == distribute.EVALUATOR:
    console.line(strategies.evaluator_note(cfg.model_dir))
  else:
    console.line(strategies.role_note(task))
    console.line(layout.describe())
  if strategy is not None:
    console.line(strategies.device_note(strategy))
  estimator = estimator_lib.build_estimator(plan, train_distribute=strategy)
  train_input, eval_input = plan.task.input_fns(
      plan, strategies.fallback_input_context(cfg.distribution, task))
  counter = StepCounter()
  resume = 'start the whole cluster again to resume'
  guard = safety.SafetyHook(signals, cfg.model_dir, save=False,
                            during='training (%s)' % task.name, resume=resume)
  train_hooks = [hooks.ProgressHook(cfg.num_steps, layout.examples_per_step,
                                    cfg.log_every_steps), counter, guard]
  skips = skips_lib.SkipCounters(cfg.skip_corrupt_records, cfg.eval_steps)
  train_hooks.extend(skips.training_hooks())
  eval_hooks = [safety.SafetyHook(signals, cfg.model_dir, save=False,
                                  during='evaluation (%s)' % task.name,
                                  resume=resume, announce=True)]
  eval_hooks.extend(skips.evaluation_hooks())
  eval_metrics = None
  try:
    tf.estimator.train_and_evaluate(
        estimator, estimator_lib.train_spec(plan, train_input, train_hooks),
        estimator_lib.eval_spec(plan, eval_input or _no_eval_input,
                                estimator_lib.make_exporters(plan)
                                if _writes_exports(task) else [], eval_hooks,
                                throttle_secs=strategies.evaluator_poll_secs(task)))
    if task.type == distribute.WORKER:
      _remove_scratch(cfg.model_dir, task)
    if task.is_chief and not task.has_evaluator:
      eval_metrics = _chief_exports(plan, eval_input, eval_hooks)
  except tf.errors.OpError as e:
    if signals.received:
      # The other tasks stopped too (a ps gone mid-step): the signal is the story.
      raise guard.interrupted() from None
    translated = failures.translate(e, plan)
    if translated is None:
      raise
    raise translated from None
  return _finish(cfg, task, eval_metrics, start, counter, skips)


def _writes_exports(task):
  return (task.type == distribute.EVALUATOR or
          (task.is_chief and not task.has_evaluator))


def _write_files(plan, task):
  """Only the chief writes into model_dir before training, what the exports need
  included: it cleans the partial files of killed runs at start, and would remove a
  file the evaluator was still writing. The evaluator exports only after the chief's
  first checkpoint, so the files are there by then."""
  if not task.is_chief:
    return
  plan.config.save()
  for line in plan.task.write_run_files(plan, exports=True):
    console.line(line)
  local.announce(plan)


def _remove_scratch(model_dir, task):
  # Under multi_worker_mirrored every worker must run the chief's save and summary
  # ops (they hold collectives), so TensorFlow has the others write them to
  # model_dir/tmp_worker_N. Left there they would show up as runs in TensorBoard.
  scratch = os.path.join(model_dir, 'tmp_%s_%d' % (task.type, task.index))
  if tf.io.gfile.isdir(scratch):
    tf.io.gfile.rmtree(scratch)


def _chief_exports(plan, eval_input, eval_hooks):
  """Without an evaluator the chief evaluates the last checkpoint and exports it."""
  # The cluster is done; this Estimator must not join it again.
  with strategies.without_tf_config():
    estimator = estimator_lib.build_estimator(plan)
  return estimator_lib.evaluate_and_export(estimator, plan, eval_input,
                                           estimator_lib.make_exporters(plan),
                                           eval_hooks)


def _finish(cfg, task, eval_metrics, start, counter, skips):
  history = files.eval_history(cfg.model_dir)
  latest = tf.train.latest_checkpoint(cfg.model_dir)
  writes_exports = _writes_exports(task)
  if task.type == distribute.EVALUATOR and history:
    eval_metrics = dict(history[max(history)], global_step=max(history))
  result = summary.Result(
      model_dir=cfg.model_dir,
      global_step=(counter.global_step if task.type == distribute.WORKER and
                   counter.global_step is not None else
                   files.checkpoint_step(latest)),
      eval_metrics=dict(eval_metrics) if eval_metrics else None,
      best_metrics=summary.best_metrics(cfg) if writes_exports else None,
      best_metric=cfg.early_stopping_metric,
      exports=(estimator_lib.newest_exports(cfg.model_dir) if writes_exports
               else {'best': None, 'final': None}),
      seconds=time.time() - start, **skips.result_fields())
  if task.type == distribute.EVALUATOR:
    console.line('%s finished.' % task.name)
  else:
    console.line('%s finished: ran %d step(s) of this job%s.' % (
        task.name, counter.steps, ', the last at global step %d' % counter.global_step
        if counter.global_step is not None else ''))
  summary.print_summary(result)
  return result
