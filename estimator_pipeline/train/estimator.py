"""The one place that builds the Estimator, its specs and its exporters.

Every path goes through here: the single-process run (local.py), each task of a
cluster (cluster.py), an export without training (exporting.py) and the benchmarks.

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config
  from estimator_pipeline.train import estimator, plan
  p = plan.preflight(config.Config(model_dir='runs/x', model_name='cifarnet',
                                   train_record_path='data/train-*'))
  print(estimator.build_estimator(p).config.model_dir)"
"""

import dataclasses
import os
import shutil
import tempfile

import tensorflow as tf
from tensorflow_estimator.python.estimator import run_config as run_config_lib

from estimator_pipeline.core import files
from estimator_pipeline.models import loops
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline.models import optimization
from estimator_pipeline.serving import exporters as exporters_lib
from estimator_pipeline.train import checkpoint_saver
from estimator_pipeline.train import early_stopping
from estimator_pipeline.train import hooks
from estimator_pipeline.train import xla

EXPORT_DIR = 'export'


def build_estimator(plan, training_chief_hooks=(), train_distribute=None,
                    extra_eval_metrics=None, saving_listeners=()):
  """The Estimator of a Plan: its model_fn (with --steps_per_loop) and RunConfig.

  extra_eval_metrics: see models/model_fn.make_model_fn (a test-set report's).
  saving_listeners: given to the chief's saver itself, not through train(): in a
  cluster with a strategy, train_and_evaluate drops a TrainSpec's listeners
  (distribute_coordinator_training). multi_worker_mirrored takes none (TensorFlow's
  collective save path refuses them).
  """
  cfg = plan.config
  if cfg.distribution != 'multi_worker_mirrored':
    # Checkpoints that hold the step they are named after (checkpoint_saver.py); first,
    # so the hooks after it see the checkpoint. multi_worker_mirrored saves through
    # TensorFlow's collective path, which adds its own saver (and has no ps race).
    training_chief_hooks = [checkpoint_saver.StepNamedCheckpointSaverHook(
        cfg.model_dir, save_steps=cfg.effective_save_checkpoints_steps,
        save_secs=cfg.save_checkpoints_secs or None,
        listeners=list(saving_listeners))] + list(training_chief_hooks)
  fn = model_fn_lib.make_model_fn(
      plan.spec, num_classes=plan.num_classes, model_params=plan.model_params,
      train_options=optimization.TrainOptions.from_config(cfg),
      training_chief_hooks=training_chief_hooks,
      warm_start_checkpoint=plan.warm_start_checkpoint,
      warm_start_map=plan.warm_start_map,
      trainable_scopes=cfg.scopes('trainable_scopes'),
      scopes_to_freeze=cfg.scopes('scopes_to_freeze'),
      summarize_gradients=cfg.summarize_gradients,
      extra_eval_metrics=extra_eval_metrics)
  fn = loops.make_looped_model_fn(fn, cfg.steps_per_loop, max_steps=cfg.num_steps,
                                  every_steps=cfg.effective_save_checkpoints_steps)
  run_config = tf.estimator.RunConfig(
      model_dir=cfg.model_dir, tf_random_seed=cfg.seed,
      save_checkpoints_steps=cfg.effective_save_checkpoints_steps,
      save_checkpoints_secs=cfg.save_checkpoints_secs or None,
      keep_checkpoint_max=cfg.keep_checkpoint_max,
      keep_checkpoint_every_n_hours=cfg.keep_checkpoint_every_n_hours,
      save_summary_steps=cfg.log_every_steps,
      log_step_count_steps=cfg.log_every_steps,
      # --deterministic runs independent ops on one inter-op thread, in a fixed order.
      session_config=xla.session_config(session_config(
          1 if cfg.deterministic else cfg.inter_op_threads, cfg.intra_op_threads),
                                        cfg.xla),
      # Evaluation stays on one device, so every record counts exactly once.
      train_distribute=train_distribute, eval_distribute=None)
  return _export_through_task(tf.estimator.Estimator(model_fn=fn, config=run_config),
                              plan)


