"""run(config): checks every input, then Estimator + TrainSpec + EvalSpec + exporters ->
tf.estimator.train_and_evaluate, and a closing summary.

Everything that can be wrong with the input is checked before the Estimator writes
anything, so a failed run leaves an existing model_dir as it was:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config, train_lib
  train_lib.run(config.Config(model_dir='runs/x', train_record_path='data/train-*',
                              eval_record_path='data/validation-*',
                              model_name='cifarnet', num_steps=200))"
"""

import dataclasses
import errno
import os
import re
import shutil
import time
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from estimator_pipeline import config as config_lib
from estimator_pipeline import console
from estimator_pipeline import distribute
from estimator_pipeline import early_stopping
from estimator_pipeline import hooks
from estimator_pipeline import input_fn as input_lib
from estimator_pipeline import lock as lock_lib
from estimator_pipeline import loops
from estimator_pipeline import model_fn as model_fn_lib
from estimator_pipeline import models
from estimator_pipeline import monitoring
from estimator_pipeline import optimization
from estimator_pipeline import reproducibility
from estimator_pipeline import safety
from estimator_pipeline import sequence_lib
from estimator_pipeline import seqnn_params
from estimator_pipeline import training_controls
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message
from estimator_pipeline.records import inspect as inspect_lib
from export import exporters as exporters_lib
from export import outputs as serving_outputs
from export import serving

LABELS_FILE = 'labels.txt'


@dataclasses.dataclass
class Plan:
  """What preflight decided: everything run() needs, computed without writing."""
  config: config_lib.Config
  spec: models.ModelSpec
  train_files: list
  eval_files: Optional[list]
  class_names: Optional[Tuple[str, ...]]
  num_classes: int
  image_size: int
  latest_checkpoint: Optional[str]
  warm_start_checkpoint: Optional[str] = None
  warm_start_map: Dict[str, str] = dataclasses.field(default_factory=dict)
  skipped_vars: Tuple[str, ...] = ()
  # Sequence models only: layout, resolved params, augmentation (sequence_lib.py).
  sequence: Optional[sequence_lib.SequencePlan] = None
  # Set when model_dir has nothing left to train: the line that says why.
  finished: Optional[str] = None
  # model_dir/class_names.txt, written by run() when labels.txt is known; exports ship
  # it in assets/.
  class_names_file: Optional[str] = None
  # The last checkpoint is at --num_steps, but the run died before its final
  # evaluation and export: run() does only those.
  finish_only: bool = False


@dataclasses.dataclass
class Result:
  model_dir: str
  global_step: int
  eval_metrics: Optional[dict]
  best_metrics: Optional[dict]
  exports: Dict[str, Optional[str]]
  seconds: float
  best_metric: str = 'loss'
  # The line saying why nothing was trained (model_dir was done), or None.
  finished: Optional[str] = None
  # The line saying why training stopped before --num_steps, or None.
  stopped_early: Optional[str] = None
  # With --skip_corrupt_records: training records dropped, of those read.
  skipped_records: Optional[int] = None
  records_read: Optional[int] = None


def read_labels(path):
  """slim's labels.txt ('0:daisy' lines) -> tuple of names indexed by id."""
  names = {}
  with tf.io.gfile.GFile(path) as f:
    for number, raw in enumerate(f, 1):
      raw = raw.strip()
      if not raw:
        continue
      index, sep, name = raw.partition(':')
      if not sep or not index.strip().isdigit():
        raise UserError('%s line %d is %r: expected "<id>:<name>" as slim writes it.'
                        % (path, number, raw))
      names[int(index)] = name
  if sorted(names) != list(range(len(names))):
    raise UserError('%s does not number its classes 0..%d without gaps.'
                    % (path, len(names) - 1))
  return tuple(names[i] for i in range(len(names)))


def _find_labels(cfg, train_files):
  if cfg.labels_file:
    if not tf.io.gfile.exists(cfg.labels_file):
      raise UserError('--labels_file=%s does not exist.' % cfg.labels_file)
    return read_labels(cfg.labels_file)
  beside = os.path.join(os.path.dirname(train_files[0]), LABELS_FILE)
  return read_labels(beside) if tf.io.gfile.exists(beside) else None


def _resolve_num_classes(cfg, class_names):
  if class_names is None:
    if not cfg.num_classes:
      raise UserError('--num_classes is missing and no labels.txt lies beside the '
                      'training records: pass --num_classes or --labels_file.')
    return cfg.num_classes
  if not cfg.num_classes:
    return len(class_names)
  if cfg.num_classes < len(class_names):
    raise UserError('--num_classes=%d is smaller than the %d classes in labels.txt: '
                    'pass --num_classes=%d.' % (cfg.num_classes, len(class_names),
                                                len(class_names)))
  return cfg.num_classes


