"""The sequence task: basenji records, a params file, SeqNN and its DNA signatures.

  python train.py --model_name=seqnn --params_file=params.json --model_dir=runs/cage \
      --train_record_path='data/tfrecords/train-*.tfr' \
      --eval_record_path='data/tfrecords/valid-*.tfr'

Preflight reads the params file and the first record of the training and evaluation
files, decides the record layout (statistics.json when present, else byte lengths and
the params), builds the model's graph once to learn its target length, variables and
metrics (a second time only when the head is refit to the records' targets), and
reports every mismatch as one line naming the file and both lengths. The records are
the truth about the sequence length and the number of targets: a params file written
for another data set is built for these records, and the console says so.
The params file's head is --head (basenji's first head by default); keys basenji takes
and this pipeline does not use are listed once, as notes. Weights of basenji's and
baskerville's Keras .h5 files become a checkpoint of this graph (import_weights).
"""

import copy
import dataclasses
import json
import os
from typing import Optional, Tuple

import tensorflow as tf

from estimator_pipeline.config import controls
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.data import sequence_parse
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.models.seqnn import report
from estimator_pipeline.models.seqnn import weights
from estimator_pipeline.records import sequence_format
from estimator_pipeline.train.tasks import base


@dataclasses.dataclass(frozen=True)
class SequenceData:
  layout: Optional[sequence_format.SequenceLayout]
  params: dict  # the resolved params file (model section as built, train section)
  augment_rc: bool
  augment_shift: int
  loss: str
  target_names: Optional[Tuple[str, ...]] = None
  notices: Tuple[str, ...] = ()
  # The head's strand_pair: the target each target becomes on the other strand.
  strand_pair: Optional[Tuple[int, ...]] = None


