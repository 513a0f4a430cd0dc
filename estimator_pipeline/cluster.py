r"""run(cfg, task): one task of a TF_CONFIG cluster, on the Estimator's own runtime.

train_lib.run comes here when TF_CONFIG names a cluster. Every task runs the same
command; what it does follows from its TF_CONFIG task:

  chief      checks everything (as a single-process run does), writes config.json,
             trains and writes checkpoints and summaries; without an evaluator in the
             cluster it also evaluates the last checkpoint and writes the exports.
  worker     trains; leaves model_dir to the chief.
  ps         serves variables until it is stopped (ps tasks never end by themselves).
  evaluator  waits for the chief's checkpoints, evaluates each new one (writing eval/
             events) and runs the exporters; it ends after evaluating --num_steps.

The whole job ends when the global step reaches --num_steps, the one stop condition
distributed Estimator training has.

  python -m estimator_pipeline.launch_local --num_workers=2 --num_ps=1 --evaluator -- \
      --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet \
      --distribution=parameter_server --num_steps=200
"""

import os
import time

import tensorflow as tf

from estimator_pipeline import console
from estimator_pipeline import distribute
from estimator_pipeline import early_stopping
from estimator_pipeline import hooks
from estimator_pipeline import train_lib
from estimator_pipeline import training_controls
from estimator_pipeline.errors import UserError
from export import exporters as exporters_lib
from export import outputs as serving_outputs


class StepCounter(tf.compat.v1.train.SessionRunHook):
  """Counts the steps this task ran and the last global step it saw.

  With parameter servers the workers step independently; the count shows how the
  steps were shared (a worker that joins late may run few or none).
  """

  def __init__(self):
    self.steps = 0
    self.global_step = None

  def begin(self):
    self._global_step = tf.compat.v1.train.get_global_step()

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
  """Runs this process as `task`; returns a train_lib.Result (None on a ps task)."""
  start = time.time()
  if task.type == distribute.PS:
    cfg.validate()
    console.line('%s: serving variables at %s until the cluster is stopped.'
                 % (task.name, task.address()))
    distribute.serve(task)
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
  cfg.validate()
  strategy = distribute.make_strategy(cfg.distribution, task)
  plan = train_lib.preflight(cfg, chief=task.is_chief)
  cfg = cfg.replace(num_classes=plan.num_classes, image_size=plan.image_size)
  plan.config = cfg
  writes_exports = (task.type == distribute.EVALUATOR or
                    (task.is_chief and not task.has_evaluator))
  if plan.class_names and writes_exports:
    # Only the task that exports ships the class names (the others never predict).
    plan.class_names_file = serving_outputs.write_class_names(
        cfg.model_dir, plan.class_names, plan.num_classes)
  if task.is_chief:
    cfg.save()  # Only the chief writes into model_dir before training.
    train_lib.announce(plan, cfg)
  layout = distribute.layout(cfg.distribution, task, cfg.batch_size)
  if task.type == distribute.EVALUATOR:
    console.line(distribute.evaluator_note(cfg.model_dir))
  else:
    console.line(distribute.role_note(task))
    console.line(layout.describe())

  if strategy is not None:
    console.line(distribute.device_note(strategy))
  estimator = train_lib.build_estimator(plan, train_distribute=strategy)
  train_input, eval_input = train_lib.input_fns(
      plan, distribute.fallback_input_context(cfg.distribution, task))
  progress = hooks.ProgressHook(cfg.num_steps, layout.examples_per_step,
                                cfg.log_every_steps)
  counter = StepCounter()
  train_spec = tf.estimator.TrainSpec(train_input, max_steps=cfg.num_steps,
                                      hooks=[progress, counter])
  eval_spec = tf.estimator.EvalSpec(
      eval_input or _no_eval_input, steps=cfg.eval_steps or None,
      exporters=_exporters(plan), start_delay_secs=0,
      throttle_secs=distribute.evaluator_poll_secs(task))
  eval_metrics = None
  try:
    tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
    if task.type == distribute.WORKER:
      _remove_scratch(cfg.model_dir, task)
    if task.is_chief and not task.has_evaluator:
      eval_metrics = _chief_exports(plan, eval_input)
  except tf.errors.OpError as e:
    translated = train_lib._translate(e, plan)  # pylint: disable=protected-access
    if translated is None:
      raise
    raise translated from None
  return _finish(cfg, task, eval_metrics, start, counter)


def _remove_scratch(model_dir, task):
  # Under multi_worker_mirrored every worker must run the chief's save and summary
  # ops (they hold collectives), so TensorFlow has the others write them to
  # model_dir/tmp_worker_N. Left there they would show up as runs in TensorBoard.
  scratch = os.path.join(model_dir, 'tmp_%s_%d' % (task.type, task.index))
  if tf.io.gfile.isdir(scratch):
    tf.io.gfile.rmtree(scratch)


def _exporters(plan):
  cfg = plan.config
  return [hooks.EvalReporter()] + exporters_lib.make_exporters(
      train_lib.serving_input_fn(plan), cfg.exports_to_keep)


def _chief_exports(plan, eval_input):
  """Without an evaluator the chief evaluates the last checkpoint and exports it."""
  cfg = plan.config
  # The cluster is done; this Estimator must not join it again.
  with distribute.without_tf_config():
    estimator = train_lib.build_estimator(plan)
  checkpoint = estimator.latest_checkpoint()
  export_root = os.path.join(cfg.model_dir, 'export')
  if eval_input is None:
    exporters_lib.FinalExporter(
        'final', train_lib.serving_input_fn(plan), exports_to_keep=cfg.exports_to_keep
    ).export(estimator, os.path.join(export_root, 'final'), checkpoint, {}, True)
    return None
  metrics = estimator.evaluate(eval_input, steps=cfg.eval_steps or None,
                               checkpoint_path=checkpoint)
  for exporter in _exporters(plan):
    exporter.export(estimator, os.path.join(export_root, exporter.name), checkpoint,
                    metrics, True)
  return metrics


def _finish(cfg, task, eval_metrics, start, counter):
  history = train_lib.eval_history(cfg.model_dir)
  latest = tf.train.latest_checkpoint(cfg.model_dir)
  writes_exports = (task.type == distribute.EVALUATOR or
                    (task.is_chief and not task.has_evaluator))
  if task.type == distribute.EVALUATOR and history:
    eval_metrics = dict(history[max(history)], global_step=max(history))
  export_root = os.path.join(cfg.model_dir, 'export')
  result = train_lib.Result(
      model_dir=cfg.model_dir,
      global_step=(counter.global_step if task.type == distribute.WORKER and
                   counter.global_step is not None else
                   train_lib._checkpoint_step(latest)),  # pylint: disable=protected-access
      eval_metrics=dict(eval_metrics) if eval_metrics else None,
      best_metrics=(early_stopping.summary_best(
          history, cfg.early_stopping_metric, training_controls.metric_direction(
              cfg.early_stopping_metric, cfg.early_stopping_mode))
                    if writes_exports else None),
      best_metric=cfg.early_stopping_metric,
      exports={name: (train_lib._newest_export(os.path.join(export_root, name))  # pylint: disable=protected-access
                      if writes_exports else None)
               for name in ('best', 'final')},
      seconds=time.time() - start)
  if task.type == distribute.EVALUATOR:
    console.line('%s finished.' % task.name)
  else:
    console.line('%s finished: ran %d step(s) of this job%s.' % (
        task.name, counter.steps, ', the last at global step %d' % counter.global_step
        if counter.global_step is not None else ''))
  train_lib._summary(result)  # pylint: disable=protected-access
  return result