_checkpoint_step = safety.checkpoint_step


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


def model_variables(spec, num_classes, model_params, image_size):
  """{name: shape} of the model's variables, from a graph built and thrown away."""
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, image_size, image_size, 3])
    try:
      model = spec.build(is_training=True, num_classes=num_classes, **model_params)
      model.predict(model.preprocess({'image': images}))
    except ValueError as e:
      raise UserError('--model_name=%s cannot be built at --image_size=%d (%s): use '
                      'its default size %d or a larger one.'
                      % (spec.name, image_size, short_tf_message(e),
                         spec.default_image_size))
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    return ({v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()},
            trainable)


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


def _check_scopes(cfg, variables):
  for flag in ('checkpoint_exclude_scopes', 'trainable_scopes', 'scopes_to_freeze'):
    for scope in cfg.scopes(flag):
      if not any(model_fn_lib.in_scopes(v, (scope,)) for v in variables):
        raise UserError('--%s names scope %r, which holds no variable of --model_name=%s'
                        ' (its top scopes: %s).' % (
                            flag, scope, cfg.model_name,
                            ', '.join(sorted({v.split('/')[0] + '/' +
                                              v.split('/')[1] if '/' in v else v
                                              for v in variables})[:8])))


def _finished(model_dir, step):
  """Whether export/final holds a version exported from the checkpoint at step."""
  newest = _newest_export(os.path.join(model_dir, 'export', 'final'))
  return bool(newest) and safety.export_step(newest) == step


def _read_only(path):
  try:
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
  except OSError:
    return False


def _check_model_dir(cfg, num_classes, image_size, chief=True):
  """Refuses a model_dir that holds another model or is being trained.

  Returns (latest checkpoint or None, whether only the final evaluation and export
  are missing). Only the chief checks the lock and that a resume matches the saved
  run: in a cluster the other tasks see model_dir change under them while the chief
  trains.
  """
  if chief:
    lock_lib.check_free(cfg.model_dir)
  if os.path.isdir(cfg.model_dir) and not os.access(cfg.model_dir, os.W_OK):
    # access() reports a read-only mount even to root, whom permissions do not stop.
    raise UserError('cannot write to --model_dir=%s (%s): pass a directory you can '
                    'write to.' % (cfg.model_dir, 'read-only file system'
                                   if _read_only(cfg.model_dir) else 'permission denied'))
  saved = config_lib.load(cfg.model_dir)
  if saved is not None:
    theirs = {'model_name': saved.model_name, 'num_classes': saved.num_classes,
              'image_size': saved.image_size}
    ours = {'model_name': cfg.model_name, 'num_classes': num_classes,
            'image_size': image_size}
    for key in theirs:
      if theirs[key] and theirs[key] != ours[key]:
        raise UserError('--model_dir=%s holds a model with %s=%s, not %s: use another '
                        '--model_dir, or the same --%s to resume.' % (
                            cfg.model_dir, key, theirs[key], ours[key], key))
  latest = (tf.train.latest_checkpoint(cfg.model_dir)
            if tf.io.gfile.isdir(cfg.model_dir) else None)
  if chief and saved is not None and latest:
    _check_resume_training(cfg, saved, latest)
  step = _checkpoint_step(latest)
  finish_only = bool(chief and latest and step == cfg.num_steps and
                     not _finished(cfg.model_dir, step))
  return latest, finish_only


# Slot variables per trainable variable that each optimizer keeps in the checkpoint.
_OPTIMIZER_SLOTS = {'sgd': 0, 'momentum': 1, 'rmsprop': 2, 'adam': 2}


def _check_space(cfg, variables, trainable_names):
  """Refuses a model_dir whose disk cannot hold one checkpoint and one export.

  A disk that fills up while a checkpoint is written costs that checkpoint; refusing
  before the first write costs nothing. Later checkpoints are not counted: the Saver
  deletes old ones as it writes new ones.
  """
  folder = os.path.abspath(cfg.model_dir)
  while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
    folder = os.path.dirname(folder)
  try:
    free = shutil.disk_usage(folder).free
  except OSError:
    return
  size = lambda shape: 4 * int(np.prod(shape)) if shape else 4
  weights = sum(size(s) for s in variables.values())
  slots = _OPTIMIZER_SLOTS.get(cfg.optimizer, 2) * sum(
      size(variables[n]) for n in trainable_names if n in variables)
  needed = 2 * weights + slots  # A checkpoint (weights + slots) and a SavedModel.
  if free < needed:
    raise UserError('--model_dir=%s has %.1f MB free, but one checkpoint and one '
                    'export of --model_name=%s need about %.1f MB: free some space or '
                    'pass a --model_dir on a larger disk.' % (
                        cfg.model_dir, free / 1e6, cfg.model_name, needed / 1e6))


