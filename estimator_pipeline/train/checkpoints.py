"""Checkpoints a run starts from: a warm start's variable map, a resume's checks.

A warm start (--checkpoint_path, used only while model_dir holds no checkpoint) maps
every model variable outside --checkpoint_exclude_scopes to the checkpoint's variable
of the same name and shape; anything missing or of another shape is one line naming the
variable and both shapes. A Keras .h5 (basenji's SeqNN.save) is read by the task of the
model's layout into a checkpoint of the model's own variables in a temporary folder,
removed when the process ends. A resume must find the same model in model_dir's
checkpoint:

  python -c "
  from estimator_pipeline.train import checkpoints
  print(checkpoints.resolve_checkpoint('ckpt/resnet_v1_50.ckpt'))"
"""

import atexit
import dataclasses
import os
import shutil
import tempfile
from typing import Mapping, Optional, Tuple

import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.models import model_fn as model_fn_lib


def is_keras_h5(path):
  """Whether a --checkpoint_path / --checkpoint is a Keras .h5 file (HDF5)."""
  return files.is_hdf5(path)


def import_h5(plan, path, exclude_scopes=(), ignore_missing=False,
              flag='--checkpoint_path'):
  """The task reads an .h5 into a checkpoint in a temporary folder (gone when the
  process ends, or at once if the .h5 does not fit): (prefix, map, skipped)."""
  directory = tempfile.mkdtemp(prefix='h5-weights-')
  try:
    found = plan.task.import_weights(plan, path, directory, exclude_scopes,
                                     ignore_missing, flag)
  except BaseException:
    shutil.rmtree(directory, ignore_errors=True)
    raise
  atexit.register(shutil.rmtree, directory, True)
  return found


@dataclasses.dataclass(frozen=True)
class WarmStart:
  """Where a run's variables start from, as preflight's Plan holds it."""
  warm_start_checkpoint: Optional[str] = None  # a checkpoint prefix
  warm_start_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
  skipped_vars: Tuple[str, ...] = ()  # what --ignore_missing_vars left out


def warm_start(plan):
  """The WarmStart of --checkpoint_path for the model of plan (a checkpoint, or an
  .h5 the task reads into one)."""
  cfg = plan.config
  excluded = cfg.scopes('checkpoint_exclude_scopes')
  if is_keras_h5(cfg.checkpoint_path):
    return WarmStart(*import_h5(plan, cfg.checkpoint_path, excluded,
                                cfg.ignore_missing_vars))
  checkpoint = resolve_checkpoint(cfg.checkpoint_path)
  # A fine-tuning transfer's new variables start from their initial values.
  fresh = tuple(getattr(plan.data, 'fresh_variables', ()))
  mapping, skipped = warm_start_map(plan.variables, checkpoint, excluded + fresh,
                                    cfg.ignore_missing_vars)
  return WarmStart(checkpoint, mapping, skipped)


