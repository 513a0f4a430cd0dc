"""basenji's JSON params file: read, check, pick the head, and map onto the Config.

The file is basenji's (or baskerville's) own format, read as data (json, never
executed): a `model` section (seq_length, augment_rc, augment_shift, strand_pair, trunk
= list of blocks, one or more heads `head*` = a block or a list of blocks, and global
keys injected into every block that takes them) and a `train` section (batch_size,
optimizer, learning_rate, loss, ...):

  python -c "
  from estimator_pipeline.config import params
  p = params.load('configs/seqnn_example.json')
  print(params.head_names(p['model']), params.not_applied(p))"

Keys basenji accepts and this pipeline does not use are listed (`not_applied`), never
refused; a misspelled key, a 2D (Akita) block or a recurrent (Saluki) model is one error
naming it. Command-line flags override the train section: train.py passes the flags the
user typed, and a library caller's Config fields that differ from their defaults count
as typed. The blocks are described in params_blocks.py (config/ lies below models/).
"""

import json
import os
import re

from estimator_pipeline.config import controls
from estimator_pipeline.config import params_blocks
from estimator_pipeline.config import transfer
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

PARAMS_FILE = 'params.json'
BLOCKS = params_blocks.BLOCKS
GLOBAL_KEYS = params_blocks.GLOBAL_KEYS

MODEL_KEYS = ('seq_length', 'seq_depth', 'augment_rc', 'augment_shift',
              'strand_pair', 'trunk') + GLOBAL_KEYS + transfer.MODEL_ADAPTER_KEYS
# Model keys basenji takes that change nothing here, and why.
MODEL_NOT_APPLIED = {
    'target_length': "the records' statistics.json decides the number of bins",
    'target_crop': 'a 2D (Akita) setting', 'diagonal_offset': 'a 2D (Akita) setting',
    'verbose': "basenji prints its Keras summary; here: python -m "
               'estimator_pipeline.models --params_file=...',
    'ensemble_rc': 'pass --ensemble_rc', 'ensemble_shifts': 'pass --ensemble_shifts',
}
# Sections basenji has that change nothing here (transfer is applied: transfer.py).
SECTIONS_NOT_APPLIED = {}

# train section key -> Config field. Fields another change adds are applied once
# Config has them; until then the key is reported as not applied.
TRAIN_TO_CONFIG = {
    'batch_size': 'batch_size',
    'optimizer': 'optimizer',
    'learning_rate': 'learning_rate',
    'momentum': 'momentum',
    'adam_beta1': 'adam_beta1',
    'adam_beta2': 'adam_beta2',
    # Keras clipnorm: each variable's gradient on its own; global_clipnorm: all.
    'clip_norm': 'clip_gradient_norm_per_variable',
    'clipnorm': 'clip_gradient_norm_per_variable',
    'global_clipnorm': 'clip_gradient_norm',
    'patience': 'early_stopping_patience',
    'warmup_steps': 'warmup_steps',
    'shuffle_buffer': 'shuffle_buffer_size',
    'decay_steps': 'decay_steps',
    'decay_rate': 'decay_rate',
    'weight_decay': 'weight_decay',
}
# Keys read by the model (its loss), not the Config.
TRAIN_MODEL_KEYS = ('loss', 'total_weight', 'spec_weight', 'weight_range', 'weight_exp')
_EPOCHS = 'counts epochs; the run counts steps: set --num_steps'
_CYCLE = "baskerville's cyclical schedule is not offered; see --lr_schedule"
# Keys basenji has that a step-counted Estimator run cannot take as they are.
TRAIN_UNMAPPABLE = {
    'train_epochs': _EPOCHS, 'train_epochs_min': _EPOCHS, 'train_epochs_max': _EPOCHS,
    'lr_schedule': 'basenji schedules are not read; see --lr_schedule',
    'initial_learning_rate': _CYCLE, 'maximal_learning_rate': _CYCLE,
    'final_learning_rate': _CYCLE, 'train_epochs_cycle1': _CYCLE,
    'agc_clip': 'adaptive gradient clipping is not offered; see --clip_gradient_norm',
}
LOSSES = ('poisson', 'mse', 'bce', 'poisson_mn', 'poisson_kl', 'mse_udot')
# basenji optimizer name -> this project's; basenji's 'sgd' is SGD with momentum (0.99).
OPTIMIZER_NAMES = {'sgd': 'momentum', 'momentum': 'momentum', 'adam': 'adam',
                   'adamw': 'adamw', 'rmsprop': 'rmsprop'}
