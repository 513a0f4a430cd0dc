"""The training controls' names, their checks, and the run's flag record.

Everything here is plain Python (no TensorFlow), so every flag is checked before a
graph is built, and flags/ can list the choices:

  python -c "
  from estimator_pipeline import config, training_controls as t
  cfg = config.Config(model_dir='runs/x', train_record_path='d/*', warmup_steps=5000)
  t.validate(cfg)"        # UserError: --warmup_steps=5000 is not shorter than ...

`flagfile_text(cfg)` is what train.py writes to model_dir/flags.txt: one `--name=value`
line per flag, so `python train.py --flagfile=runs/x/flags.txt` repeats the run.
"""

import math
import os

from estimator_pipeline.errors import UserError

FLAGS_FILE = 'flags.txt'

OPTIMIZERS = ('sgd', 'momentum', 'rmsprop', 'adam', 'adamw')

# tf-models-official's names ('stepwise', 'constant') and slim's ('fixed') are
# accepted beside ours, so a name from either documentation works.
LR_SCHEDULES = ('constant', 'exponential', 'piecewise', 'polynomial', 'cosine')
LR_SCHEDULE_ALIASES = {'fixed': 'constant', 'stepwise': 'piecewise'}
LR_SCHEDULE_CHOICES = LR_SCHEDULES + tuple(sorted(LR_SCHEDULE_ALIASES))

EARLY_STOPPING_MODES = ('auto', 'min', 'max')

# AdamW's decoupled weight decay when --weight_decay is left negative (PyTorch's and
# Loshchilov & Hutter's default).
ADAMW_DEFAULT_WEIGHT_DECAY = 0.01

# --early_stopping_mode=auto: higher is better for these metric names, lower for the
# rest of the known ones; anything else needs an explicit direction.
_HIGHER_IS_BETTER = ('accuracy', 'auc', 'precision', 'recall', 'pearson', 'r2',
                     'f1', 'iou', 'map', 'correlation', 'spearman')
_LOWER_IS_BETTER = ('loss', 'error', 'mse', 'mae', 'rmse', 'perplexity')


def schedule_name(name):
  """The canonical schedule name ('stepwise' -> 'piecewise', 'fixed' -> 'constant')."""
  return LR_SCHEDULE_ALIASES.get(name, name)


def metric_direction(metric, mode='auto'):
  """'min' or 'max' for an evaluation metric; UserError when auto cannot tell."""
  if mode in ('min', 'max'):
    return mode
  words = metric.lower().replace('/', '_').split('_')
  # The last word decides: 'mean_per_class_accuracy' is an accuracy, 'accuracy_loss'
  # would be a loss.
  for word in reversed(words):
    if word in _LOWER_IS_BETTER:
      return 'min'
    if word in _HIGHER_IS_BETTER:
      return 'max'
  raise UserError('--early_stopping_mode=auto cannot tell whether a larger %s is '
                  'better: pass --early_stopping_mode=min or max.' % metric)


def parse_list(text, flag, kind):
  """'1000, 2000' -> [1000, 2000] for a comma-separated flag; UserError naming it."""
  values = []
  for part in text.split(','):
    part = part.strip()
    if not part:
      continue
    try:
      values.append(kind(part))
    except ValueError:
      raise UserError('--%s=%s: %r is not a%s %s.' % (
          flag, text, part, 'n' if kind is int else '',
          'integer' if kind is int else 'number')) from None
  return values


def piecewise_values(cfg):
  """(boundaries, values) of the piecewise schedule.

  Without --lr_values, the rate is multiplied by --decay_rate at each boundary, as
  slim's and basenji's step schedules do.
  """
  boundaries = parse_list(cfg.lr_boundaries, 'lr_boundaries', int)
  values = parse_list(cfg.lr_values, 'lr_values', float)
  if not values:
    values = [cfg.learning_rate * cfg.decay_rate ** i
              for i in range(len(boundaries) + 1)]
  return boundaries, values


def _fail(message):
  raise UserError(message)


