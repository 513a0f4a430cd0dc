"""Export a trained model_dir's checkpoint as a new SavedModel version, without training.

The model is rebuilt from model_dir/config.json with the same builders train.py uses
(plan.py, estimator.py, and the task of the model's record layout), so the export
equals what training would have written:

  python -m export --model_dir=runs/x --checkpoint=best --export_dir=out/ \
      --serving_input=tf_example
"""

import os
import shutil
import tempfile

import tensorflow as tf

from estimator_pipeline.config import config as config_lib
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import plan as plan_lib

DEFAULT_EXPORT_SUBDIR = 'manual'


def load_config(model_dir, serving_input=''):
  """model_dir/config.json, pointed at model_dir as it is now."""
  cfg = config_lib.load(model_dir)
  if cfg is None:
    raise UserError('--model_dir=%s holds no %s: name a directory that train.py '
                    'trained.' % (model_dir, config_lib.CONFIG_FILE))
  # The directory may have moved since training: the flag is where it is now.
  return cfg.replace(model_dir=model_dir,
                     serving_input=serving_input or cfg.serving_input)


def choose_checkpoint(model_dir, checkpoint):
  """'latest', 'best' (lowest eval loss among kept checkpoints) or a path -> prefix."""
  if checkpoint == 'latest':
    latest = tf.train.latest_checkpoint(model_dir)
    if not latest:
      raise UserError('--model_dir=%s holds no checkpoint: train first, or pass '
                      '--checkpoint=PATH.' % model_dir)
    return latest
  if checkpoint == 'best':
    state = tf.train.get_checkpoint_state(model_dir)
    kept = {files.checkpoint_step(p, default=None): p
            for p in (state.all_model_checkpoint_paths if state else [])
            if tf.io.gfile.exists(p + '.index')}
    history = files.eval_history(model_dir)
    scored = sorted((m['loss'], step) for step, m in history.items()
                    if 'loss' in m and step in kept)
    if not scored:
      raise UserError('--checkpoint=best: no kept checkpoint of --model_dir=%s was '
                      'evaluated (evaluated steps: %s, kept: %s); pass '
                      '--checkpoint=latest or a path.' % (
                          model_dir, sorted(history) or 'none', sorted(kept) or 'none'))
    return kept[scored[0][1]]
  if not (tf.io.gfile.isdir(checkpoint) or tf.io.gfile.exists(checkpoint + '.index')
          or tf.io.gfile.exists(checkpoint)):
    raise UserError('--checkpoint=%s does not exist: pass best, latest or the path of '
                    'a checkpoint (e.g. %s).' % (
                        checkpoint, os.path.join(model_dir, 'model.ckpt-1000')))
  try:
    return checkpoints.resolve_checkpoint(checkpoint)
  except UserError as e:
    raise UserError(str(e).replace('--checkpoint_path=', '--checkpoint=')) from None


def check_checkpoint(plan, checkpoint):
  """Refuses a checkpoint that is not of this model, naming the first variable off."""
  want, _ = plan.task.model_variables(plan)
  try:
    have = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise UserError('--checkpoint=%s cannot be read as a checkpoint (%s).'
                    % (checkpoint, short_tf_message(e)))
  # Another shape says more about what went wrong than a missing name: checked first.
  for name in sorted(want):
    if name in have and list(have[name]) != list(want[name]):
      raise UserError('--checkpoint=%s holds %s of shape %s, the model needs %s: pass a '
                      'checkpoint of that model.' % (checkpoint, name,
                                                     list(have[name]), want[name]))
  for name in sorted(want):
    if name not in have:
      raise UserError('--checkpoint=%s lacks %s of --model_dir\'s %s: pass a checkpoint '
                      'of that model.' % (checkpoint, name, plan.config.model_name))


def export(model_dir, checkpoint='latest', export_dir='', serving_input=''):
  """Writes a new integer version under export_dir; returns (version dir, checkpoint)."""
  cfg = load_config(model_dir, serving_input)
  scratch = tempfile.mkdtemp(prefix='export-')
  try:
    plan = plan_lib.plan_for_export(cfg, model_dir, scratch)
    ckpt = choose_checkpoint(model_dir, checkpoint)
    check_checkpoint(plan, ckpt)
    export_dir = export_dir or os.path.join(model_dir, 'export', DEFAULT_EXPORT_SUBDIR)
    tf.io.gfile.makedirs(export_dir)
    estimator = estimator_lib.build_estimator(plan)
    # The Estimator builds the version under a temporary name and renames it when
    # complete (warm-up file included), so TF Serving never loads half a version.
    path = estimator.export_saved_model(
        export_dir, plan.task.serving_input_fn(plan),
        assets_extra=plan.task.export_assets(plan, scratch), checkpoint_path=ckpt)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return path.decode() if isinstance(path, bytes) else path, ckpt