def _check_resume_training(cfg, saved, latest):
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


def _finished_message(cfg, latest):
  step = _checkpoint_step(latest) if latest else 0
  if latest and step >= cfg.num_steps:
    return ('--model_dir=%s already holds step %d, at or past --num_steps=%d: nothing '
            'to train. Raise --num_steps to train further.' % (cfg.model_dir, step,
                                                               cfg.num_steps))
  return early_stopping.finished_message(cfg, latest)


def _check_resume_shapes(cfg, variables, latest):
  # config.json may predate a flag change; the checkpoint is the truth about the model.
  shapes = tf.train.load_checkpoint(latest).get_variable_to_shape_map()
  for name in sorted(variables):
    if name in shapes and list(shapes[name]) != list(variables[name]):
      raise UserError('--model_dir=%s holds %s of shape %s, but these flags build %s: '
                      'use another --model_dir, or the flags it was trained with '
                      '(see its config.json).' % (cfg.model_dir, name,
                                                 list(shapes[name]), variables[name]))


def model_params(cfg, image_size):
  # AdamW decays the weights itself (decoupled): no L2 term in the loss as well.
  weight_decay = 0.0 if cfg.optimizer == 'adamw' else cfg.weight_decay
  return {'image_size': image_size, 'weight_decay': weight_decay,
          'dropout_keep_prob': cfg.dropout_keep_prob,
          'label_smoothing': cfg.label_smoothing}


def plan_model_params(plan):
  """The keyword arguments the planned model is built with."""
  if plan.sequence:
    return plan.sequence.model_params(plan.config)
  return model_params(plan.config, plan.image_size)


def preflight(cfg, chief=True):
  """Checks flags, files, model and checkpoints; writes nothing. Returns a Plan.

  chief=False (a cluster's workers and evaluator) leaves the checks of model_dir's
  checkpoints to the chief: they change under the other tasks while the chief trains.
  """
  cfg.validate()
  monitoring.parse_profile_steps(cfg.profile_steps, cfg.num_steps)
  spec = models.get(cfg.model_name)
  train_files = input_lib.list_files(cfg.train_record_path, '--train_record_path')
  eval_files = (input_lib.list_files(cfg.eval_record_path, '--eval_record_path')
                if cfg.eval_record_path else None)
  sequence = None
  if cfg.params_file and spec.layout != 'sequence':
    raise UserError('--params_file is read by sequence models (--model_name=seqnn), '
                    'not by --model_name=%s: leave it out.' % cfg.model_name)
  if spec.layout == 'sequence':
    sequence, variables, trainable_names = sequence_lib.prepare(
        cfg, spec, train_files, eval_files)
    class_names, num_classes, image_size = None, sequence.num_targets, 0
    latest, finish_only = _check_model_dir(cfg, num_classes, image_size, chief=chief)
  else:
    class_names = _find_labels(cfg, train_files)
    num_classes = _resolve_num_classes(cfg, class_names)
    image_size = cfg.image_size or spec.default_image_size
    if cfg.serving_input or serving.names(spec.layout):
      serving.get(spec, cfg.serving_input)  # An unknown --serving_input fails here.
    latest, finish_only = _check_model_dir(cfg, num_classes, image_size, chief=chief)
    _check_records(cfg, spec.layout, num_classes, train_files, eval_files)
    variables, trainable_names = model_variables(
        spec, num_classes, model_params(cfg, image_size), image_size)
  _check_scopes(cfg, variables)
  _check_space(cfg, variables, trainable_names)
  if latest and chief:
    _check_resume_shapes(cfg, variables, latest)
  if eval_files:
    early_stopping.check_metric(cfg, early_stopping.model_metric_names(
        spec, num_classes, model_params(cfg, image_size), image_size))
  plan = Plan(config=cfg, spec=spec, train_files=train_files, eval_files=eval_files,
              class_names=class_names, num_classes=num_classes, image_size=image_size,
              latest_checkpoint=latest, sequence=sequence, finish_only=finish_only,
              finished=None if finish_only else _finished_message(cfg, latest))
  if cfg.checkpoint_path and not latest:
    plan.warm_start_checkpoint = resolve_checkpoint(cfg.checkpoint_path)
    plan.warm_start_map, plan.skipped_vars = warm_start_map(
        variables, plan.warm_start_checkpoint, cfg.scopes('checkpoint_exclude_scopes'),
        cfg.ignore_missing_vars)
  trainable = model_fn_lib.variables_to_train(
      [_Named(n) for n in sorted(trainable_names)], cfg.scopes('trainable_scopes'),
      cfg.scopes('scopes_to_freeze'))
  if not trainable:
    raise UserError('--trainable_scopes/--scopes_to_freeze leave no variable to train.')
  return plan