def validate(cfg):
  """Checks the optimizer, schedule, checkpoint and early-stopping flags of a Config.

  One UserError naming the flag (train.py: one line, exit 2). Called by
  Config.validate, before any file is read or graph built.
  """
  if cfg.grad_accum_steps > 1 and cfg.steps_per_loop > 1:
    # The in-graph loop counts one global step per batch; accumulation does not.
    _fail('--grad_accum_steps=%d and --steps_per_loop=%d cannot be combined; set one '
          'of them to 1.' % (cfg.grad_accum_steps, cfg.steps_per_loop))
  if cfg.skip_corrupt_records and cfg.steps_per_loop > 1:
    # The skipped-record count reads each batch's record numbers outside the loop.
    _fail('--skip_corrupt_records and --steps_per_loop=%d cannot be combined; set '
          '--steps_per_loop=1.' % cfg.steps_per_loop)
  if cfg.optimizer not in OPTIMIZERS:
    _fail('--optimizer=%s is not known; known: %s.' % (cfg.optimizer,
                                                        ', '.join(OPTIMIZERS)))
  schedule = schedule_name(cfg.lr_schedule)
  if schedule not in LR_SCHEDULES:
    _fail('--lr_schedule=%s is not known; known: %s.' % (
        cfg.lr_schedule, ', '.join(LR_SCHEDULE_CHOICES)))
  for name in ('warmup_steps', 'save_checkpoints_secs', 'eval_every_steps',
               'throttle_secs', 'early_stopping_patience'):
    if getattr(cfg, name) < 0:
      _fail('--%s=%s must be >= 0 (0 turns it off).' % (name, getattr(cfg, name)))
  if cfg.grad_accum_steps < 1:
    _fail('--grad_accum_steps=%s must be >= 1 (1 updates after every batch).'
          % cfg.grad_accum_steps)
  if cfg.keep_checkpoint_every_n_hours <= 0:
    _fail('--keep_checkpoint_every_n_hours=%s must be positive.'
          % cfg.keep_checkpoint_every_n_hours)
  if cfg.warmup_steps and cfg.warmup_steps >= cfg.num_steps:
    _fail('--warmup_steps=%d is not shorter than training (--num_steps=%d): lower '
          '--warmup_steps or raise --num_steps.' % (cfg.warmup_steps, cfg.num_steps))
  for name in ('momentum', 'adam_beta1', 'adam_beta2', 'rmsprop_decay'):
    value = getattr(cfg, name)
    if not 0 <= value < 1:
      _fail('--%s=%s must be in [0, 1).' % (name, value))
  for name in ('adam_epsilon', 'rmsprop_epsilon'):
    if not getattr(cfg, name) > 0:
      _fail('--%s=%s must be positive.' % (name, getattr(cfg, name)))
  if cfg.clip_gradient_norm < 0 or math.isnan(cfg.clip_gradient_norm):
    _fail('--clip_gradient_norm=%s must be >= 0 (0 does not clip).'
          % cfg.clip_gradient_norm)
  if not 0 <= cfg.moving_average_decay < 1:
    _fail('--moving_average_decay=%s must be in [0, 1) (0 keeps no averages; '
          'typical: 0.999 or 0.9999).' % cfg.moving_average_decay)
  if not 0 <= cfg.label_smoothing < 1:
    _fail('--label_smoothing=%s must be in [0, 1).' % cfg.label_smoothing)
  if cfg.end_learning_rate < 0:
    _fail('--end_learning_rate=%s must be >= 0.' % cfg.end_learning_rate)
  if (schedule in ('polynomial', 'cosine') and
      cfg.end_learning_rate > cfg.learning_rate):
    _fail('--end_learning_rate=%s is above --learning_rate=%s: the %s schedule decays '
          'from the second to the first.' % (cfg.end_learning_rate,
                                             cfg.learning_rate, schedule))
  _validate_piecewise(cfg, schedule)
  _validate_checkpoints(cfg)
  _validate_early_stopping(cfg)