class SequenceTask(base.Task):
  """Sequence-to-coverage regression (or bce classification) on basenji records."""

  layout = 'sequence'
  reads_params_file = True

  def apply_params_file(self, cfg, explicit=None):
    return params_lib.resolve_config(cfg, explicit=explicit)

  def prepare(self, cfg, spec, train_files, eval_files, params=None):
    params = _params_with_head(cfg, params)
    model = params['model']
    layout, seq_length, seq_1hot, stats_path = _layout_from_records(train_files[0],
                                                                    params)
    data = _data(cfg, params)
    notices = list(data.notices)
    if model['seq_length'] != seq_length:
      notices.append(
          '%s: seq_length %d, but the records hold %d bp; the model is built for %d '
          '(its convolutions take any length).' % (
              cfg.params_file, model['seq_length'], seq_length, seq_length))
      model['seq_length'] = seq_length
    facts, (target_length, units) = _build(cfg, spec, data)
    if layout is None:
      layout = _layout_from_bins(train_files[0], cfg.params_file, seq_length, seq_1hot,
                                 target_length)
    elif layout.target_length != target_length:
      raise UserError(
          '--params_file=%s predicts %d bins for %d bp, but %s says target_length %d: '
          'change the pooling or cropping in the params to match the records.'
          % (cfg.params_file, target_length, seq_length, stats_path,
             layout.target_length))
    num_targets = layout.num_targets
    if cfg.num_classes and cfg.num_classes != num_targets:
      raise UserError('--num_classes=%d, but the records hold %d targets: leave '
                      '--num_classes at 0 for sequence models.'
                      % (cfg.num_classes, num_targets))
    if units != num_targets:
      _fit_head(cfg.params_file, model, units, num_targets, notices)
      # The head's last variables take the new units: the one build that changes.
      facts, _ = _build(cfg, spec, data)
    for eval_file in (eval_files or [])[:1]:
      sequence_format.check_record(layout, sequence_format.inspect_record(eval_file),
                                   'the training records (%s)' % train_files[0])
    names = sequence_format.target_names(train_files[0])
    return _prepared(cfg, num_targets, facts, dataclasses.replace(
        data, layout=layout, notices=tuple(notices),
        target_names=names if names and len(names) == num_targets else None,
        strand_pair=_strand_pair(cfg.params_file, model, num_targets)))

  def prepare_export(self, cfg, spec, model_dir, scratch):
    """From model_dir's params.json, or without a model_dir from --params_file (and
    --head): the head's units are the number of targets."""
    del scratch
    params = params_lib.load_resolved(model_dir) if model_dir else None
    if params is None and model_dir:
      raise UserError('--model_dir=%s holds no %s: train it with this version of the '
                      'pipeline, or re-run train.py once to write it.'
                      % (model_dir, params_lib.PARAMS_FILE))
    if params is None:
      params = _params_with_head(cfg)
    data = _data(cfg, params)
    facts, (target_length, units) = _build(cfg, spec, data)
    return _prepared(cfg, units, facts, dataclasses.replace(
        data, layout=sequence_format.SequenceLayout(
            seq_length=params['model']['seq_length'], seq_1hot=False,
            target_length=target_length, num_targets=units, target_bytes=True),
        strand_pair=_strand_pair(cfg.params_file, params['model'], units)))

  def prepare_evaluation(self, cfg, spec, model_dir, files, scratch):
    """The records' layout (statistics.json, else their byte lengths and the model's
    bins), which must be the trained model's length and targets."""
    found = self.prepare_export(cfg, spec, model_dir, scratch)
    model = found.data.layout
    layout = records_layout(files, model.seq_length, model.target_length,
                            model.num_targets, 'the model of --model_dir=%s' % model_dir)
    names = sequence_format.target_names(files[0])
    data = dataclasses.replace(
        found.data, layout=layout,
        target_names=names if names and len(names) == model.num_targets else None)
    return dataclasses.replace(found, data=data, model_params=model_params(cfg, data))

  def test_report(self, plan, test_files):
    return report.SequenceReport(plan.num_classes, plan.data.loss == 'bce', test_files)

  def default_metric(self, plan):
    return _default_metric(plan.data)

  def import_weights(self, plan, path, directory, exclude_scopes=(),
                     ignore_missing=False, flag='--checkpoint_path'):
    """basenji's or baskerville's .h5 -> a checkpoint of this graph under directory.

    Returns (checkpoint prefix, {checkpoint name: variable name}, skipped variables).
    """
    with tf.Graph().as_default() as graph:
      sequence = tf.compat.v1.placeholder(
          tf.float32, [1, plan.data.params['model']['seq_length'], 4])
      model = plan.spec.build(is_training=False, num_classes=plan.num_classes,
                              **plan.model_params)
      model.predict(model.preprocess({'sequence': sequence}))
      model_layers = weights.model_layers(graph)
    h5 = weights.H5Weights(path, flag)
    try:
      mapping, skipped = weights.match(model_layers, h5, exclude_scopes,
                                       ignore_missing)
      prefix = weights.write_checkpoint(
          h5, mapping, os.path.join(directory, os.path.basename(path) + '.ckpt'))
    finally:
      h5.close()
    return prefix, {name: name for name in mapping}, tuple(skipped)

  def parse_fns(self, plan, is_training):
    data = plan.data
    if not is_training:
      return {'parse_fn': sequence_parse.make_sequence_parse_fn(data.layout,
                                                               is_training=False)}
    return {'parse_fn': sequence_parse.make_sequence_parse_fn(
        data.layout, is_training=True, augment_rc=data.augment_rc,
        augment_shift=data.augment_shift, seed=plan.config.seed,
        strand_pair=data.strand_pair)}

  def record_checker(self, plan):
    return self.record_format.checker(layout=plan.data.layout)

  def serving_params(self, plan):
    return {'seq_length': plan.data.layout.seq_length}

  def export_assets(self, plan, directory):
    """The warm-up requests and the model's strand pairs (network.STRAND_PAIR_ASSET),
    which analysis commands swap when they average reverse complements around the
    export."""
    assets = super().export_assets(plan, directory)
    path = os.path.join(directory, network.STRAND_PAIR_ASSET)
    pairs = plan.data.strand_pair
    files.atomic_write(path, json.dumps({
        'strand_pair': list(pairs) if pairs else None,
        'num_targets': plan.data.layout.num_targets}) + '\n')
    return dict(assets, **{network.STRAND_PAIR_ASSET: path})

  def write_run_files(self, plan, exports):
    del exports
    params_lib.save(plan.data.params, plan.config.model_dir)
    return ['note: ' + notice for notice in plan.data.notices]


def model_params(cfg, data):
  """The keyword arguments a SeqNN is built with."""
  train = data.params.get('train', {})
  return {'params': data.params['model'], 'loss': data.loss,
          'loss_params': {k: train[k] for k in params_lib.TRAIN_MODEL_KEYS
                          if k != 'loss' and k in train},
          'gelu': cfg.gelu, 'ensemble_rc': cfg.ensemble_rc,
          'ensemble_shifts': controls.parse_shifts(cfg.ensemble_shifts),
          'target_names': data.target_names}


def _default_metric(data):
  """basenji's trainer keeps the model of the best validation Pearson R (AUROC with
  a bce loss)."""
  return 'auroc' if data.loss == 'bce' else 'pearsonr'


def _prepared(cfg, num_targets, facts, data):
  return base.Prepared(num_classes=num_targets, image_size=0, data=data,
                       model_params=model_params(cfg, data), variables=facts.variables,
                       trainable=facts.trainable, metric_names=facts.metric_names,
                       default_metric=_default_metric(data))


def _build(cfg, spec, data):
  """(ModelFacts, (target_length, units)) of the model of data.params as it is now,
  built on [1, seq_length, 4]; its labels take the predictions' shape."""
  seq_length = data.params['model']['seq_length']

  def labels(prediction):
    preds = prediction['predictions']
    if preds.shape.rank != 3:
      raise UserError('--params_file: the head gives predictions of shape %s; a '
                      'sequence model must give [batch, length, targets].'
                      % preds.shape.as_list())
    return tf.float32, preds.shape

  try:
    # The number of targets, not yet known, changes no variable and no metric name.
    facts = base.inspect_model(spec, 1, model_params(cfg, data),
                               {'sequence': (tf.float32, [1, seq_length, 4])}, labels)
  except (ValueError, TypeError) as e:
    raise UserError('--params_file: the model cannot be built for %d bp (%s).'
                    % (seq_length, short_tf_message(e)))
  _, target_length, units = facts.predictions['predictions']
  return facts, (int(target_length), int(units))


