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

from estimator_pipeline.config import cluster as distribute
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import lock as lock_lib
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.train import processes
from estimator_pipeline.train import run_hooks
from estimator_pipeline.train import safety
from estimator_pipeline.train import strategies
from estimator_pipeline.train import summary


def _no_eval_input():
  # train_and_evaluate insists on an EvalSpec on every task; only an evaluator calls it.
  raise UserError('--eval_record_path is empty, so there is nothing to evaluate.')


def run(cfg, task, params=None, not_applied=()):
  """Runs this process as `task`; returns a summary.Result (None on a ps task).

  params, not_applied: the params file as driver.run read it, and its train keys the
  run does not apply (see plan.preflight); the chief lists them as a single process
  does.
  """
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
  plan = plan_lib.preflight(cfg, chief=task.is_chief, params=params,
                            not_applied=not_applied)
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
  role = run_hooks.Role(name=task.name, chief=task.is_chief,
                        asynchronous=bool(task.num_ps))
  run_hooks.write_run_files(plan, role)
  layout = strategies.layout(cfg.distribution, task, cfg.batch_size)
  if task.type == distribute.EVALUATOR:
    console.line(strategies.evaluator_note(cfg.model_dir))
  else:
    console.line(strategies.role_note(task))
    console.line(layout.describe())
  if strategy is not None:
    console.line(strategies.device_note(strategy))
  watch = run_hooks.RunHooks(plan, signals, layout.examples_per_step, role)
  estimator = estimator_lib.build_estimator(plan, train_distribute=strategy,
                                            saving_listeners=watch.listeners)
  train_input, eval_input = plan.task.input_fns(
      plan, strategies.fallback_input_context(cfg.distribution, task))
  eval_metrics = None
  with watch.failures_explained():
    tf.estimator.train_and_evaluate(
        estimator, estimator_lib.train_spec(plan, train_input, watch.training),
        estimator_lib.eval_spec(plan, eval_input or _no_eval_input,
                                estimator_lib.make_exporters(plan)
                                if _writes_exports(task) else [], watch.evaluation,
                                throttle_secs=strategies.evaluator_poll_secs(task)))
    if task.type == distribute.WORKER:
      _remove_scratch(cfg.model_dir, task)
    if task.is_chief and not task.has_evaluator:
      eval_metrics = _chief_exports(plan, eval_input, watch.evaluation)
  return _finish(cfg, task, eval_metrics, start, watch)


def _writes_exports(task):
  return (task.type == distribute.EVALUATOR or
          (task.is_chief and not task.has_evaluator))


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


def _finish(cfg, task, eval_metrics, start, watch):
  history = files.eval_history(cfg.model_dir)
  counter = watch.counter
  if task.type == distribute.EVALUATOR:
    if history:
      eval_metrics = dict(history[max(history)], global_step=max(history))
    console.line('%s finished.' % task.name)
  else:
    console.line('%s finished: ran %d step(s) of this job%s.' % (
        task.name, counter.steps, ', the last at global step %d' % counter.global_step
        if counter.global_step is not None else ''))
  global_step = (counter.global_step if task.type == distribute.WORKER and
                 counter.global_step is not None else
                 files.checkpoint_step(tf.train.latest_checkpoint(cfg.model_dir)))
  return summary.finish(cfg, start, global_step, eval_metrics,
                        writes_exports=_writes_exports(task), skips=watch.skips)