def _validate_piecewise(cfg, schedule):
  if schedule != 'piecewise':
    for name in ('lr_boundaries', 'lr_values'):
      if getattr(cfg, name):
        _fail('--%s is set but --lr_schedule=%s: pass --lr_schedule=piecewise.'
              % (name, cfg.lr_schedule))
    return
  boundaries = parse_list(cfg.lr_boundaries, 'lr_boundaries', int)
  values = parse_list(cfg.lr_values, 'lr_values', float)
  if not boundaries:
    _fail('--lr_schedule=%s needs --lr_boundaries, e.g. --lr_boundaries=30000,60000 '
          '(global steps).' % cfg.lr_schedule)
  if boundaries[0] <= 0 or any(b <= a for a, b in zip(boundaries, boundaries[1:])):
    _fail('--lr_boundaries=%s must be positive steps in increasing order.'
          % cfg.lr_boundaries)
  if values and len(values) != len(boundaries) + 1:
    _fail('--lr_values has %d values but --lr_boundaries has %d boundaries: give one '
          'value more than boundaries (the rate before the first, between each, and '
          'after the last).' % (len(values), len(boundaries)))
  if any(v < 0 for v in values):
    _fail('--lr_values=%s must not be negative.' % cfg.lr_values)


def _validate_checkpoints(cfg):
  if cfg.save_checkpoints_steps and cfg.save_checkpoints_secs:
    _fail('--save_checkpoints_steps=%d and --save_checkpoints_secs=%d are both set: '
          'checkpoints are saved by steps or by seconds, give one.'
          % (cfg.save_checkpoints_steps, cfg.save_checkpoints_secs))
  if cfg.eval_every_steps:
    if not cfg.eval_record_path:
      _fail('--eval_every_steps=%d needs --eval_record_path (there is nothing to '
            'evaluate).' % cfg.eval_every_steps)
    if cfg.save_checkpoints_secs:
      _fail('--eval_every_steps evaluates a checkpoint saved every that many steps, '
            'but --save_checkpoints_secs=%d saves by time: give one of them, or '
            '--throttle_secs to space evaluations in time.' % cfg.save_checkpoints_secs)
    if (cfg.save_checkpoints_steps and
        cfg.save_checkpoints_steps != cfg.eval_every_steps):
      _fail('--eval_every_steps=%d and --save_checkpoints_steps=%d differ: each '
            'evaluation reads a new checkpoint, so give one of them (or the same '
            'value).' % (cfg.eval_every_steps, cfg.save_checkpoints_steps))


def _validate_early_stopping(cfg):
  if cfg.early_stopping_mode not in EARLY_STOPPING_MODES:
    _fail('--early_stopping_mode=%s is not known; known: %s.' % (
        cfg.early_stopping_mode, ', '.join(EARLY_STOPPING_MODES)))
  if not cfg.early_stopping_metric.strip():
    _fail('--early_stopping_metric is empty: name an evaluation metric, e.g. loss.')
  if cfg.early_stopping_patience and not cfg.eval_record_path:
    _fail('--early_stopping_patience=%d needs --eval_record_path: patience counts '
          'evaluations, and without evaluation data there are none.'
          % cfg.early_stopping_patience)
  metric_direction(cfg.early_stopping_metric, cfg.early_stopping_mode)


def flagfile_text(cfg):
  """One '--name=value' line per Config field, for `train.py --flagfile=...`."""
  lines = ['# Written by train.py; repeat this run with:',
           '#   python train.py --flagfile=%s' % os.path.join(
               cfg.model_dir or '.', FLAGS_FILE)]
  for name, value in sorted(cfg.to_dict().items()):
    if isinstance(value, bool):
      value = 'true' if value else 'false'
    elif isinstance(value, float):
      value = repr(value)
    lines.append('--%s=%s' % (name, value))
  return '\n'.join(lines) + '\n'


def save_flagfile(cfg):
  """Writes model_dir/flags.txt atomically; returns its path."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(cfg.model_dir, FLAGS_FILE)
  tmp = path + '.tmp'
  with tf.io.gfile.GFile(tmp, 'w') as f:
    f.write(flagfile_text(cfg))
  tf.io.gfile.rename(tmp, path, overwrite=True)
  return path
