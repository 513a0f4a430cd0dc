"""The single-process run: train_and_evaluate with every guard, then the closing summary.

driver.run comes here once preflight passed and model_dir's lock is held; the hooks,
listeners and closing summary are the run skeleton's (run_hooks.py), as in a cluster:

  python train.py --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet --num_steps=200
"""

import tensorflow as tf

from estimator_pipeline.config import cluster
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.train import early_stopping
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import reproducibility
from estimator_pipeline.train import run_hooks
from estimator_pipeline.train import strategies
from estimator_pipeline.train import summary


def run_locked(plan, signals, start):
  """Writes the run's files, trains, evaluates and exports; returns a summary.Result."""
  cfg = plan.config
  run_hooks.write_run_files(plan)
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
  watch = run_hooks.RunHooks(plan, signals, layout.examples_per_step)
  with reproducibility.applied(cfg.seed, cfg.deterministic):
    estimator = estimator_lib.build_estimator(plan, training_chief_hooks=chief_hooks,
                                              train_distribute=strategy,
                                              saving_listeners=watch.listeners)
    with watch.failures_explained():
      eval_metrics = _train_and_evaluate(plan, estimator, keeper, watch)
  latest = estimator.latest_checkpoint()
  return summary.finish(cfg, start, files.checkpoint_step(latest), eval_metrics,
                        stopped_early=keeper.stop_reason if keeper else None,
                        skips=watch.skips)


def _train_and_evaluate(plan, estimator, keeper, watch):
  """Runs training (and evaluation, exports); returns the last evaluation's metrics."""
  cfg = plan.config
  train_input, eval_input = plan.task.input_fns(plan)
  exporters = estimator_lib.make_exporters(plan, keeper) if eval_input else None
  if plan.finish_only:
    return estimator_lib.evaluate_and_export(estimator, plan, eval_input, exporters,
                                             watch.evaluation)
  if eval_input is None:
    estimator.train(train_input, max_steps=cfg.num_steps, hooks=watch.training)
    estimator_lib.export_final(estimator, plan)
    return None
  eval_metrics, _ = tf.estimator.train_and_evaluate(
      estimator, estimator_lib.train_spec(plan, train_input, watch.training),
      estimator_lib.eval_spec(plan, eval_input, exporters, watch.evaluation))
  if keeper.should_stop:
    # train_and_evaluate exports final/ only at --num_steps.
    estimator_lib.export_final(estimator, plan)
  return eval_metrics