def _export_through_task(estimator, plan):
  """Makes estimator's exports the task's export_plan when it has one (a fine-tuned
  model's adapters folded into its weights), whoever asks for them: the Estimator
  refuses subclasses that override its methods, so the instance's own is replaced."""
  export = estimator.export_saved_model

  def export_saved_model(export_dir_base, serving_input_receiver_fn,
                         assets_extra=None, as_text=False, checkpoint_path=None,
                         **kwargs):
    checkpoint_path = checkpoint_path or estimator.latest_checkpoint()
    scratch = tempfile.mkdtemp(prefix='export-plan-')
    try:
      found = plan.task.export_plan(plan, checkpoint_path, scratch)
      if found is None:
        return export(export_dir_base, serving_input_receiver_fn,
                      assets_extra=assets_extra, as_text=as_text,
                      checkpoint_path=checkpoint_path, **kwargs)
      merged, checkpoint = found
      merged = dataclasses.replace(merged, config=merged.config.replace(
          model_dir=os.path.join(scratch, 'run')))
      return build_estimator(merged).export_saved_model(
          export_dir_base, serving_input_receiver_fn, assets_extra=assets_extra,
          as_text=as_text, checkpoint_path=checkpoint, **kwargs)
    finally:
      shutil.rmtree(scratch, ignore_errors=True)

  estimator.export_saved_model = export_saved_model
  return estimator


def session_config(inter_op_threads=0, intra_op_threads=0):
  """The Estimator's default session config with the given thread counts, or None.

  None (both 0) keeps the Estimator's own default and TensorFlow's choice of threads.
  """
  if not inter_op_threads and not intra_op_threads:
    return None
  config = run_config_lib.get_default_session_config()
  config.inter_op_parallelism_threads = inter_op_threads
  config.intra_op_parallelism_threads = intra_op_threads
  return config


def export_root(plan):
  return os.path.join(plan.config.model_dir, EXPORT_DIR)


def make_exporters(plan, keeper=None):
  """What runs after each evaluation: the console line, the best checkpoint's keeper
  (when early stopping judges), export/best and export/final."""
  assets_extra = plan.task.export_assets(plan, export_root(plan))
  found = [hooks.EvalReporter()]
  if keeper:
    found.append(early_stopping.BestCheckpointExporter(keeper))
  cfg = plan.config
  # Without a keeper (a cluster) export/best still judges by the run's metric.
  compare = (keeper.compare_fn if keeper else
             early_stopping.compare_by(cfg.early_stopping_metric or 'loss',
                                       cfg.early_stopping_mode))
  return found + exporters_lib.make_exporters(
      plan.task.serving_input_fn(plan), cfg.exports_to_keep, compare_fn=compare,
      assets_extra=assets_extra)


def export_final(estimator, plan, checkpoint=None):
  """Writes a version under export/final from checkpoint (default: the latest)."""
  root = export_root(plan)
  exporter = exporters_lib.FinalExporter(
      'final', plan.task.serving_input_fn(plan),
      exports_to_keep=plan.config.exports_to_keep,
      assets_extra=plan.task.export_assets(plan, root))
  return exporter.export(estimator, os.path.join(root, 'final'),
                         checkpoint or estimator.latest_checkpoint(), {}, True)


def evaluate_and_export(estimator, plan, eval_input, exporters, eval_hooks=()):
  """One evaluation of the latest checkpoint, then every exporter, as
  train_and_evaluate does after its last evaluation. Without evaluation data, only
  export/final. Returns the metrics (None without evaluation data)."""
  if eval_input is None:
    export_final(estimator, plan)
    return None
  checkpoint = estimator.latest_checkpoint()
  metrics = estimator.evaluate(eval_input, steps=plan.config.eval_steps or None,
                               checkpoint_path=checkpoint, hooks=list(eval_hooks))
  for exporter in exporters:
    exporter.export(estimator, os.path.join(export_root(plan), exporter.name),
                    checkpoint, metrics, True)
  return metrics


def train_spec(plan, train_input, train_hooks):
  return tf.estimator.TrainSpec(train_input, max_steps=plan.config.num_steps,
                                hooks=list(train_hooks))


def eval_spec(plan, eval_input, exporters, eval_hooks=(), throttle_secs=None):
  """By default evaluates after every checkpoint: train_and_evaluate's 600 s throttle
  means a short job never evaluates."""
  cfg = plan.config
  return tf.estimator.EvalSpec(
      eval_input, steps=cfg.eval_steps or None, exporters=exporters,
      hooks=list(eval_hooks), start_delay_secs=0,
      throttle_secs=cfg.throttle_secs if throttle_secs is None else throttle_secs)


def newest_exports(model_dir):
  """{'best': newest version dir or None, 'final': ...} of a model_dir."""
  return {name: files.newest_version(os.path.join(model_dir, EXPORT_DIR, name))
          for name in ('best', 'final')}
