"""The training controls' names and choices, and the parsers of their list flags.

Plain Python: flags/ lists the choices from here, checks.py refuses what is not among
them, and models/optimization.py builds what they name:

  python -c "
  from estimator_pipeline.config import controls
  print(controls.OPTIMIZERS, controls.metric_direction('pearsonr'))"
"""

from estimator_pipeline.core.errors import UserError

OPTIMIZERS = ('sgd', 'momentum', 'rmsprop', 'adam', 'adamw')

# tf-models-official's names ('stepwise', 'constant') and slim's ('fixed') are
# accepted beside ours, so a name from either documentation works.
LR_SCHEDULES = ('constant', 'exponential', 'piecewise', 'polynomial', 'cosine')
LR_SCHEDULE_ALIASES = {'fixed': 'constant', 'stepwise': 'piecewise'}
LR_SCHEDULE_CHOICES = LR_SCHEDULES + tuple(sorted(LR_SCHEDULE_ALIASES))

EARLY_STOPPING_MODES = ('auto', 'min', 'max')

# --gelu: how a sequence model computes gelu. basenji 0.6 and later, and baskerville,
# use the tanh form; basenji 0.5.1 and earlier x * sigmoid(1.702 x).
GELU_FORMS = ('tanh', 'sigmoid')

# AdamW's decoupled weight decay when --weight_decay is left negative (PyTorch's and
# Loshchilov & Hutter's default).
ADAMW_DEFAULT_WEIGHT_DECAY = 0.01

# --early_stopping_mode=auto: higher is better for these metric names, lower for the
# rest of the known ones; anything else needs an explicit direction.
_HIGHER_IS_BETTER = ('accuracy', 'auc', 'auroc', 'auprc', 'precision', 'recall',
                     'pearson', 'pearsonr', 'r2', 'f1', 'iou', 'map', 'correlation',
                     'spearman')
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


def parse_profile_steps(text, num_steps=None):
  """'100,110' -> (100, 110); '' -> None. UserError names the flag when it is wrong."""
  text = (text or '').strip()
  if not text:
    return None
  parts = [p.strip() for p in text.split(',')]
  try:
    if len(parts) != 2:
      raise ValueError(text)
    start, end = int(parts[0]), int(parts[1])
  except ValueError:
    raise UserError('--profile_steps=%s is not two steps: pass FIRST,LAST, e.g. '
                    '--profile_steps=100,110.' % text) from None
  if start < 0 or end <= start:
    raise UserError('--profile_steps=%s must be FIRST,LAST with 0 <= FIRST < LAST, e.g. '
                    '--profile_steps=100,110.' % text)
  if num_steps is not None and end > num_steps:
    raise UserError('--profile_steps=%s ends past --num_steps=%d: profile earlier '
                    'steps or train longer.' % (text, num_steps))
  return start, end


def parse_shifts(text):
  """--ensemble_shifts '-1,0,1' -> (-1, 0, 1); empty means (0,), no shift."""
  try:
    shifts = tuple(int(s) for s in str(text).split(',') if s.strip())
  except ValueError:
    raise UserError('--ensemble_shifts=%s must be comma-separated integers, e.g. '
                    '-1,0,1.' % text) from None
  return shifts or (0,)