def _params_with_head(cfg, params=None):
  """The params file (params: as already read, else read now) with --head's head
  (basenji's first by default) as its head: a copy the task may change."""
  params, _ = params_lib.select_head(
      params if params is not None else params_lib.load(cfg.params_file), cfg.head)
  return copy.deepcopy(params)


def _data(cfg, params):
  """What the params say, before the records have been read (no layout yet)."""
  model = params['model']
  notices = ['%s %s is not applied (%s).' % (cfg.params_file, key, why)
             for key, why in params_lib.not_applied(params)]
  return SequenceData(
      layout=None, params=params, loss=params.setdefault('train', {}).get(
          'loss', 'poisson'),
      augment_rc=bool(model.get('augment_rc', False)),
      augment_shift=_augment_shift(model.get('augment_shift', 0), cfg.params_file),
      notices=tuple(notices))


def _strand_pair(params_file, model, num_targets):
  """The head's strand_pair as a tuple, checked to pair up the num_targets targets."""
  pairs = model.get('strand_pair') or [[]]
  pair = tuple(pairs[0])
  if not pair:
    return None
  if sorted(pair) != list(range(num_targets)):
    raise UserError('%s model: strand_pair %s must list every one of the %d targets '
                    'once (target i becomes target strand_pair[i] on the other strand).'
                    % (params_file, list(pair), num_targets))
  return pair


def records_layout(files, seq_length, target_length, num_targets, model):
  """The layout of test records for `model` (how messages name it), which takes
  seq_length bp and predicts target_length bins of num_targets; UserError unless the
  records fit it."""
  layout, found, seq_1hot, stats_path = _layout_from_records(
      files[0], {'model': {'seq_length': seq_length}})
  if found != seq_length:
    raise UserError('--records: %s holds %d bp sequences, but %s takes %d bp: pass '
                    'records of %d bp.' % (files[0], found, model, seq_length,
                                           seq_length))
  if layout is None:
    layout = _layout_from_bins(files[0], model, seq_length, seq_1hot, target_length)
  if (layout.target_length, layout.num_targets) != (target_length, num_targets):
    raise UserError('--records: %s hold %d bins of %d targets, but %s predicts %d '
                    'bins of %d targets: pass records made for it.' % (
                        stats_path or files[0], layout.target_length,
                        layout.num_targets, model, target_length, num_targets))
  return layout


def _layout_from_records(record_file, params):
  """(layout from statistics.json or None, seq_length, one-hot bytes, its path)."""
  shape = sequence_format.inspect_record(record_file)
  stats_path, stats = sequence_format.read_statistics(record_file)
  if stats is not None:
    layout = sequence_format.layout_from_statistics(stats_path, stats, shape)
    return layout, layout.seq_length, layout.seq_1hot, stats_path
  candidates = sequence_format.sequence_candidates(shape)
  chosen = [c for c in candidates
            if c[0] == params['model']['seq_length']] or candidates[:1]
  return None, chosen[0][0], chosen[0][1], None


def _layout_from_bins(record_file, params_file, seq_length, seq_1hot, target_length):
  """The layout of records without statistics.json, from the model's bins."""
  shape = sequence_format.inspect_record(record_file)
  if target_length <= 0 or shape.target_values % target_length:
    raise UserError(
        '%s: target holds %d values, which is not a multiple of the %d bins the '
        'model predicts for %d bp (--params_file=%s): check the pooling in the '
        'params against the records.' % (shape.path, shape.target_values,
                                         target_length, seq_length, params_file))
  return sequence_format.SequenceLayout(
      seq_length=seq_length, seq_1hot=seq_1hot, target_length=target_length,
      num_targets=shape.target_values // target_length,
      target_bytes=shape.target_bytes)


def _fit_head(params_file, model, units, num_targets, notices):
  """Sets the head's last units to the records' number of targets, or refuses."""
  head = model['head'] if isinstance(model['head'], list) else [model['head']]
  block = next((b for b in reversed(head) if 'units' in b), None)
  if block is None:
    raise UserError('%s head gives %d outputs per bin, but the records hold %d '
                    'targets: end the head with a final block of units=%d.'
                    % (params_file, units, num_targets, num_targets))
  notices.append('%s: head %s units %d, but the records hold %d targets; the head '
                 'is built with %d.' % (params_file, block['name'], units,
                                        num_targets, num_targets))
  block['units'] = num_targets


def _augment_shift(value, path):
  if isinstance(value, list):  # newer basenji lists the shifts themselves
    value = max(abs(int(v)) for v in value) if value else 0
  if not isinstance(value, int) or value < 0:
    raise UserError('%s model: augment_shift=%r must be a non-negative integer.'
                    % (path, value))
  return value


TASK = SequenceTask()
