"""basenji's JSON params file: read, check, and map onto the run's Config.

The file is basenji's own format, read as data (json, never executed): a `model`
section (seq_length, augment_rc, augment_shift, trunk = list of blocks, head = a block
or a list of blocks, and global keys injected into every block that takes them) and a
`train` section (batch_size, optimizer, learning_rate, ...):

  python -c "
  from estimator_pipeline.config import params
  print(params.load('configs/seqnn_example.json')['model']['trunk'][0])"

Command-line flags override the file: train.py passes the flags the user typed, and a
library caller's Config fields that differ from their defaults count as typed.

The block functions it checks against live in models/seqnn/blocks.py and are described
here by their accepted keys only (config/ lies below models/).
"""

import json
import os

from estimator_pipeline.config import controls
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

PARAMS_FILE = 'params.json'

# Keys basenji injects from the model section into every block that takes them.
GLOBAL_KEYS = ('activation', 'batch_norm', 'bn_momentum', 'norm_type', 'l2_scale',
               'l1_scale', 'padding', 'kernel_initializer')

MODEL_KEYS = ('seq_length', 'seq_depth', 'target_length', 'augment_rc', 'augment_shift',
              'trunk', 'head', 'verbose') + GLOBAL_KEYS

ACTIVATIONS = ('relu', 'gelu', 'softplus', 'sigmoid', 'linear', 'exp', 'tanh')
NORM_TYPES = ('batch', 'layer')
INITIALIZERS = ('he_normal', 'he_uniform', 'glorot_normal', 'glorot_uniform',
                'lecun_normal', 'lecun_uniform')

_CONV = ('filters', 'kernel_size', 'activation', 'activation_end', 'stride',
         'dilation_rate', 'l2_scale', 'dropout', 'conv_type', 'pool_size', 'pool_type',
         'norm_type', 'bn_momentum', 'norm_gamma', 'residual', 'kernel_initializer',
         'padding')
_NAC = ('filters', 'kernel_size', 'activation', 'stride', 'dilation_rate', 'l2_scale',
        'dropout', 'conv_type', 'residual', 'pool_size', 'pool_type', 'norm_type',
        'bn_momentum', 'norm_gamma', 'kernel_initializer', 'padding')
_TOWER = ('filters_init', 'filters_end', 'filters_mult', 'divisible_by', 'repeat')

# Block name -> (accepted keys, required keys). The semantics are basenji's
# basenji/blocks.py; seqnn_blocks.py implements them under the same names.
BLOCKS = {
    'conv_block': (_CONV, ()),
    'conv_nac': (_NAC, ()),
    'conv_dna': (('filters', 'kernel_size', 'activation', 'stride', 'l2_scale',
                  'residual', 'dropout', 'dropout_residual', 'pool_size', 'pool_type',
                  'norm_type', 'bn_momentum', 'norm_gamma', 'use_bias', 'conv_type',
                  'kernel_initializer', 'padding'), ()),
    'conv_tower': (tuple(k for k in _CONV if k != 'filters') + _TOWER,
                   ('filters_init',)),
    'res_tower': (tuple(k for k in _NAC if k != 'filters') + _TOWER + ('num_convs',),
                  ('filters_init',)),
    'dilated_residual': (tuple(k for k in _CONV if k != 'dilation_rate') +
                         ('rate_mult', 'repeat', 'round'), ('filters',)),
    'dense_block': (('units', 'activation', 'activation_end', 'flatten', 'dropout',
                     'l2_scale', 'l1_scale', 'residual', 'norm_type', 'bn_momentum',
                     'norm_gamma', 'kernel_initializer'), ()),
    'final': (('units', 'activation', 'flatten', 'kernel_initializer', 'l2_scale',
               'l1_scale'), ('units',)),
    'dense': (('units', 'activation', 'kernel_initializer', 'l2_scale', 'l1_scale'),
              ('units',)),
    'Cropping1D': (('cropping',), ('cropping',)),
    'center_slice': (('center',), ('center',)),
}

