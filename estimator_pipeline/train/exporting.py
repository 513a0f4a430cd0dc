"""Export a trained model_dir's checkpoint as a new SavedModel version, without training.

The model is rebuilt from model_dir/config.json with the same builders train.py uses
(plan.py, estimator.py, and the task of the model's record layout), so the export
equals what training would have written:

  python -m export --model_dir=runs/x --checkpoint=best --export_dir=out/ \
      --serving_input=tf_example

A sequence model can also be exported without a model_dir, from basenji's params file
and a checkpoint: the .h5 basenji's or baskerville's SeqNN.save wrote, or a checkpoint
of a model_dir:

  python -m export --params_file=params.json --checkpoint=model_best.h5 \
      --export_dir=out/ --ensemble_rc --ensemble_shifts=1,0,-1
"""

import os
import shutil
import tempfile

import tensorflow as tf

from estimator_pipeline.config import checks
from estimator_pipeline.config import config as config_lib
from estimator_pipeline.config import controls
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import plan as plan_lib

DEFAULT_EXPORT_SUBDIR = 'manual'


def load_config(model_dir, serving_input='', overrides=None):
  """model_dir/config.json, pointed at model_dir as it is now (and overrides)."""
  cfg = config_lib.load(model_dir)
  if cfg is None:
    raise UserError('--model_dir=%s holds no %s: name a directory that train.py '
                    'trained.' % (model_dir, config_lib.CONFIG_FILE))
  # The directory may have moved since training: the flag is where it is now.
  return cfg.replace(model_dir=model_dir,
                     serving_input=serving_input or cfg.serving_input,
                     **(overrides or {}))


def _params_config(scratch, serving_input, overrides):
  """The Config of a sequence model built from --params_file, without a model_dir."""
  overrides = dict(overrides or {})
  if not overrides.get('params_file'):
    raise UserError('--model_dir is empty: name the directory train.py trained, e.g. '
                    '--model_dir=runs/flowers, or for a sequence model basenji\'s '
                    '--params_file and its --checkpoint.')
  return config_lib.Config(model_name='seqnn', serving_input=serving_input,
                           model_dir=os.path.join(scratch, 'run'), **overrides)


def choose_checkpoint(model_dir, checkpoint, metric='loss', mode='auto'):
  """'latest', 'best' (the best evaluation by metric among kept checkpoints) or a path
  -> prefix."""
  if checkpoint in ('latest', 'best') and not model_dir:
    raise UserError('--checkpoint=%s needs --model_dir: without one, pass the path of '
                    'a checkpoint or of basenji\'s .h5.' % checkpoint)
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
    sign = 1 if controls.metric_direction(metric, mode) == 'min' else -1
    scored = sorted((sign * m[metric], step) for step, m in history.items()
                    if metric in m and step in kept)
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
                        checkpoint, os.path.join(model_dir or 'runs/x',
                                                 'model.ckpt-1000')))
  try:
    return checkpoints.resolve_checkpoint(checkpoint)
  except UserError as e:
    raise UserError(str(e).replace('--checkpoint_path=', '--checkpoint=')) from None


def check_checkpoint(plan, checkpoint):
  """Refuses a checkpoint that is not of this model, naming the first variable off."""
  # A fine-tuning transfer's new variables may be absent (folded into the weights).
  fresh = set(getattr(plan.data, 'fresh_variables', ()))
  want = {n: s for n, s in plan.variables.items() if n not in fresh}
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
      raise UserError('--checkpoint=%s lacks %s of this --model_name=%s: pass a '
                      'checkpoint of that model.' % (checkpoint, name,
                                                     plan.config.model_name))


def restore_plan(model_dir, checkpoint, scratch, serving_input='', overrides=None):
  """The Plan of the model to rebuild and the checkpoint prefix of its weights.

  Arguments as export()'s; scratch holds what the plan needs and model_dir lacks (a
  params-file model's run folder, the checkpoint an .h5 becomes) and must outlive
  the checkpoint's use.
  """
  cfg = (load_config(model_dir, serving_input, overrides) if model_dir else
         _params_config(scratch, serving_input, overrides))
  checks.check_sequence_flags(cfg)
  controls.parse_shifts(cfg.ensemble_shifts)
  plan = plan_lib.plan_for_export(cfg, model_dir, scratch)
  if checkpoints.is_keras_h5(checkpoint):
    ckpt, _, _ = plan.task.import_weights(plan, checkpoint, scratch,
                                          flag='--checkpoint')
  else:
    ckpt = choose_checkpoint(model_dir, checkpoint, cfg.early_stopping_metric or
                             'loss', cfg.early_stopping_mode)
  check_checkpoint(plan, ckpt)
  return plan, ckpt


def export(model_dir='', checkpoint='latest', export_dir='', serving_input='',
           overrides=None):
  """Writes a new integer version under export_dir; returns (version dir, checkpoint).

  overrides: Config fields that replace model_dir's (e.g. ensemble_rc); without a
  model_dir, the fields of the sequence model to build (params_file, head, gelu,
  ensemble_rc, ensemble_shifts). checkpoint may be basenji's .h5.
  """
  scratch = tempfile.mkdtemp(prefix='export-')
  try:
    if not model_dir and not export_dir:
      raise UserError('--export_dir is empty: without --model_dir, name the directory '
                      'of versions to write, e.g. --export_dir=exports/basenji.')
    plan, ckpt = restore_plan(model_dir, checkpoint, scratch, serving_input, overrides)
    export_dir = export_dir or os.path.join(model_dir, 'export', DEFAULT_EXPORT_SUBDIR)
    tf.io.gfile.makedirs(export_dir)
    estimator = estimator_lib.build_estimator(plan)
    # The Estimator builds the version under a temporary name and renames it when
    # complete (warm-up file included), so TF Serving never loads half a version.
    path = estimator.export_saved_model(
        export_dir, plan.task.serving_input_fn(plan),
        assets_extra=plan.task.export_assets(plan, scratch), checkpoint_path=ckpt)
    if checkpoints.is_keras_h5(checkpoint):
      ckpt = checkpoint
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return path.decode() if isinstance(path, bytes) else path, ckpt
