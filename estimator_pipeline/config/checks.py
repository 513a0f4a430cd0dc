"""Every check of every flag of a run, in one place, before any file is read.

`validate(cfg)` refuses a Config that can never work with one UserError naming the flag
and the fix (train.py prints it as one line and exits with status 2). Checks that need
the records, the model or model_dir come later, in train/plan.py; this module needs
nothing but the values:

  python -c "
  from estimator_pipeline import config
  config.Config(model_dir='runs/x', train_record_path='d/*', warmup_steps=5000).validate()"
  # UserError: --warmup_steps=5000 is not shorter than training (--num_steps=1000) ...
"""

import dataclasses
import math

from estimator_pipeline.config import cluster
from estimator_pipeline.config import controls
from estimator_pipeline.core.errors import UserError

# The smallest value of each count flag, and what that bound means. A count field not
# named here must be >= 0; a field may also say its own with
# dataclasses.field(metadata={'minimum': ...}).
_COUNT_MINIMUM = {
    'batch_size': (1, ''), 'num_steps': (1, ''), 'log_every_steps': (1, ''),
    'keep_checkpoint_max': (1, ''), 'exports_to_keep': (1, ''),
    'steps_per_loop': (1, ''), 'ps_timeout_secs': (1, ''),
    'grad_accum_steps': (1, ' (1 updates after every batch)'),
}
# What 0 means, for the count flags where it is not simply none.
_ZERO_MEANS = dict.fromkeys(
    ('num_classes', 'image_size', 'eval_steps', 'decay_steps', 'save_checkpoints_steps',
     'eval_batch_size', 'shuffle_buffer_size', 'num_parallel_reads', 'inter_op_threads',
     'intra_op_threads', 'data_threads'), ' (0 means the default)')
_ZERO_MEANS.update(dict.fromkeys(
    ('warmup_steps', 'save_checkpoints_secs', 'eval_every_steps', 'throttle_secs',
     'early_stopping_patience'), ' (0 turns it off)'))


def validate(cfg):
  """Checks every flag of a Config. Raises UserError naming the first bad one."""
  _check_numbers(cfg)
  _check_basics(cfg)
  _check_controls(cfg)
  controls.parse_profile_steps(cfg.profile_steps, cfg.num_steps)
  controls.parse_shifts(cfg.ensemble_shifts)
  check_sequence_flags(cfg)