_SKIP_ADVICE = ('pass --skip_corrupt_records to train without the bad records, or fix '
                'them (`python -m estimator_pipeline.records inspect GLOB` lists all)')


def _check_records(cfg, layout, num_classes, train_files, eval_files):
  """The first record of every file (cheap, always), or every record (--validate_data).

  Without --validate_data a bad record further into a file is found while training,
  which then stops and names it (see _translate).
  """
  groups = [('--train_record_path', train_files)]
  if eval_files:
    groups.append(('--eval_record_path', eval_files))
  compression = inspect_lib.default_compression(layout)
  fix = ('--model_name=%s reads %s %s records: re-write them so' % (
      cfg.model_name, inspect_lib.describe_compression(compression), layout))
  for flag, files in groups:
    if cfg.skip_corrupt_records:
      for path in files:  # A file that is not TFRecords at all is not a bad record.
        inspect_lib.check_readable(path, inspect_lib.default_compression(layout), fix)
    else:
      inspect_lib.check_first_records(files, layout, num_classes, flag, fix=fix)
  if not cfg.validate_data:
    return
  for flag, files in groups:
    console.line('Validating %d %s files (--validate_data)...' % (len(files), flag))
    report = inspect_lib.inspect_files(files, layout, num_classes,
                                       inspect_lib.default_compression(layout))
    for text in report.lines():
      console.line('  ' + text)
    if report.bad and not cfg.skip_corrupt_records:
      raise report.error(_SKIP_ADVICE)
    if report.bad:
      console.line('warning: training without the %d bad records of %s '
                   '(--skip_corrupt_records).' % (report.num_bad, flag))


class _Named:
  # variables_to_train reads v.op.name; preflight only has names.
  def __init__(self, name):
    self.op = self
    self.name = name


def build_estimator(plan, training_chief_hooks=(), train_distribute=None):
  cfg = plan.config
  fn = model_fn_lib.make_model_fn(
      plan.spec, num_classes=plan.num_classes,
      model_params=plan_model_params(plan),
      train_options=optimization.TrainOptions.from_config(cfg),
      training_chief_hooks=training_chief_hooks,
      warm_start_checkpoint=plan.warm_start_checkpoint,
      warm_start_map=plan.warm_start_map,
      trainable_scopes=cfg.scopes('trainable_scopes'),
      scopes_to_freeze=cfg.scopes('scopes_to_freeze'),
      class_names=plan.class_names, class_names_file=plan.class_names_file,
      summarize_gradients=cfg.summarize_gradients)
  fn = loops.make_looped_model_fn(fn, cfg.steps_per_loop, max_steps=cfg.num_steps,
                                  every_steps=cfg.effective_save_checkpoints_steps)
  run_config = tf.estimator.RunConfig(
      model_dir=cfg.model_dir, tf_random_seed=cfg.seed,
      save_checkpoints_steps=cfg.effective_save_checkpoints_steps,
      save_checkpoints_secs=cfg.save_checkpoints_secs or None,
      keep_checkpoint_max=cfg.keep_checkpoint_max,
      keep_checkpoint_every_n_hours=cfg.keep_checkpoint_every_n_hours,
      save_summary_steps=cfg.log_every_steps,
      log_step_count_steps=cfg.log_every_steps,
      # --deterministic runs independent ops on one inter-op thread, in a fixed order.
      session_config=loops.session_config(
          1 if cfg.deterministic else cfg.inter_op_threads, cfg.intra_op_threads),
      # Evaluation stays on one device, so every record counts exactly once.
      train_distribute=train_distribute, eval_distribute=None)
  return tf.estimator.Estimator(model_fn=fn, config=run_config)


def input_fns(plan, default_input_context=None):
  """(train input_fn, eval input_fn or None), with the speed flags applied to both
  record layouts."""
  cfg = plan.config
  if plan.sequence:
    train, evaluate = sequence_lib.input_fns(cfg, plan.sequence, plan.train_files,
                                             plan.eval_files, default_input_context)
  else:
    train, evaluate = _image_input_fns(plan, default_input_context)
  if evaluate is not None:
    evaluate = loops.with_data_threads(evaluate, cfg.data_threads)
  train = loops.with_data_threads(loops.stack_batches(train, cfg.steps_per_loop),
                                  cfg.data_threads)
  return train, evaluate


