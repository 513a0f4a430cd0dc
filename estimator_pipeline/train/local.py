"""The single-process run: train_and_evaluate with every guard, then the closing summary.

driver.run comes here once preflight passed and model_dir's lock is held:

  python train.py --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet --num_steps=200
"""

import time

import tensorflow as tf

from estimator_pipeline.config import cluster
from estimator_pipeline.config import flagfile
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import early_stopping
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import failures
from estimator_pipeline.train import hooks
from estimator_pipeline.train import monitoring
from estimator_pipeline.train import reproducibility
from estimator_pipeline.train import safety
from estimator_pipeline.train import skips as skips_lib
from estimator_pipeline.train import strategies
from estimator_pipeline.train import summary


def run_locked(plan, signals, start, not_applied):
  """Writes the run's files, trains, evaluates and exports; returns a summary.Result."""
  cfg = plan.config
  # The resolved values, so a later run compares against what was really built.
  cfg = plan.config = cfg.replace(num_classes=plan.num_classes,
                                  image_size=plan.image_size)
  cfg.save()
  flagfile.save_flagfile(cfg)
  for line in plan.task.write_run_files(plan, exports=True):
    console.line(line)
  for key, why in not_applied:
    console.line('note: %s train.%s is not applied (%s).' % (cfg.params_file, key, why))
  announce(plan)
  task = cluster.Task()
  layout = strategies.layout(cfg.distribution, task, cfg.batch_size)
  strategy = strategies.make_strategy(cfg.distribution, task)
  if strategy is not None:
    console.line(layout.describe())
    console.line(strategies.device_note(strategy))
  keeper = None
  chief_hooks = []
  if plan.eval_files:
    keeper = early_stopping.BestCheckpointKeeper(
        cfg.model_dir, cfg.early_stopping_metric, cfg.early_stopping_mode,
        cfg.early_stopping_patience)
    chief_hooks.append(early_stopping.StopTrainingHook(keeper))
  with reproducibility.applied(cfg.seed, cfg.deterministic):
    estimator = estimator_lib.build_estimator(plan, training_chief_hooks=chief_hooks,
                                              train_distribute=strategy)
    eval_metrics, skips = _train_and_evaluate(
        plan, estimator, keeper, layout.examples_per_step, signals)
  return result(cfg, estimator.latest_checkpoint(), eval_metrics, start,
                stopped_early=keeper.stop_reason if keeper else None, skips=skips)


def announce(plan):
  """One line: resuming, warm-starting or starting from scratch."""
  cfg = plan.config
  if plan.finish_only:
    console.line('%s is at --num_steps=%d, but its run stopped before the final '
                 'evaluation and export: doing those now.' % (plan.latest_checkpoint,
                                                              cfg.num_steps))
  elif plan.latest_checkpoint:
    console.line('Resuming from %s (step %d); --checkpoint_path is not applied.' % (
        plan.latest_checkpoint, files.checkpoint_step(plan.latest_checkpoint)))
  elif plan.warm_start_checkpoint:
    console.line('Warm-starting %d variables from %s%s.' % (
        len(plan.warm_start_map), cfg.checkpoint_path
        if checkpoints.is_keras_h5(cfg.checkpoint_path) else plan.warm_start_checkpoint,
        (' (excluded: %s)' % ', '.join(cfg.scopes('checkpoint_exclude_scopes'))
         if cfg.checkpoint_exclude_scopes else '')))
    if plan.skipped_vars:
      console.line('warning: --ignore_missing_vars skipped %d variables: %s' % (
          len(plan.skipped_vars), ', '.join(plan.skipped_vars[:10]) +
          (' ...' if len(plan.skipped_vars) > 10 else '')))
  else:
    console.line('Training %s from scratch in %s.' % (cfg.model_name, cfg.model_dir))


def _train_and_evaluate(plan, estimator, keeper, examples_per_step, signals):
  """Runs training (and evaluation, exports).

  Returns the last evaluation's metrics and the --skip_corrupt_records counters.
  """
  cfg = plan.config
  train_input, eval_input = plan.task.input_fns(plan)
  # With gradient accumulation a step is one update of grad_accum_steps batches.
  progress = hooks.ProgressHook(cfg.num_steps, examples_per_step * cfg.grad_accum_steps,
                                cfg.log_every_steps)
  guard = safety.SafetyHook(signals, cfg.model_dir)
  train_hooks = [progress, guard] + monitoring.training_hooks(cfg, plan.model_params)
  skips = skips_lib.SkipCounters(cfg.skip_corrupt_records, cfg.eval_steps)
  train_hooks.extend(skips.training_hooks())
  finite = safety.FiniteCheckpointListener(cfg.model_dir, failures.guard_advice(cfg))
  eval_hooks = [safety.SafetyHook(signals, cfg.model_dir, save=False, announce=True)]
  eval_hooks.extend(skips.evaluation_hooks())
  eval_metrics = None
  try:
    if plan.finish_only:
      eval_metrics = estimator_lib.evaluate_and_export(
          estimator, plan, eval_input, estimator_lib.make_exporters(plan, keeper),
          eval_hooks)
    elif eval_input is not None:
      eval_metrics, _ = tf.estimator.train_and_evaluate(
          estimator, estimator_lib.train_spec(plan, train_input, train_hooks, [finite]),
          estimator_lib.eval_spec(plan, eval_input,
                                  estimator_lib.make_exporters(plan, keeper),
                                  eval_hooks))
      if keeper.should_stop:
        # train_and_evaluate exports final/ only at --num_steps.
        estimator_lib.export_final(estimator, plan)
    else:
      estimator.train(train_input, max_steps=cfg.num_steps, hooks=train_hooks,
                      saving_listeners=[finite])
      estimator_lib.export_final(estimator, plan)
  except tf.errors.OpError as e:
    if failures.is_disk_error(str(e)):
      raise  # driver.run names the disk and cleans up.
    translated = failures.translate(e, plan, _failed_step(guard, plan))
    if translated is None:
      raise
    raise translated from None
  except tf.compat.v1.train.NanLossDuringTrainingError:
    raise safety.non_finite_error(_failed_step(guard, plan), cfg.model_dir,
                                  failures.guard_advice(cfg)) from None
  return eval_metrics, skips


def result(cfg, latest_checkpoint, eval_metrics, start, finished=None,
           stopped_early=None, skips=None):
  """The summary.Result of a single-process run (and its closing lines)."""
  outcome = summary.Result(
      model_dir=cfg.model_dir, global_step=files.checkpoint_step(latest_checkpoint),
      eval_metrics=dict(eval_metrics) if eval_metrics else None,
      best_metrics=summary.best_metrics(cfg),
      exports=estimator_lib.newest_exports(cfg.model_dir),
      seconds=time.time() - start, best_metric=cfg.early_stopping_metric,
      finished=finished, stopped_early=stopped_early,
      **(skips.result_fields() if skips else {}))
  if not finished:
    summary.print_summary(outcome)
  return outcome


def _failed_step(guard, plan):
  """The step whose session run raised: one past the last that completed."""
  done = guard.last_step
  if done is None:
    done = files.checkpoint_step(plan.latest_checkpoint)
  return done + 1
