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
import os
import re
import time
from typing import Dict, Optional, Tuple

import tensorflow as tf

from estimator_pipeline import config as config_lib
from estimator_pipeline import console
from estimator_pipeline import distribute
from estimator_pipeline import early_stopping
from estimator_pipeline import hooks
from estimator_pipeline import input_fn as input_lib
from estimator_pipeline import loops
from estimator_pipeline import model_fn as model_fn_lib
from estimator_pipeline import models
from estimator_pipeline import monitoring
from estimator_pipeline import optimization
from estimator_pipeline import reproducibility
from estimator_pipeline import sequence_lib
from estimator_pipeline import seqnn_params
from estimator_pipeline import training_controls
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import short_tf_message
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


def _checkpoint_step(path):
  match = re.search(r'-(\d+)$', path or '')
  return int(match.group(1)) if match else 0


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


def _check_model_dir(cfg, num_classes, image_size, chief=True):
  """Refuses a model_dir that holds another model; returns its latest checkpoint.

  Only the chief checks that a resume matches the saved run: in a cluster the other
  tasks see model_dir change under them while the chief trains.
  """
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
  return latest


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
    latest = _check_model_dir(cfg, num_classes, image_size, chief=chief)
  else:
    class_names = _find_labels(cfg, train_files)
    num_classes = _resolve_num_classes(cfg, class_names)
    image_size = cfg.image_size or spec.default_image_size
    if cfg.serving_input or serving.names(spec.layout):
      serving.get(spec, cfg.serving_input)  # An unknown --serving_input fails here.
    latest = _check_model_dir(cfg, num_classes, image_size, chief=chief)
    variables, trainable_names = model_variables(
        spec, num_classes, model_params(cfg, image_size), image_size)
  _check_scopes(cfg, variables)
  if latest and chief:
    _check_resume_shapes(cfg, variables, latest)
  if eval_files:
    early_stopping.check_metric(cfg, early_stopping.model_metric_names(
        spec, num_classes, model_params(cfg, image_size), image_size))
  plan = Plan(config=cfg, spec=spec, train_files=train_files, eval_files=eval_files,
              class_names=class_names, num_classes=num_classes, image_size=image_size,
              latest_checkpoint=latest, sequence=sequence,
              finished=_finished_message(cfg, latest))
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
  cfg = plan.config
  if plan.sequence:
    return sequence_lib.input_fns(cfg, plan.sequence, plan.train_files, plan.eval_files)
  parse_train = input_lib.make_image_parse_fn(
      is_training=True, num_classes=plan.num_classes, family=plan.spec.preprocessing,
      image_size=plan.image_size, random_flip=cfg.random_flip)
  train = input_lib.make_input_fn(
      plan.train_files, is_training=True, batch_size=cfg.batch_size,
      parse_fn=parse_train, shuffle_buffer_size=cfg.shuffle_buffer_size,
      num_parallel_reads=cfg.num_parallel_reads, seed=cfg.seed,
      default_input_context=default_input_context)
  evaluate = None
  if plan.eval_files:
    parse_eval = input_lib.make_image_parse_fn(
        is_training=False, num_classes=plan.num_classes,
        family=plan.spec.preprocessing, image_size=plan.image_size)
    evaluate = input_lib.make_input_fn(
        plan.eval_files, is_training=False, batch_size=cfg.effective_eval_batch_size,
        parse_fn=parse_eval, num_parallel_reads=cfg.num_parallel_reads)
    evaluate = loops.with_data_threads(evaluate, cfg.data_threads)
  train = loops.with_data_threads(loops.stack_batches(train, cfg.steps_per_loop),
                                  cfg.data_threads)
  return train, evaluate


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


def eval_history(model_dir):
  """{step: {metric: value}} from every evaluation in model_dir/eval, all runs included.

  BestExporter judges "best" over the same events, so the summary and export/best agree
  after a resume.
  """
  history = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, 'eval', 'events.*'))):
    for raw in tf.data.TFRecordDataset(path):
      event = tf.compat.v1.Event.FromString(raw.numpy())
      for value in event.summary.value:
        if value.HasField('simple_value'):
          history.setdefault(int(event.step), {})[value.tag] = value.simple_value
  return history


def _find_corrupt_record(files, compression_type=None):
  """(file, record index, message) of the first unreadable record, or None."""
  for path in files:
    index = 0
    try:
      for _ in tf.data.TFRecordDataset(path, compression_type=compression_type):
        index += 1
    except tf.errors.OpError as e:
      return path, index, short_tf_message(e)
  return None


