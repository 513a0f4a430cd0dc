"""The run's model_dir before anything is written: free to train, writable, big enough,
the same model as before, and not finished yet.

  python -c "
  from estimator_pipeline import config
  from estimator_pipeline.train import model_dir
  print(model_dir.finished_message(config.Config(model_dir='runs/x'), None))"
"""

import os
import shutil

import numpy as np
import tensorflow as tf

from estimator_pipeline.config import config as config_lib
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import early_stopping
from estimator_pipeline.train import lock as lock_lib


def _finished(model_dir, step):
  """Whether export/final holds a version exported from the checkpoint at step."""
  newest = files.newest_version(os.path.join(model_dir, 'export', 'final'))
  return bool(newest) and files.export_step(newest) == step


def _read_only(path):
  try:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
  except OSError:
    return False


def check(cfg, num_classes, image_size, chief=True):
  """Refuses a model_dir that holds another model or is being trained.

  Returns (latest checkpoint or None, whether only the final evaluation and export
  are missing). Only the chief checks the lock and that a resume matches the saved
  run: in a cluster the other tasks see model_dir change under them while the chief
  trains.
  """
  if chief:
    lock_lib.check_free(cfg.model_dir)
  if os.path.isdir(cfg.model_dir) and not os.access(cfg.model_dir, os.W_OK):
    # access() reports a read-only mount even to root, whom permissions do not stop.
    raise UserError('cannot write to --model_dir=%s (%s): pass a directory you can '
                    'write to.' % (cfg.model_dir, 'read-only file system'
                                   if _read_only(cfg.model_dir) else 'permission denied'))
  saved = config_lib.load(cfg.model_dir)
  if saved is not None:
    theirs = {'model_name': saved.model_name, 'num_classes': saved.num_classes,
              'image_size': saved.image_size}
    ours = {'model_name': cfg.model_name, 'num_classes': num_classes,
            'image_size': image_size}
    for key in theirs:
      if theirs[key] and theirs[key] != ours[key]:
        raise UserError('--model_dir=%s holds a model with %s=%s, not %s: use another '
                        '--model_dir, or the same --%s to resume.' % (
                            cfg.model_dir, key, theirs[key], ours[key], key))
  latest = (tf.train.latest_checkpoint(cfg.model_dir)
            if tf.io.gfile.isdir(cfg.model_dir) else None)
  if chief and saved is not None and latest:
    checkpoints.check_resume_training(cfg, saved, latest)
  step = files.checkpoint_step(latest)
  finish_only = bool(chief and latest and step == cfg.num_steps and
                     not _finished(cfg.model_dir, step))
  return latest, finish_only


# Slot variables per trainable variable that each optimizer keeps in the checkpoint.
_OPTIMIZER_SLOTS = {'sgd': 0, 'momentum': 1, 'rmsprop': 2, 'adam': 2}


def check_space(cfg, variables, trainable_names):
  """Refuses a model_dir whose disk cannot hold one checkpoint and one export.

  A disk that fills up while a checkpoint is written costs that checkpoint; refusing
  before the first write costs nothing. Later checkpoints are not counted: the Saver
  deletes old ones as it writes new ones.
  """
  folder = os.path.abspath(cfg.model_dir)
  while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
    folder = os.path.dirname(folder)
  try:
    free = shutil.disk_usage(folder).free
  except OSError:
    return
  size = lambda shape: 4 * int(np.prod(shape)) if shape else 4
  weights = sum(size(s) for s in variables.values())
  slots = _OPTIMIZER_SLOTS.get(cfg.optimizer, 2) * sum(
      size(variables[n]) for n in trainable_names if n in variables)
  needed = 2 * weights + slots  # A checkpoint (weights + slots) and a SavedModel.
  if free < needed:
    raise UserError('--model_dir=%s has %.1f MB free, but one checkpoint and one '
                    'export of --model_name=%s need about %.1f MB: free some space or '
                    'pass a --model_dir on a larger disk.' % (
                        cfg.model_dir, free / 1e6, cfg.model_name, needed / 1e6))


def finished_message(cfg, latest):
  step = files.checkpoint_step(latest) if latest else 0
  if latest and step >= cfg.num_steps:
    return ('--model_dir=%s already holds step %d, at or past --num_steps=%d: nothing '
            'to train. Raise --num_steps to train further.' % (cfg.model_dir, step,
                                                               cfg.num_steps))
  return early_stopping.finished_message(cfg, latest)
