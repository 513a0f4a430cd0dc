"""What train_lib needs for sequence models: records + params -> one checked plan.

preflight reads the params file and the first record of the training and evaluation
files, decides the record layout (statistics.json when present, else byte lengths and
the params), builds the model's graph once to learn its target length and variables,
and reports every mismatch as one line naming the file and both lengths:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config, train_lib
  print(train_lib.preflight(config.Config(model_name='seqnn',
      params_file='configs/seqnn_example.json', model_dir='runs/x',
      train_record_path='data/tfrecords/train-*.tfr')).sequence)"
"""

import copy
import dataclasses
import os
from typing import List, Optional, Tuple

import tensorflow as tf

from estimator_pipeline import input_fn as input_lib
from estimator_pipeline import sequence_records
from estimator_pipeline import seqnn_params
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message
from export import serving

TARGETS_FILE = 'targets.txt'


@dataclasses.dataclass
class SequencePlan:
  layout: sequence_records.SequenceLayout
  params: dict  # the resolved params file (model section as built, train section)
  augment_rc: bool
  augment_shift: int
  loss: str
  target_names: Optional[Tuple[str, ...]]
  notices: List[str] = dataclasses.field(default_factory=list)

  @property
  def num_targets(self):
    return self.layout.num_targets

  def model_params(self, cfg):
    shifts = parse_shifts(cfg.ensemble_shifts)
    return {'params': self.params['model'], 'loss': self.loss,
            'ensemble_rc': cfg.ensemble_rc, 'ensemble_shifts': shifts,
            'target_names': self.target_names}


def parse_shifts(text):
  try:
    shifts = tuple(int(s) for s in str(text).split(',') if s.strip())
  except ValueError:
    raise UserError('--ensemble_shifts=%s must be comma-separated integers, e.g. '
                    '-1,0,1.' % text)
  return shifts or (0,)


def _augment_shift(value, path):
  if isinstance(value, list):  # newer basenji lists the shifts themselves
    value = max(abs(int(v)) for v in value) if value else 0
  if not isinstance(value, int) or value < 0:
    raise UserError('%s model: augment_shift=%r must be a non-negative integer.'
                    % (path, value))
  return value


def build_graph(spec, num_targets, model_params, seq_length):
  """Builds the model on [1, L, 4] in a throw-away graph.

  Returns ((target_length, units), {variable: shape}, trainable names).
  """
  with tf.Graph().as_default():
    sequence = tf.compat.v1.placeholder(tf.float32, [1, seq_length, 4])
    try:
      model = spec.build(is_training=True, num_classes=num_targets, **model_params)
      preds = model.predict(model.preprocess({'sequence': sequence}))['predictions']
    except (ValueError, TypeError) as e:
      raise UserError('--params_file: the model cannot be built for %d bp (%s).'
                      % (seq_length, short_tf_message(e)))
    if preds.shape.rank != 3:
      raise UserError('--params_file: the head gives predictions of shape %s; a '
                      'sequence model must give [batch, length, targets].'
                      % preds.shape.as_list())
    variables = {v.op.name: v.shape.as_list()
                 for v in tf.compat.v1.global_variables()}
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    return (int(preds.shape[1]), int(preds.shape[2])), variables, trainable


def _last_units_block(model):
  head = model['head'] if isinstance(model['head'], list) else [model['head']]
  for block in reversed(head):
    if 'units' in block:
      return block
  return None


def read_target_names(record_file):
  """The identifiers of basenji's targets.txt beside the records, or None."""
  here = os.path.dirname(record_file)
  for directory in (here, os.path.dirname(here)):
    path = os.path.join(directory, TARGETS_FILE)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        rows = [line.rstrip('\n').split('\t') for line in f if line.strip()]
      if not rows:
        return None
      header = rows[0]
      column = header.index('identifier') if 'identifier' in header else 0
      return tuple(r[column] if column < len(r) else str(i)
                   for i, r in enumerate(rows[1:]))
  return None