def _image_input_fns(plan, default_input_context):
  cfg = plan.config
  parse_train = input_lib.image_parse_fns(
      is_training=True, num_classes=plan.num_classes, family=plan.spec.preprocessing,
      image_size=plan.image_size, random_flip=cfg.random_flip,
      deterministic=cfg.deterministic)
  train = input_lib.make_input_fn(
      plan.train_files, is_training=True, batch_size=cfg.batch_size,
      **parse_train, shuffle_buffer_size=cfg.shuffle_buffer_size,
      num_parallel_reads=cfg.num_parallel_reads, seed=cfg.seed,
      default_input_context=default_input_context,
      skip_bad_records=cfg.skip_corrupt_records)
  if cfg.skip_corrupt_records:
    train = _without_record_index(train)
  evaluate = None
  if plan.eval_files:
    parse_eval = input_lib.image_parse_fns(
        is_training=False, num_classes=plan.num_classes,
        family=plan.spec.preprocessing, image_size=plan.image_size,
        deterministic=cfg.deterministic)
    evaluate = input_lib.make_input_fn(
        plan.eval_files, is_training=False, batch_size=cfg.effective_eval_batch_size,
        **parse_eval, num_parallel_reads=cfg.num_parallel_reads,
        skip_bad_records=cfg.skip_corrupt_records)
  return train, evaluate


_RECORD_INDEX_COLLECTION = 'pipeline_record_index'


def _without_record_index(input_fn):
  """Takes the record numbers out of the features (the model must not see them) and
  leaves them in a collection for safety.SkippedRecordsHook."""

  def wrapped(params=None, input_context=None):
    dataset = input_fn(params, input_context)
    features, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    features = dict(features)
    tf.compat.v1.add_to_collection(_RECORD_INDEX_COLLECTION,
                                   features.pop(input_lib.RECORD_INDEX_KEY))
    return features, labels

  return wrapped


class _SkipCounter(safety.SkippedRecordsHook):
  """SkippedRecordsHook that finds the record numbers when the graph is built."""

  def __init__(self):
    super().__init__(None)

  def begin(self):
    self._index = tf.compat.v1.get_collection(_RECORD_INDEX_COLLECTION)[-1]


def serving_input_fn(plan):
  """The --serving_input receiver, chosen among those of the model's record layout."""
  if plan.sequence:
    return sequence_lib.serving_input_fn(plan.sequence)
  return serving.make_serving_input_fn(plan.spec, plan.config.serving_input,
                                       image_size=plan.image_size)


def export_assets(plan, directory):
  """Writes what every export ships besides the graph; returns assets_extra.

  directory/tf_serving_warmup_requests is the source the Estimator copies into each
  version's assets.extra/.
  """
  return exporters_lib.write_warmup_file(
      plan.spec, plan.config.serving_input,
      os.path.join(directory, 'tf_serving_warmup_requests'), image_size=plan.image_size)


def _newest_export(directory):
  if not tf.io.gfile.isdir(directory):
    return None
  versions = sorted(int(d.strip('/')) for d in tf.io.gfile.listdir(directory)
                    if d.strip('/').isdigit())
  return os.path.join(directory, str(versions[-1])) if versions else None


def _guard_advice(cfg):
  return ('lower --learning_rate (now %g), clip gradients with --clip_gradient_norm '
          '(e.g. 5; now %s), or check the records for extreme values (--validate_data),'
          ' then run the same command to resume from it.' % (
              cfg.learning_rate, cfg.clip_gradient_norm or 'off'))


def eval_history(model_dir):
  """{step: {metric: value}} from every evaluation in model_dir/eval, all runs included.

  BestExporter judges "best" over the same events, so the summary and export/best agree
  after a resume.
  """
  history = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, 'eval', 'events.*'))):
    for event in safety.iter_events(path):
      for value in event.summary.value:
        if value.HasField('simple_value'):
          history.setdefault(int(event.step), {})[value.tag] = value.simple_value
  return history


def _locate_bad_record(plan):
  """'file record i: problem' of the first bad record, or None (costs a full read)."""
  for files in (plan.train_files, plan.eval_files or []):
    found = inspect_lib.first_bad_record(files, plan.spec.layout, plan.num_classes)
    if found:
      return found.text()
  return None