# Keras' Adam epsilon (basenji's optimizers are Keras'); TF1's is 1e-8.
KERAS_ADAM_EPSILON = 1e-7


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
  choices = params_blocks.CHOICES.get(key)
  if choices is not None and value not in choices:
    raise UserError('%s: %s=%r is not offered; known: %s.' % (
        where, key, value, ', '.join(str(c) for c in choices if c is not None)))


def check_block(block, where):
  """Refuses a block that is not a known block, or has a key its block does not take."""
  if not isinstance(block, dict) or 'name' not in block:
    raise UserError('%s: a block must be an object with a "name"; known names: %s.'
                    % (where, ', '.join(sorted(BLOCKS))))
  name = block['name']
  if name in params_blocks.UNSUPPORTED:
    raise UserError('%s: block %s is not supported: %s.'
                    % (where, name, params_blocks.UNSUPPORTED[name]))
  if name not in BLOCKS:
    raise UserError('%s: unknown block name %r; known: %s.'
                    % (where, name, ', '.join(sorted(BLOCKS))))
  spec = BLOCKS[name]
  where = '%s (%s)' % (where, name)
  accepted = spec.used + spec.ignored
  unknown = [k for k in block if k != 'name' and k not in accepted]
  if unknown:
    _unknown(where, unknown, accepted)
  missing = [k for k in spec.required if k not in block and not (
      k == 'filters_mult or filters_end' and
      ('filters_mult' in block or 'filters_end' in block))]
  if missing:
    raise UserError('%s: missing required key%s %s.'
                    % (where, 's' if len(missing) > 1 else '', ', '.join(missing)))
  for key, value in block.items():
    _check_value(where, key, value)


def head_names(model):
  """The heads of a model section in basenji's order: natural sort of the head* keys
  (the first is the one basenji's SeqNN.model and SeqNN.save use)."""
  def natural(text):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', text)]
  return sorted((k for k in model if k.startswith('head')), key=natural)


def _check_model(model, where):
  if not isinstance(model, dict):
    raise UserError('%s: must be an object.' % where)
  rnn = [k for k in params_blocks.RNN_KEYS if k in model]
  if rnn:
    raise UserError('%s: %s says a recurrent (Saluki) model: recurrent models are not '
                    'supported.' % (where, rnn[0]))
  heads = head_names(model)
  accepted = MODEL_KEYS + tuple(MODEL_NOT_APPLIED)
  unknown = [k for k in model if k not in accepted and k not in heads]
  if unknown:
    _unknown(where, unknown, accepted + ('head', 'head_<name>'))
  for key in ('seq_length', 'trunk'):
    if key not in model:
      raise UserError('%s: missing required key %s.' % (where, key))
  if not heads:
    raise UserError('%s: missing required key head (or head_<name>).' % where)
  if not isinstance(model['trunk'], list):
    raise UserError('%s: trunk must be a list of blocks.' % where)
  for i, block in enumerate(model['trunk']):
    check_block(block, '%s trunk[%d]' % (where, i))
  for head in heads:
    blocks = model[head] if isinstance(model[head], list) else [model[head]]
    for i, block in enumerate(blocks):
      check_block(block, '%s %s[%d]' % (where, head, i))
  for key in GLOBAL_KEYS:
    if key in model:
      _check_value(where, key, model[key])
  if model.get('seq_depth', 4) != 4:
    raise UserError('%s: seq_depth=%r: only DNA (4) is offered.'
                    % (where, model['seq_depth']))
  pairs = model.get('strand_pair', [])
  if not (isinstance(pairs, list) and all(
      isinstance(p, list) and all(isinstance(i, int) and i >= 0 for i in p)
      for p in pairs)):
    raise UserError('%s: strand_pair must be a list (one per head) of lists of target '
                    'indices, e.g. [[1, 0, 2]].' % where)


def _check_train(train, where):
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