# train section key -> Config field. Fields another change adds (adam_beta1, ...) are
# applied once Config has them; until then the key is reported as not applied.
TRAIN_TO_CONFIG = {
    'batch_size': 'batch_size',
    'optimizer': 'optimizer',
    'learning_rate': 'learning_rate',
    'momentum': 'momentum',
    'adam_beta1': 'adam_beta1',
    'adam_beta2': 'adam_beta2',
    'clip_norm': 'clip_gradient_norm',
    'global_clipnorm': 'clip_gradient_norm',
    'patience': 'early_stopping_patience',
    'warmup_steps': 'warmup_steps',
}
# Keys read by the model, not the Config.
TRAIN_MODEL_KEYS = ('loss',)
# Keys basenji has that a step-counted Estimator run cannot take as they are.
TRAIN_UNMAPPABLE = {
    'train_epochs': 'counts epochs; the run counts steps: set --num_steps',
    'train_epochs_min': 'counts epochs; the run counts steps: set --num_steps',
    'train_epochs_max': 'counts epochs; the run counts steps: set --num_steps',
    'lr_schedule': 'basenji schedules are not read; see --decay_steps/--decay_rate',
    'initial_learning_rate': 'basenji schedules are not read; use learning_rate',
    'decay_steps': 'basenji schedules are not read; set --decay_steps',
    'decay_rate': 'basenji schedules are not read; set --decay_rate',
    'spec_weight': 'only used by basenji poisson_mn loss, which is not offered',
    'total_weight': 'only used by basenji poisson_mn loss, which is not offered',
}
LOSSES = ('poisson', 'mse', 'bce')
# basenji optimizer name -> this project's; basenji's 'sgd' is SGD with momentum (0.99).
OPTIMIZER_NAMES = {'sgd': 'momentum', 'momentum': 'momentum', 'adam': 'adam',
                   'adamw': 'adamw', 'rmsprop': 'rmsprop'}


def _where(path, section=None):
  return '%s%s' % (path, (' ' + section) if section else '')


def loads(text, path='<params>'):
  """JSON text -> dict, checked; errors name path, line and column."""
  try:
    params = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError('--params_file=%s line %d column %d: %s: fix the JSON syntax.'
                    % (path, e.lineno, e.colno, e.msg))
  check(params, path)
  return params


def load(path):
  """Reads and checks a params file (see check)."""
  if not path:
    raise UserError('--params_file is empty: --model_name=seqnn needs basenji\'s JSON '
                    'params file, e.g. --params_file=configs/seqnn_example.json.')
  if not os.path.isfile(path):
    raise UserError('--params_file=%s does not exist.' % path)
  with open(path) as f:
    return loads(f.read(), path)


def _unknown(where, keys, accepted):
  raise UserError('%s: unknown key%s %s; accepted: %s.' % (
      where, 's' if len(keys) > 1 else '', ', '.join(sorted(keys)),
      ', '.join(sorted(accepted))))


def _check_value(where, key, value):
  if key in ('activation', 'activation_end') and value not in ACTIVATIONS:
    raise UserError('%s: %s=%r is not known; known: %s.'
                    % (where, key, value, ', '.join(ACTIVATIONS)))
  if key == 'norm_type' and value not in NORM_TYPES + (None,):
    raise UserError('%s: norm_type=%r is not known; known: %s.'
                    % (where, value, ', '.join(NORM_TYPES)))
  if key == 'kernel_initializer' and value not in INITIALIZERS:
    raise UserError('%s: kernel_initializer=%r is not known; known: %s.'
                    % (where, value, ', '.join(INITIALIZERS)))
  if key == 'conv_type' and value != 'standard':
    raise UserError('%s: conv_type=%r is not offered; only "standard".' % (where, value))
  if key == 'pool_type' and value != 'max':
    raise UserError('%s: pool_type=%r is not offered; only "max".' % (where, value))


def check_block(block, where):
  if not isinstance(block, dict) or 'name' not in block:
    raise UserError('%s: a block must be an object with a "name"; known names: %s.'
                    % (where, ', '.join(sorted(BLOCKS))))
  name = block['name']
  if name not in BLOCKS:
    raise UserError('%s: unknown block name %r; known: %s.'
                    % (where, name, ', '.join(sorted(BLOCKS))))
  accepted, required = BLOCKS[name]
  where = '%s (%s)' % (where, name)
  unknown = [k for k in block if k != 'name' and k not in accepted]
  if unknown:
    _unknown(where, unknown, accepted)
  missing = [k for k in required if k not in block]
  if name == 'conv_tower' or name == 'res_tower':
    if 'filters_mult' not in block and 'filters_end' not in block:
      missing.append('filters_mult or filters_end')
  if missing:
    raise UserError('%s: missing required key%s %s.'
                    % (where, 's' if len(missing) > 1 else '', ', '.join(missing)))
  for key, value in block.items():
    _check_value(where, key, value)