def _translate(error, plan, step=None):
  """A TF runtime error caused by the data or the flags -> UserError, else None."""
  message = str(error)
  if (isinstance(error, tf.errors.InvalidArgumentError) and
      ('is inf or nan' in message.lower() or
       'nan' in message.lower().split(':')[0])):
    return safety.non_finite_error(step, plan.config.model_dir,
                                   _guard_advice(plan.config))
  data_loss = (isinstance(error, tf.errors.DataLossError) or
               'corrupted record' in message or 'truncated record' in message)
  if not data_loss and not isinstance(error, tf.errors.InvalidArgumentError):
    return None
  # Reading every record to name the bad one is worth it only now that one is bad.
  # Sequence records are located by `records inspect`, not here.
  where = None if plan.sequence else _locate_bad_record(plan)
  label = re.search(r':\]\s*\[(-?\d+)\]', message)
  if input_lib.LABEL_ERROR_MARKER in message:
    fix = 'pass --num_classes=%s or larger, fix the labels, or %s' % (
        int(label.group(1)) + 1 if label and int(label.group(1)) >= 0 else '?',
        _SKIP_ADVICE.replace('pass --skip', 'train with --skip'))
    if where:
      return UserError('%s: %s' % (where, fix))
    return UserError('a record holds label %s, outside [0, %d): %s' % (
        label.group(1) if label else '?', plan.num_classes, fix))
  if where:
    return UserError('%s: %s' % (where, _SKIP_ADVICE))
  if data_loss:
    return UserError('a record file is corrupt (%s): %s' % (short_tf_message(error),
                                                            _SKIP_ADVICE))
  if 'decode' in message.lower():
    return UserError('an image in the records does not decode (%s): %s'
                     % (short_tf_message(error)[:200], _SKIP_ADVICE))
  return None


def run(cfg, typed_flags=None):
  """Trains, evaluates and exports as cfg says. Returns a Result.

  typed_flags: the flags the user typed, which win over --params_file's train section;
  None (library callers) counts every field that differs from its default as typed.
  With a cluster in TF_CONFIG, this process runs as its task there (see cluster.py).
  Holds model_dir's lock from the first write to the end (lock.py). SIGINT/SIGTERM save
  a checkpoint at the current step and raise errors.Interrupted; a checkpoint of NaN
  or Inf weights is never saved (safety.py).
  """
  start = time.time()
  cfg, _, not_applied = seqnn_params.resolve_config(cfg, explicit=typed_flags)
  task = distribute.task_from_env()
  distribute.check(cfg.distribution, task)
  if task.in_cluster:
    from estimator_pipeline import cluster  # pylint: disable=g-import-not-at-top
    return cluster.run(cfg, task)
  plan = preflight(cfg)
  if plan.finished:
    # A finished job re-run: say so, write nothing, succeed (exit 0), as make does.
    console.line(plan.finished)
    return _result(cfg, plan.latest_checkpoint, None, start, finished=plan.finished)
  with lock_lib.ModelDirLock(cfg.model_dir) as held, safety.StopSignals() as signals:
    if held.took_over:
      console.line('Took over the lock of a run that is gone (%s).' % held.took_over)
    removed = safety.clean_partial_files(cfg.model_dir)
    if removed:
      console.line('Removed what a killed run left half-written: %s' % ', '.join(
          removed[:5]) + (' ...' if len(removed) > 5 else ''))
    try:
      return _run_locked(plan, signals, start, task, not_applied)
    except OSError as e:
      # Python-side writes (config.json, exports' pruning) on a full or read-only disk.
      if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
        raise
      raise _disk_error(cfg.model_dir, e.strerror or str(e)) from None
    except tf.errors.OpError as e:
      if not _is_disk_error(str(e)):
        raise
      # TF's first line is often just 'Graph execution error:'; name the cause.
      raise _disk_error(cfg.model_dir, next(w for w in _DISK_WORDS
                                            if w in str(e))) from None


_DISK_WORDS = ('No space left on device', 'Read-only file system', 'Disk quota exceeded')


def _is_disk_error(message):
  return any(w in message for w in _DISK_WORDS)


def _disk_error(model_dir, problem):
  safety.clean_partial_files(model_dir)
  latest = tf.train.latest_checkpoint(model_dir)
  return UserError('cannot write to --model_dir=%s (%s): %s; free some space (or '
                   'pass a --model_dir on another disk) and run the same command again.'
                   % (model_dir, problem[:160], 'the last complete checkpoint %s is kept'
                      % latest if latest else 'no checkpoint was saved'))