def check(params, path='<params>'):
  """Raises UserError naming the file, section, block and key of the first problem."""
  if not isinstance(params, dict):
    raise UserError('%s: expected a JSON object with "model" and "train" sections.'
                    % path)
  sections = ('model', 'train', 'transfer') + tuple(SECTIONS_NOT_APPLIED)
  unknown = [k for k in params if k not in sections]
  if unknown:
    _unknown(path, unknown, sections)
  if 'model' not in params:
    raise UserError('%s: missing required section "model".' % path)
  _check_model(params['model'], _where(path, 'model'))
  _check_train(params.get('train', {}), _where(path, 'train'))
  transfer.check_model(params['model'], _where(path, 'model'))
  if 'transfer' in params:
    transfer.check(params['transfer'], _where(path, 'transfer'))
  transfer.settings(params, path)  # a model-section adapter the transfer contradicts
  if 'activation' not in params['model']:
    # basenji's SeqNN ends the trunk with it, and stops when it is missing.
    raise UserError('%s: missing required key activation (the trunk ends with it, as '
                    'in basenji), e.g. "activation": "relu".' % _where(path, 'model'))
  return params


def select_head(params, head=''):
  """params with the chosen head as model.head (and its strand_pair), the others gone.

  head: a head* key of the model section; '' takes basenji's, the first in natural
  order. Returns (params, the head's key).
  """
  model = params['model']
  heads = head_names(model)
  if head and head not in heads:
    raise UserError('--head=%s names no head of the params file; its heads: %s.'
                    % (head, ', '.join(heads)))
  head = head or heads[0]
  chosen = {k: v for k, v in model.items() if k not in heads}
  chosen['head'] = model[head]
  pairs = model.get('strand_pair', [])
  if pairs:
    index = heads.index(head)
    chosen['strand_pair'] = [pairs[index]] if index < len(pairs) else []
  return dict(params, model=chosen), head


def _block_notes(model):
  """(key, why) of keys typed in blocks that the block takes and does nothing with,
  and of model-level keys a block without **kwargs in basenji does not take."""
  notes, strict = [], {}
  groups = [('trunk', model['trunk'])] + [
      (h, model[h] if isinstance(model[h], list) else [model[h]])
      for h in head_names(model)]
  for group, blocks in groups:
    for i, block in enumerate(blocks):
      spec = BLOCKS[block['name']]
      for key in spec.ignored:
        if key in block:
          notes.append(('model.%s[%d] (%s).%s' % (group, i, block['name'], key),
                        '%s takes it and does nothing with it' % block['name']))
      if not spec.lenient:
        strict.setdefault(block['name'], spec.used + spec.ignored)
  for key in GLOBAL_KEYS:
    refused = sorted(n for n, keys in strict.items() if key not in keys)
    if key != 'batch_norm' and model.get(key) and refused:
      notes.append(('model.%s' % key, 'not given to %s, which do not take it (basenji '
                    'stops there)' % ', '.join(refused)))
  return notes


def not_applied(params):
  """[(key, why)] of the model section and the sections basenji has and this pipeline
  does not use (the train section's are in train_values)."""
  model = params['model']
  notes = [(k, why) for k, why in SECTIONS_NOT_APPLIED.items() if k in params]
  notes += [('model.%s' % k, why) for k, why in MODEL_NOT_APPLIED.items() if k in model]
  return notes + _block_notes(model)


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
    if key == 'decay_rate' and 'decay_steps' not in train:
      skipped.append((key, 'basenji decays only with decay_steps'))
      continue
    field = TRAIN_TO_CONFIG[key]
    if field not in config_fields:
      skipped.append((key, 'no Config field %s yet' % field))
      continue
    applied[field] = OPTIMIZER_NAMES[value] if key == 'optimizer' else value
  optimizer = train.get('optimizer', 'sgd')
  if optimizer == 'sgd' and 'momentum' not in train:
    applied['momentum'] = 0.99  # basenji's SGD default.
  if optimizer in ('adam', 'adamw'):
    applied['adam_epsilon'] = KERAS_ADAM_EPSILON
  if optimizer == 'adamw':
    applied.setdefault('weight_decay', 0.0)  # Keras AdamW's (via basenji) default.
  if 'decay_steps' in train:
    # basenji's ExponentialDecay(staircase=True), decay_rate 0.96 unless given.
    applied.update(lr_schedule='exponential',
                   decay_rate=train.get('decay_rate', 0.96))
  else:
    # basenji trains at a constant rate; the Config's default decays.
    applied['decay_rate'] = 1.0
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
  if 'early_stopping_patience' in applied and not cfg.eval_record_path:
    applied.pop('early_stopping_patience')
    skipped.append(('patience', 'patience counts evaluations; --eval_record_path is '
                    'empty'))
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