def _translate(error, plan):
  """A TF runtime error caused by the data or the flags -> UserError, else None."""
  message = str(error)
  if isinstance(error, tf.errors.InvalidArgumentError):
    if input_lib.LABEL_ERROR_MARKER in message:
      label = re.search(r':\]\s*\[(-?\d+)\]', message)
      return UserError(
          'a record holds label %s, outside [0, %d): pass --num_classes=%s or larger, '
          'or fix the labels in the records.' % (
              label.group(1) if label else '?', plan.num_classes,
              int(label.group(1)) + 1 if label and int(label.group(1)) >= 0 else '?'))
    if 'is inf or nan' in message.lower() or 'nan' in message.lower().split(':')[0]:
      return UserError('the loss became NaN or Inf: lower --learning_rate, or check '
                       'the records for bad values.')
  # Reading every record to find a bad one is worth it only when a record is bad.
  if (isinstance(error, tf.errors.DataLossError) or
      'corrupted record' in message or 'truncated record' in message):
    for flag, files in (('--train_record_path', plan.train_files),
                        ('--eval_record_path', plan.eval_files or [])):
      found = _find_corrupt_record(
          files, 'ZLIB' if plan.sequence else None)
      if found:
        return UserError('record file %s is corrupt at record %d (%s): re-create it, or'
                         ' leave it out of %s.' % (found[0], found[1], found[2], flag))
  if isinstance(error, tf.errors.InvalidArgumentError) and 'decode' in message.lower():
    return UserError('an image in the records does not decode (%s): re-create the '
                     'records with `python -m estimator_pipeline.records images`.'
                     % short_tf_message(error)[:200])
  return None


def run(cfg, typed_flags=None):
  """Trains, evaluates and exports as cfg says. Returns a Result.

  typed_flags: the flags the user typed, which win over --params_file's train section;
  None (library callers) counts every field that differs from its default as typed.
  With a cluster in TF_CONFIG, this process runs as its task there (see cluster.py).
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
    eval_metrics = _train_and_evaluate(plan, estimator, keeper,
                                       layout.examples_per_step)
  return _result(cfg, estimator.latest_checkpoint(), eval_metrics, start,
                 stopped_early=keeper.stop_reason if keeper else None)


def announce(plan, cfg):
  """One line: resuming, warm-starting or starting from scratch."""
  if plan.latest_checkpoint:
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


def _train_and_evaluate(plan, estimator, keeper, examples_per_step):
  """Runs training (and evaluation, exports); returns the last evaluation's metrics."""
  cfg = plan.config
  train_input, eval_input = input_fns(plan)
  # With gradient accumulation a step is one update of grad_accum_steps batches.
  train_hooks = [hooks.ProgressHook(cfg.num_steps,
                                    examples_per_step * cfg.grad_accum_steps,
                                    cfg.log_every_steps)
                 ] + monitoring.training_hooks(cfg, plan_model_params(plan))
  train_spec = tf.estimator.TrainSpec(train_input, max_steps=cfg.num_steps,
                                      hooks=train_hooks)
  export_root = os.path.join(cfg.model_dir, 'export')
  assets_extra = export_assets(plan, export_root)
  final_exporter = lambda: exporters_lib.FinalExporter(
      'final', serving_input_fn(plan), exports_to_keep=cfg.exports_to_keep,
      assets_extra=assets_extra)
  eval_metrics = None
  try:
    if eval_input is not None:
      eval_spec = tf.estimator.EvalSpec(
          eval_input, steps=cfg.eval_steps or None,
          exporters=[hooks.EvalReporter(),
                     early_stopping.BestCheckpointExporter(keeper)] +
          exporters_lib.make_exporters(serving_input_fn(plan), cfg.exports_to_keep,
                                       compare_fn=keeper.compare_fn,
                                       assets_extra=assets_extra),
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
      estimator.train(train_input, max_steps=cfg.num_steps, hooks=train_hooks)
      final_exporter().export(estimator, os.path.join(export_root, 'final'),
                              estimator.latest_checkpoint(), {}, True)
  except tf.errors.OpError as e:
    translated = _translate(e, plan)
    if translated is None:
      raise
    raise translated from None
  return eval_metrics


def _result(cfg, latest_checkpoint, eval_metrics, start, finished=None,
            stopped_early=None):
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
      finished=finished, stopped_early=stopped_early)
  if not finished:
    _summary(result)
  return result


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
  console.line('  watch it: tensorboard --logdir %s' % result.model_dir)