def prepare(cfg, spec, train_files, eval_files):
  """-> (SequencePlan, variables, trainable names). Raises UserError; writes nothing."""
  params = copy.deepcopy(seqnn_params.load(cfg.params_file))
  path = cfg.params_file
  model = params['model']
  train = params.setdefault('train', {})
  notices = []
  shape = sequence_records.inspect_record(train_files[0])
  stats_path, stats = sequence_records.read_statistics(train_files[0])
  if stats is not None:
    layout = sequence_records.layout_from_statistics(stats_path, stats, shape)
  else:
    candidates = sequence_records.sequence_candidates(shape)
    chosen = [c for c in candidates if c[0] == model['seq_length']] or candidates[:1]
    seq_length, seq_1hot = chosen[0]
    layout = None
  seq_length = layout.seq_length if layout else seq_length
  if model['seq_length'] != seq_length:
    notices.append('%s: seq_length %d, but the records hold %d bp; the model is built '
                   'for %d (its convolutions take any length).'
                   % (path, model['seq_length'], seq_length, seq_length))
    model['seq_length'] = seq_length
  loss = train.get('loss', 'poisson')
  plan_args = dict(params=params, loss=loss, target_names=None,
                   augment_rc=bool(model.get('augment_rc', False)),
                   augment_shift=_augment_shift(model.get('augment_shift', 0), path))

  def model_params():
    return SequencePlan(layout=layout, notices=notices,
                        **plan_args).model_params(cfg)

  (target_length, units), variables, trainable = build_graph(
      spec, 1, model_params(), seq_length)
  if layout is None:
    if target_length <= 0 or shape.target_values % target_length:
      raise UserError(
          '%s: target holds %d values, which is not a multiple of the %d bins the '
          'model predicts for %d bp (--params_file=%s): check the pooling in the '
          'params against the records.' % (shape.path, shape.target_values,
                                           target_length, seq_length, path))
    layout = sequence_records.SequenceLayout(
        seq_length=seq_length, seq_1hot=seq_1hot, target_length=target_length,
        num_targets=shape.target_values // target_length,
        target_bytes=shape.target_bytes)
  elif layout.target_length != target_length:
    raise UserError(
        '--params_file=%s predicts %d bins for %d bp, but %s says target_length %d: '
        'change the pooling or cropping in the params to match the records.'
        % (path, target_length, seq_length, stats_path, layout.target_length))
  if cfg.num_classes and cfg.num_classes != layout.num_targets:
    raise UserError('--num_classes=%d, but the records hold %d targets: leave '
                    '--num_classes at 0 for sequence models.'
                    % (cfg.num_classes, layout.num_targets))
  if units != layout.num_targets:
    block = _last_units_block(model)
    if block is None:
      raise UserError('%s head gives %d outputs per bin, but the records hold %d '
                      'targets: end the head with a final block of units=%d.'
                      % (path, units, layout.num_targets, layout.num_targets))
    notices.append('%s: head %s units %d, but the records hold %d targets; the head '
                   'is built with %d.' % (path, block['name'], units,
                                          layout.num_targets, layout.num_targets))
    block['units'] = layout.num_targets
    _, variables, trainable = build_graph(spec, layout.num_targets, model_params(),
                                          seq_length)
  for eval_file in (eval_files or [])[:1]:
    sequence_records.check_record(layout, sequence_records.inspect_record(eval_file),
                                  'the training records (%s)' % train_files[0])
  names = read_target_names(train_files[0])
  if names and len(names) != layout.num_targets:
    names = None
  plan_args['target_names'] = names
  return SequencePlan(layout=layout, notices=notices, **plan_args), variables, trainable


def input_fns(cfg, seq_plan, train_files, eval_files, default_input_context=None):
  """(train input_fn, eval input_fn or None) over ZLIB basenji records.

  default_input_context: the worker's split in classic between-graph training (see
  input_fn.make_input_fn).
  """
  parse_train = input_lib.make_sequence_parse_fn(
      seq_plan.layout, is_training=True, augment_rc=seq_plan.augment_rc,
      augment_shift=seq_plan.augment_shift, seed=cfg.seed)
  train = input_lib.make_input_fn(
      train_files, is_training=True, batch_size=cfg.batch_size,
      parse_fn=parse_train, compression_type=sequence_records.COMPRESSION,
      shuffle_buffer_size=cfg.shuffle_buffer_size,
      num_parallel_reads=cfg.num_parallel_reads, seed=cfg.seed,
      default_input_context=default_input_context)
  evaluate = None
  if eval_files:
    parse_eval = input_lib.make_sequence_parse_fn(seq_plan.layout, is_training=False)
    evaluate = input_lib.make_input_fn(
        eval_files, is_training=False, batch_size=cfg.effective_eval_batch_size,
        parse_fn=parse_eval, compression_type=sequence_records.COMPRESSION,
        num_parallel_reads=cfg.num_parallel_reads)
  return train, evaluate


def serving_input_fn(seq_plan):
  return serving.make_sequence_receiver_fn(seq_plan.layout.seq_length)