def _run_locked(plan, signals, start, task, not_applied):
  cfg = plan.config
  # The resolved values, so a later run compares against what was really built.
  cfg = cfg.replace(num_classes=plan.num_classes, image_size=plan.image_size)
  plan.config = cfg
  cfg.save()
  training_controls.save_flagfile(cfg)
  if plan.sequence:
    seqnn_params.save(plan.sequence.params, cfg.model_dir)
    for notice in plan.sequence.notices:
      console.line('note: ' + notice)
    for key, why in not_applied:
      console.line('note: %s train.%s is not applied (%s).'
                   % (cfg.params_file, key, why))
  if plan.class_names:
    plan.class_names_file = serving_outputs.write_class_names(
        cfg.model_dir, plan.class_names, plan.num_classes)
  announce(plan, cfg)
  layout = distribute.layout(cfg.distribution, task, cfg.batch_size)
  strategy = distribute.make_strategy(cfg.distribution, task)
  if strategy is not None:
    console.line(layout.describe())
    console.line(distribute.device_note(strategy))

  keeper = None
  chief_hooks = []
  if plan.eval_files:
    keeper = early_stopping.BestCheckpointKeeper(
        cfg.model_dir, cfg.early_stopping_metric, cfg.early_stopping_mode,
        cfg.early_stopping_patience)
    chief_hooks.append(early_stopping.StopTrainingHook(keeper))
  with reproducibility.applied(cfg.seed, cfg.deterministic):
    estimator = build_estimator(plan, training_chief_hooks=chief_hooks,
                                train_distribute=strategy)
    eval_metrics, skip_counter = _train_and_evaluate(
        plan, estimator, keeper, layout.examples_per_step, signals)
  return _result(cfg, estimator.latest_checkpoint(), eval_metrics, start,
                 stopped_early=keeper.stop_reason if keeper else None,
                 skip_counter=skip_counter)


def announce(plan, cfg):
  """One line: resuming, warm-starting or starting from scratch."""
  if plan.finish_only:
    console.line('%s is at --num_steps=%d, but its run stopped before the final '
                 'evaluation and export: doing those now.' % (plan.latest_checkpoint,
                                                              cfg.num_steps))
  elif plan.latest_checkpoint:
    console.line('Resuming from %s (step %d); --checkpoint_path is not applied.'
                 % (plan.latest_checkpoint, _checkpoint_step(plan.latest_checkpoint)))
  elif plan.warm_start_checkpoint:
    console.line('Warm-starting %d variables from %s%s.' % (
        len(plan.warm_start_map), plan.warm_start_checkpoint,
        (' (excluded: %s)' % ', '.join(cfg.scopes('checkpoint_exclude_scopes'))
         if cfg.checkpoint_exclude_scopes else '')))
    if plan.skipped_vars:
      console.line('warning: --ignore_missing_vars skipped %d variables: %s' % (
          len(plan.skipped_vars), ', '.join(plan.skipped_vars[:10]) +
          (' ...' if len(plan.skipped_vars) > 10 else '')))
  else:
    console.line('Training %s from scratch in %s.' % (cfg.model_name, cfg.model_dir))


def _train_and_evaluate(plan, estimator, keeper, examples_per_step, signals):
  """Runs training (and evaluation, exports).

  Returns the last evaluation's metrics and the --skip_corrupt_records counter (or None).
  """
  cfg = plan.config
  train_input, eval_input = input_fns(plan)
  # With gradient accumulation a step is one update of grad_accum_steps batches.
  progress = hooks.ProgressHook(cfg.num_steps, examples_per_step * cfg.grad_accum_steps,
                                cfg.log_every_steps)
  guard = safety.SafetyHook(signals, cfg.model_dir)
  train_hooks = ([progress, guard] +
                 monitoring.training_hooks(cfg, plan_model_params(plan)))
  skip_counter = _SkipCounter() if cfg.skip_corrupt_records else None
  if skip_counter:
    train_hooks.append(skip_counter)
  finite = safety.FiniteCheckpointListener(cfg.model_dir, _guard_advice(cfg))
  train_spec = tf.estimator.TrainSpec(train_input, max_steps=cfg.num_steps,
                                      hooks=train_hooks, saving_listeners=[finite])
  export_root = os.path.join(cfg.model_dir, 'export')
  assets_extra = export_assets(plan, export_root)
  final_exporter = lambda: exporters_lib.FinalExporter(
      'final', serving_input_fn(plan), exports_to_keep=cfg.exports_to_keep,
      assets_extra=assets_extra)
  exporters = [hooks.EvalReporter()]
  if keeper:
    exporters.append(early_stopping.BestCheckpointExporter(keeper))
  exporters += exporters_lib.make_exporters(
      serving_input_fn(plan), cfg.exports_to_keep,
      compare_fn=keeper.compare_fn if keeper else None, assets_extra=assets_extra)
  eval_metrics = None
  try:
    if plan.finish_only:
      eval_metrics = _finish(estimator, plan, eval_input, exporters, export_root,
                             signals)
    elif eval_input is not None:
      eval_spec = tf.estimator.EvalSpec(
          eval_input, steps=cfg.eval_steps or None, exporters=exporters,
          hooks=[safety.SafetyHook(signals, cfg.model_dir, save=False)],
          # By default evaluate after every checkpoint: train_and_evaluate's 600 s
          # throttle means a short job never evaluates.
          start_delay_secs=0, throttle_secs=cfg.throttle_secs)
      eval_metrics, _ = tf.estimator.train_and_evaluate(estimator, train_spec,
                                                        eval_spec)
      if keeper.should_stop:
        # train_and_evaluate exports final/ only at --num_steps.
        final_exporter().export(estimator, os.path.join(export_root, 'final'),
                                estimator.latest_checkpoint(), eval_metrics, True)
    else:
      estimator.train(train_input, max_steps=cfg.num_steps, hooks=train_hooks,
                      saving_listeners=[finite])
      final_exporter().export(estimator, os.path.join(export_root, 'final'),
                              estimator.latest_checkpoint(), {}, True)
  except tf.errors.OpError as e:
    if _is_disk_error(str(e)):
      raise  # run() names the disk and cleans up.
    translated = _translate(e, plan, _failed_step(guard, plan))
    if translated is None:
      raise
    raise translated from None
  except tf.compat.v1.train.NanLossDuringTrainingError:
    raise safety.non_finite_error(_failed_step(guard, plan), cfg.model_dir,
                                  _guard_advice(cfg)) from None
  return eval_metrics, skip_counter