def _check_numbers(cfg):
  """Every float field finite, every count field in its range: read from the fields
  themselves, so a field added later is checked without being named here."""
  for field in dataclasses.fields(cfg):
    value = getattr(cfg, field.name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    if isinstance(value, float) or field.type is float:
      if not math.isfinite(value):
        raise UserError('--%s=%s is not a finite number: pass a number (its default '
                        'is %s).' % (field.name, value, field.default))
      continue
    minimum, note = _COUNT_MINIMUM.get(
        field.name, (field.metadata.get('minimum', 0), ''))
    if value >= minimum:
      continue
    if minimum == 1 and not note:
      raise UserError('--%s=%s must be positive.' % (field.name, value))
    if minimum == 0:
      note = _ZERO_MEANS.get(field.name, '')
    raise UserError('--%s=%s must be >= %d%s.' % (field.name, value, minimum, note))


def _check_basics(cfg):
  """What every run needs: where to write, what to read, counts in range."""
  if not cfg.model_dir:
    raise UserError('--model_dir is empty: name a directory for checkpoints, events '
                    'and exports, e.g. --model_dir=runs/flowers.')
  if not cfg.train_record_path:
    raise UserError('--train_record_path is empty: pass a glob or comma list of '
                    "TFRecord files, e.g. --train_record_path='data/train-*'.")
  for name in ('clip_gradient_norm', 'clip_gradient_norm_per_variable'):
    if getattr(cfg, name) < 0:
      raise UserError('--%s=%s must be >= 0 (0 does not clip).'
                      % (name, getattr(cfg, name)))
  if cfg.learning_rate < 0:
    raise UserError('--learning_rate=%s must be >= 0.' % cfg.learning_rate)
  if not 0 < cfg.decay_rate <= 1:
    raise UserError('--decay_rate=%s must be in (0, 1].' % cfg.decay_rate)
  if cfg.distribution not in cluster.DISTRIBUTIONS:
    raise UserError('--distribution=%s is not one of %s.'
                    % (cfg.distribution, ', '.join(cluster.DISTRIBUTIONS)))
  if cfg.ignore_missing_vars and not cfg.checkpoint_path:
    raise UserError('--ignore_missing_vars needs --checkpoint_path (it only affects '
                    'warm start).')


def _fail(message):
  raise UserError(message)


def _check_controls(cfg):
  """The optimizer, schedule, checkpoint and early-stopping flags."""
  if cfg.grad_accum_steps > 1 and cfg.steps_per_loop > 1:
    # The in-graph loop counts one global step per batch; accumulation does not.
    _fail('--grad_accum_steps=%d and --steps_per_loop=%d cannot be combined; set one '
          'of them to 1.' % (cfg.grad_accum_steps, cfg.steps_per_loop))
  if cfg.mixed_precision and cfg.grad_accum_steps > 1:
    # The loss scale judges each update's gradients; accumulated ones mix scales.
    _fail('--mixed_precision and --grad_accum_steps=%d cannot be combined; set '
          '--grad_accum_steps=1.' % cfg.grad_accum_steps)
  if cfg.recompute_trunk and cfg.model_name != 'seqnn':
    _fail('--recompute_trunk recomputes the trunk blocks of a sequence model: use it '
          'with --model_name=seqnn, or leave it out for --model_name=%s.'
          % cfg.model_name)
  if cfg.mixed_precision and cfg.steps_per_loop > 1:
    _fail('--mixed_precision and --steps_per_loop=%d cannot be combined; set '
          '--steps_per_loop=1.' % cfg.steps_per_loop)
  if cfg.mixed_precision and cfg.distribution != 'none':
    _fail('--mixed_precision and --distribution=%s cannot be combined: the loss '
          'scale is kept for one process; train in one process without '
          '--distribution.' % cfg.distribution)
  if cfg.skip_corrupt_records and cfg.steps_per_loop > 1:
    # The skipped-record count reads each batch's record numbers outside the loop.
    _fail('--skip_corrupt_records and --steps_per_loop=%d cannot be combined; set '
          '--steps_per_loop=1.' % cfg.steps_per_loop)
  if cfg.optimizer not in controls.OPTIMIZERS:
    _fail('--optimizer=%s is not known; known: %s.' % (cfg.optimizer,
                                                        ', '.join(controls.OPTIMIZERS)))
  schedule = controls.schedule_name(cfg.lr_schedule)
  if schedule not in controls.LR_SCHEDULES:
    _fail('--lr_schedule=%s is not known; known: %s.' % (
        cfg.lr_schedule, ', '.join(controls.LR_SCHEDULE_CHOICES)))
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
  boundaries = controls.parse_list(cfg.lr_boundaries, 'lr_boundaries', int)
  values = controls.parse_list(cfg.lr_values, 'lr_values', float)
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
  if cfg.early_stopping_mode not in controls.EARLY_STOPPING_MODES:
    _fail('--early_stopping_mode=%s is not known; known: %s.' % (
        cfg.early_stopping_mode, ', '.join(controls.EARLY_STOPPING_MODES)))
  if cfg.early_stopping_patience and not cfg.eval_record_path:
    _fail('--early_stopping_patience=%d needs --eval_record_path: patience counts '
          'evaluations, and without evaluation data there are none.'
          % cfg.early_stopping_patience)
  if cfg.early_stopping_metric:  # '' is the model's default, decided in train/plan.py
    controls.metric_direction(cfg.early_stopping_metric, cfg.early_stopping_mode)


def check_sequence_flags(cfg):
  """The sequence models' own flags (also used by the export command)."""
  if cfg.gelu not in controls.GELU_FORMS:
    _fail('--gelu=%s is not known; known: %s (tanh for basenji 0.6 and later and '
          'baskerville, sigmoid for basenji 0.5.1 and earlier).'
          % (cfg.gelu, ', '.join(controls.GELU_FORMS)))
  if cfg.head and not cfg.params_file:
    _fail('--head=%s picks a head of --params_file, which is empty: pass the params '
          'file, or leave --head out.' % cfg.head)
