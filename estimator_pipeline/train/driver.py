"""run(config): the whole training run, from a Config to checkpoints, events and exports.

The driver reads top to bottom and never asks which record layout it runs: the task
answers (train/tasks/). The task applies the params file's train section (the run's
one read of the file), the process's place in a TF_CONFIG cluster decides between
cluster.py and a single process, preflight checks everything before anything is
written, and the run holds model_dir's lock from its first write to its end:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config
  from estimator_pipeline.train import driver
  driver.run(config.Config(model_dir='runs/x', train_record_path='data/train-*',
                           eval_record_path='data/validation-*',
                           model_name='cifarnet', num_steps=200))"
"""

import errno
import time

import tensorflow as tf

from estimator_pipeline import models
from estimator_pipeline.config import cluster as cluster_config
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.train import cluster
from estimator_pipeline.train import failures
from estimator_pipeline.train import local
from estimator_pipeline.train import lock as lock_lib
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.train import safety
from estimator_pipeline.train import summary
from estimator_pipeline.train import tasks


def run(cfg, typed_flags=None):
  """Trains, evaluates and exports as cfg says. Returns a summary.Result.

  typed_flags: the flags the user typed, which win over --params_file's train section;
  None (library callers) counts every field that differs from its default as typed.
  With a cluster in TF_CONFIG, this process runs as its task there (see cluster.py).
  SIGINT/SIGTERM save a checkpoint at the current step and raise errors.Interrupted;
  a checkpoint of NaN or Inf weights is never saved (safety.py).
  """
  start = time.time()
  layout_task = tasks.for_model(models.get(cfg.model_name))
  # The one read of the params file: its train section here, the rest in preflight.
  cfg, params, not_applied = layout_task.apply_params_file(cfg, explicit=typed_flags)
  task = cluster_config.task_from_env()
  cluster_config.check(cfg.distribution, task)
  if task.in_cluster:
    return cluster.run(cfg, task, params, not_applied)
  plan = plan_lib.preflight(cfg, params=params, not_applied=not_applied)
  if plan.finished:
    # A finished job re-run: say so, write nothing, succeed (exit 0), as make does.
    console.line(plan.finished)
    return summary.finish(plan.config, start,
                          files.checkpoint_step(plan.latest_checkpoint),
                          finished=plan.finished)
  with lock_lib.ModelDirLock(cfg.model_dir) as held, safety.StopSignals() as signals:
    held.announce(console.line)
    removed = safety.clean_partial_files(cfg.model_dir)
    if removed:
      console.line('Removed what a killed run left half-written: %s' % ', '.join(
          removed[:5]) + (' ...' if len(removed) > 5 else ''))
    try:
      return local.run_locked(plan, signals, start)
    except OSError as e:
      # Python-side writes (config.json, exports' pruning) on a full or read-only disk.
      if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
        raise
      raise failures.disk_error(cfg.model_dir, e.strerror or str(e)) from None
    except tf.errors.OpError as e:
      if not failures.is_disk_error(str(e)):
        raise
      # TF's first line is often just 'Graph execution error:'; name the cause.
      raise failures.disk_error(cfg.model_dir, next(
          w for w in failures.DISK_WORDS if w in str(e))) from None