def _result(cfg, latest_checkpoint, eval_metrics, start, finished=None,
            stopped_early=None, skip_counter=None):
  export_root = os.path.join(cfg.model_dir, 'export')
  direction = training_controls.metric_direction(cfg.early_stopping_metric,
                                                 cfg.early_stopping_mode)
  result = Result(
      model_dir=cfg.model_dir,
      global_step=_checkpoint_step(latest_checkpoint),
      eval_metrics=dict(eval_metrics) if eval_metrics else None,
      best_metrics=early_stopping.summary_best(
          eval_history(cfg.model_dir), cfg.early_stopping_metric, direction),
      exports={name: _newest_export(os.path.join(export_root, name))
               for name in ('best', 'final')},
      seconds=time.time() - start, best_metric=cfg.early_stopping_metric,
      finished=finished, stopped_early=stopped_early,
      skipped_records=skip_counter.skipped if skip_counter else None,
      records_read=skip_counter.read if skip_counter else None)
  if not finished:
    _summary(result)
  return result


def _failed_step(guard, plan):
  """The step whose session run raised: one past the last that completed."""
  done = guard.last_step
  if done is None:
    done = _checkpoint_step(plan.latest_checkpoint)
  return done + 1


def _export_final(estimator, plan, export_root):
  exporters_lib.FinalExporter(
      'final', serving_input_fn(plan), exports_to_keep=plan.config.exports_to_keep,
      assets_extra=export_assets(plan, export_root)
  ).export(estimator, os.path.join(export_root, 'final'),
           estimator.latest_checkpoint(), {}, True)


def _finish(estimator, plan, eval_input, exporters, export_root, signals):
  """The final evaluation and exports of a run killed after its last checkpoint."""
  if eval_input is None:
    _export_final(estimator, plan, export_root)
    return None
  checkpoint = estimator.latest_checkpoint()
  metrics = estimator.evaluate(
      eval_input, steps=plan.config.eval_steps or None, checkpoint_path=checkpoint,
      hooks=[safety.SafetyHook(signals, plan.config.model_dir, save=False)])
  # What train_and_evaluate does after its last evaluation.
  for exporter in exporters:
    exporter.export(estimator, os.path.join(export_root, exporter.name), checkpoint,
                    metrics, True)
  return metrics


def _summary(result):
  """The closing lines: wall time, best and final evaluation, exports, TensorBoard."""
  console.line('Done: step %d in %s.' % (result.global_step,
                                          console.duration(result.seconds)))
  if result.best_metrics:
    # export/best and model_dir/best are chosen by the same metric.
    console.line('  best eval %s %.4f at step %d: %s' % (
        result.best_metric, float(result.best_metrics[result.best_metric]),
        int(result.best_metrics['global_step']),
        console.metrics_text(result.best_metrics)))
  if result.eval_metrics:
    console.line('  final eval at step %d: %s' % (
        int(result.eval_metrics.get('global_step', result.global_step)),
        console.metrics_text(result.eval_metrics)))
  if result.stopped_early:
    console.line('  stopped early (see above); best checkpoint in %s'
                 % os.path.join(result.model_dir, early_stopping.BEST_DIR))
  for name, path in sorted(result.exports.items()):
    if path:
      console.line('  export/%s: %s' % (name, path))
  if result.skipped_records is not None:
    console.line('  --skip_corrupt_records: skipped %d of %d training records read in '
                 'this run (bad records that fail to parse or decode, or labels out of '
                 'range)' % (result.skipped_records, result.records_read))
  console.line('  watch it: tensorboard --logdir %s' % result.model_dir)