def resolve_checkpoint(path):
  """A checkpoint file or directory -> a prefix tf.train.load_checkpoint reads."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest:
      return latest
    prefixes = sorted({f[:-len('.index')] for f in tf.io.gfile.listdir(path)
                       if f.endswith('.index')})
    singles = sorted(f for f in tf.io.gfile.listdir(path) if f.endswith('.ckpt'))
    found = prefixes or singles
    if len(found) != 1:
      raise UserError('--checkpoint_path=%s is a directory with %s checkpoint: name '
                      'the checkpoint file.' % (path, 'no' if not found else
                                                'more than one'))
    return os.path.join(path, found[0])
  if tf.io.gfile.exists(path) or tf.io.gfile.exists(path + '.index'):
    return path
  raise UserError('--checkpoint_path=%s does not exist: download and unpack the '
                  'checkpoint (see BUILD.md) or fix the path.' % path)


def warm_start_map(variables, checkpoint, exclude_scopes, ignore_missing_vars):
  """{checkpoint name: variable name} for every model variable outside exclude_scopes.

  A variable missing from the checkpoint or of another shape is an error naming it and
  both shapes, or with ignore_missing_vars a skipped name (as object_detection does).
  """
  try:
    shapes = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise UserError('--checkpoint_path=%s cannot be read as a checkpoint (%s).'
                    % (checkpoint, short_tf_message(e)))
  mapping, skipped = {}, []
  wanted = [n for n in variables if not model_fn_lib.in_scopes(n, exclude_scopes)]
  if wanted and not ignore_missing_vars and not set(wanted) & set(shapes):
    top = sorted({n.split('/')[0] for n in shapes if n != 'global_step'})
    raise UserError('--checkpoint_path=%s holds none of the %d variables of this model '
                    '(its variables are under %s): it is a checkpoint of another '
                    'network; download the one for this --model_name.' % (
                        checkpoint, len(wanted), ', '.join(top[:5]) or 'nothing'))
  for name in sorted(variables):
    if model_fn_lib.in_scopes(name, exclude_scopes):
      continue
    want = variables[name]
    if name not in shapes:
      problem = ('variable %s (shape %s) is not in --checkpoint_path=%s'
                 % (name, want, checkpoint))
    elif list(shapes[name]) != list(want):
      problem = ('variable %s has shape %s in the model but %s in --checkpoint_path=%s'
                 % (name, want, list(shapes[name]), checkpoint))
    else:
      mapping[name] = name
      continue
    if not ignore_missing_vars:
      raise UserError(problem + ': add its scope to --checkpoint_exclude_scopes, or '
                      'pass --ignore_missing_vars to skip such variables.')
    skipped.append(name)
  return mapping, tuple(skipped)


def check_scopes(cfg, variables):
  for flag in ('checkpoint_exclude_scopes', 'trainable_scopes', 'scopes_to_freeze'):
    for scope in cfg.scopes(flag):
      if not any(model_fn_lib.in_scopes(v, (scope,)) for v in variables):
        raise UserError('--%s names scope %r, which holds no variable of --model_name=%s'
                        ' (its top scopes: %s).' % (
                            flag, scope, cfg.model_name,
                            ', '.join(sorted({v.split('/')[0] + '/' +
                                              v.split('/')[1] if '/' in v else v
                                              for v in variables})[:8])))


def check_resume_training(cfg, saved, latest):
  # The checkpoint holds the optimizer's slots and the moving averages of the run
  # that wrote it; another optimizer, or averages it never kept, cannot restore.
  if saved.optimizer != cfg.optimizer:
    raise UserError('--model_dir=%s was trained with --optimizer=%s, and its '
                    'checkpoint holds that optimizer\'s state: resume with '
                    '--optimizer=%s, or use another --model_dir.' % (
                        cfg.model_dir, saved.optimizer, saved.optimizer))
  if cfg.moving_average_decay and not saved.moving_average_decay:
    names = tf.train.load_checkpoint(latest).get_variable_to_shape_map()
    if not any(n.endswith('/ExponentialMovingAverage') for n in names):
      raise UserError('--model_dir=%s was trained without --moving_average_decay, so '
                      'its checkpoint has no averages to continue: resume with '
                      '--moving_average_decay=0, or use another --model_dir.'
                      % cfg.model_dir)


def check_resume_shapes(cfg, variables, latest):
  # config.json may predate a flag change; the checkpoint is the truth about the model.
  shapes = tf.train.load_checkpoint(latest).get_variable_to_shape_map()
  for name in sorted(variables):
    if name in shapes and list(shapes[name]) != list(variables[name]):
      raise UserError('--model_dir=%s holds %s of shape %s, but these flags build %s: '
                      'use another --model_dir, or the flags it was trained with '
                      '(see its config.json).' % (cfg.model_dir, name,
                                                 list(shapes[name]), variables[name]))
