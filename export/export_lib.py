"""Export a trained model_dir's checkpoint as a new SavedModel version, without training.

The model is rebuilt from model_dir/config.json with the same builders train.py uses
(train_lib.build_estimator, train_lib.serving_input_fn), so the export equals what
training would have written:

  python -m export --model_dir=runs/x --checkpoint=best --export_dir=out/ \
      --serving_input=tf_example
"""

import os
import re
import shutil
import tempfile

import tensorflow as tf

from estimator_pipeline import config as config_lib
from estimator_pipeline import models
from estimator_pipeline import train_lib
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message
from export import outputs
from export import serving

DEFAULT_EXPORT_SUBDIR = 'manual'


def load_plan(model_dir, serving_input=''):
  """A train_lib.Plan for exporting, from model_dir/config.json (reads no records)."""
  cfg = config_lib.load(model_dir)
  if cfg is None:
    raise UserError('--model_dir=%s holds no %s: name a directory that train.py '
                    'trained.' % (model_dir, config_lib.CONFIG_FILE))
  # The directory may have moved since training: the flag is where it is now.
  cfg = cfg.replace(model_dir=model_dir,
                    serving_input=serving_input or cfg.serving_input)
  spec = models.get(cfg.model_name)
  serving.get(spec, cfg.serving_input)
  if not cfg.num_classes:
    raise UserError('%s has no num_classes: re-run train.py once to record it.'
                    % os.path.join(model_dir, config_lib.CONFIG_FILE))
  names_file = os.path.join(model_dir, outputs.CLASS_NAMES_FILE)
  return train_lib.Plan(
      config=cfg, spec=spec, train_files=[], eval_files=None, class_names=None,
      num_classes=cfg.num_classes,
      image_size=cfg.image_size or spec.default_image_size, latest_checkpoint=None,
      class_names_file=names_file if tf.io.gfile.exists(names_file) else None)


def _step(path):
  match = re.search(r'-(\d+)$', path)
  return int(match.group(1)) if match else None


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
    kept = {_step(p): p for p in (state.all_model_checkpoint_paths if state else [])
            if tf.io.gfile.exists(p + '.index')}
    history = train_lib.eval_history(model_dir)
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
    return train_lib.resolve_checkpoint(checkpoint)
  except UserError as e:
    raise UserError(str(e).replace('--checkpoint_path=', '--checkpoint=')) from None


def check_checkpoint(plan, checkpoint):
  """Refuses a checkpoint that is not of this model, naming the first variable off."""
  want, _ = train_lib.model_variables(
      plan.spec, plan.num_classes, train_lib.model_params(plan.config, plan.image_size),
      plan.image_size)
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


def _training_labels(cfg):
  """labels.txt of a run older than class_names.txt, if it can still be found."""
  candidates = [cfg.labels_file] if cfg.labels_file else []
  first = sorted(tf.io.gfile.glob(cfg.train_record_path.split(',')[0].strip())
                 if cfg.train_record_path else [])
  if first:
    candidates.append(os.path.join(os.path.dirname(first[0]), train_lib.LABELS_FILE))
  for path in candidates:
    if tf.io.gfile.exists(path):
      return train_lib.read_labels(path)
  return None


def export(model_dir, checkpoint='latest', export_dir='', serving_input=''):
  """Writes a new integer version under export_dir; returns (version dir, checkpoint)."""
  plan = load_plan(model_dir, serving_input)
  ckpt = choose_checkpoint(model_dir, checkpoint)
  check_checkpoint(plan, ckpt)
  export_dir = export_dir or os.path.join(model_dir, 'export', DEFAULT_EXPORT_SUBDIR)
  tf.io.gfile.makedirs(export_dir)
  scratch = tempfile.mkdtemp(prefix='export-')
  try:
    if plan.class_names_file is None:
      # A run trained before class_names.txt existed: its labels.txt, when found.
      names = _training_labels(plan.config)
      if names:
        plan.class_names_file = outputs.write_class_names(scratch, names,
                                                          plan.num_classes)
    estimator = train_lib.build_estimator(plan)
    assets_extra = train_lib.export_assets(plan, scratch)
    # The Estimator builds the version under a temporary name and renames it when
    # complete (warm-up file included), so TF Serving never loads half a version.
    path = estimator.export_saved_model(
        export_dir, train_lib.serving_input_fn(plan), assets_extra=assets_extra,
        checkpoint_path=ckpt)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return path.decode() if isinstance(path, bytes) else path, ckpt