def check(params, path='<params>'):
  """Raises UserError naming the file, section, block and key of the first problem."""
  if not isinstance(params, dict):
    raise UserError('%s: expected a JSON object with "model" and "train" sections.'
                    % path)
  unknown = [k for k in params if k not in ('model', 'train')]
  if unknown:
    _unknown(path, unknown, ('model', 'train'))
  if 'model' not in params:
    raise UserError('%s: missing required section "model".' % path)
  model = params['model']
  where = _where(path, 'model')
  if not isinstance(model, dict):
    raise UserError('%s: must be an object.' % where)
  heads = [k for k in model if k.startswith('head') and k != 'head']
  if heads:
    raise UserError('%s: several heads (%s) are not offered; give one "head".'
                    % (where, ', '.join(sorted(heads))))
  unknown = [k for k in model if k not in MODEL_KEYS]
  if unknown:
    _unknown(where, unknown, MODEL_KEYS)
  for key in ('seq_length', 'trunk', 'head'):
    if key not in model:
      raise UserError('%s: missing required key %s.' % (where, key))
  if not isinstance(model['trunk'], list):
    raise UserError('%s: trunk must be a list of blocks.' % where)
  for i, block in enumerate(model['trunk']):
    check_block(block, '%s trunk[%d]' % (where, i))
  head = model['head'] if isinstance(model['head'], list) else [model['head']]
  for i, block in enumerate(head):
    check_block(block, '%s head[%d]' % (where, i))
  for key in GLOBAL_KEYS:
    if key in model:
      _check_value(where, key, model[key])
  if model.get('seq_depth', 4) != 4:
    raise UserError('%s: seq_depth=%r: only DNA (4) is offered.'
                    % (where, model['seq_depth']))
  train = params.get('train', {})
  where = _where(path, 'train')
  if not isinstance(train, dict):
    raise UserError('%s: must be an object.' % where)
  accepted = set(TRAIN_TO_CONFIG) | set(TRAIN_MODEL_KEYS) | set(TRAIN_UNMAPPABLE)
  unknown = [k for k in train if k not in accepted]
  if unknown:
    _unknown(where, unknown, accepted)
  if train.get('loss', 'poisson') not in LOSSES:
    raise UserError('%s: loss=%r is not offered; known: %s.'
                    % (where, train['loss'], ', '.join(LOSSES)))
  if 'optimizer' in train and train['optimizer'] not in OPTIMIZER_NAMES:
    raise UserError('%s: optimizer=%r is not known; known: %s.'
                    % (where, train['optimizer'], ', '.join(sorted(OPTIMIZER_NAMES))))
  return params


def train_values(params, config_fields):
  """-> (applied {field: value}, not applied [(key, why)]) from the train section."""
  train = params.get('train', {})
  applied, skipped = {}, []
  for key, value in train.items():
    if key in TRAIN_MODEL_KEYS:
      continue
    if key in TRAIN_UNMAPPABLE:
      skipped.append((key, TRAIN_UNMAPPABLE[key]))
      continue
    field = TRAIN_TO_CONFIG[key]
    if field not in config_fields:
      skipped.append((key, 'no Config field %s yet' % field))
      continue
    if key == 'optimizer':
      value = OPTIMIZER_NAMES[value]
    applied[field] = value
  if train.get('optimizer') == 'sgd' and 'momentum' not in train:
    applied['momentum'] = 0.99  # basenji's SGD default.
  # basenji trains at a constant rate; the Config's default decays.
  applied.setdefault('decay_rate', 1.0)
  return applied, skipped


def resolve_config(cfg, explicit=None):
  """Applies the params file's train section to cfg where the user set no flag.

  Args:
    cfg: a config.Config with params_file set (else it is returned unchanged).
    explicit: names of the flags the user typed; None counts every field that differs
      from its default as typed (library callers).

  Returns:
    (cfg, params, skipped): the resolved Config, the checked params dict (None without
    a file) and the train keys not applied, as (key, why) pairs.
  """
  if not getattr(cfg, 'params_file', ''):
    return cfg, None, []
  params = load(cfg.params_file)
  fields = set(cfg.field_names())
  if explicit is None:
    explicit = {f for f in fields if getattr(cfg, f) != cfg.default(f)}
  applied, skipped = train_values(params, fields)
  changes = {k: v for k, v in applied.items() if k in fields and k not in explicit}
  if 'optimizer' in changes and changes['optimizer'] not in controls.OPTIMIZERS:
    skipped.append(('optimizer', 'optimizer %r is not offered yet'
                    % changes.pop('optimizer')))
  return cfg.replace(**changes), params, skipped


def save(params, model_dir):
  """Writes the resolved params to model_dir/params.json (atomically)."""
  return files.atomic_write(os.path.join(model_dir, PARAMS_FILE),
                            json.dumps(params, indent=2, sort_keys=True) + '\n')


def load_resolved(model_dir):
  """The params a run resolved and saved in model_dir/params.json, or None."""
  path = os.path.join(model_dir, PARAMS_FILE)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return loads(f.read(), path)
