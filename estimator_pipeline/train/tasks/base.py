"""What a task is: everything the training driver needs to know about one record layout.

In the spirit of tf-models-official's base_task.Task: the driver, the cluster runner,
the export command and the bench never ask which layout they run; they ask the task.
A task owns, for its layout, the preflight checks of records and flags, the input
functions, the serving input and its warm-up requests, the files a run and its exports
ship, the record checker (`--validate_data`, `--skip_corrupt_records`) and how a bad
record is found:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.train import tasks
  print(tasks.names(), tasks.get('image'))"
"""

import dataclasses
import os
from typing import Any, FrozenSet, Mapping, Tuple

import tensorflow as tf

from estimator_pipeline import serving
from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.data import input_fn as input_lib
from estimator_pipeline.data import speed
from estimator_pipeline.records import format as format_lib
from estimator_pipeline.records import inspect as inspect_lib
from estimator_pipeline.serving import exporters
from estimator_pipeline.train import skips

# The end of every message about a bad record.
SKIP_ADVICE = ('pass --skip_corrupt_records to train without the bad records, or fix '
               'them (`python -m estimator_pipeline.records inspect GLOB` lists all)')
WARMUP_FILE = 'tf_serving_warmup_requests'


@dataclasses.dataclass(frozen=True)
class Prepared:
  """What a task learned about a run from its flags, files and one build of its
  model, without writing: preflight (and plan_for_export) build the Plan from it."""
  num_classes: int  # classes of a classifier, targets of a sequence model
  image_size: int  # the input side of an image model (0: none)
  data: Any  # the task's own findings (image.py ImageData, sequence.py SequenceData)
  model_params: Mapping[str, Any]  # the keyword arguments the Model is built with
  variables: Mapping[str, list]  # {name: shape} of every variable of the model
  trainable: FrozenSet[str]
  metric_names: Tuple[str, ...]  # what an evaluation reports
  default_metric: str = 'loss'  # what judges the best checkpoint by default


@dataclasses.dataclass(frozen=True)
class ModelFacts:
  """What one throw-away build of a model tells (inspect_model)."""
  variables: Mapping[str, list]
  trainable: FrozenSet[str]
  metric_names: Tuple[str, ...]
  predictions: Mapping[str, list]  # the shape of each output of Model.predict


def inspect_model(spec, num_classes, model_params, features, labels):
  """Builds the model once, for training, in a throw-away graph -> ModelFacts.

  features: {name: (dtype, shape)} of one batch. labels: (dtype, shape), or a function
  of predict's outputs (tensors) that returns it, for layouts whose labels take the
  model's output shape. The metrics come from the same graph: Model.loss and
  Model.accuracy, with what model_fn reports besides.
  """
  with tf.Graph().as_default():
    inputs = {name: tf.compat.v1.placeholder(dtype, shape)
              for name, (dtype, shape) in features.items()}
    model = spec.build(is_training=True, num_classes=num_classes, **model_params)
    prediction = model.predict(model.preprocess(inputs))
    # The model's own variables: read before the loss and the metrics add theirs.
    variables = {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}
    trainable = frozenset(v.op.name for v in tf.compat.v1.trainable_variables())
    dtype, shape = labels(prediction) if callable(labels) else labels
    label = tf.compat.v1.placeholder(dtype, shape)
    names = set(model.accuracy(model.postprocess(prediction), label))
    names.update(model.loss(prediction, label))
  return ModelFacts(
      variables=variables, trainable=trainable,
      # model_fn reports these besides the model's own.
      metric_names=tuple(sorted(names | {'loss', 'regularization_loss'})),
      predictions={k: v.shape.as_list() for k, v in prediction.items()})


class Task:
  """One record layout's part of a run. Subclasses fill in the abstract methods."""

  # The record layout (records/format.py) this task trains on.
  layout = ''
  # Whether this layout's models are described by --params_file (read by prepare).
  reads_params_file = False

  @property
  def record_format(self):
    return format_lib.get(self.layout)

  # What a subclass says about its layout.

  def apply_params_file(self, cfg, explicit=None):
    """(cfg with --params_file's train section where the user typed no flag, the
    params file as read, [(key, why)] of its train keys not applied): driver.run's
    one read of the file, whose params it hands on to preflight. explicit: the flags
    the user typed (None: every field off its default)."""
    del explicit
    return cfg, None, ()

  def prepare(self, cfg, spec, train_files, eval_files, params=None):
    """Reads what the run needs to know from the records and the flags, and builds
    the model once to learn its variables (never writing); returns a Prepared.

    cfg: the run's Config as the user gave it; spec: the models.ModelSpec of
    --model_name. params: the --params_file dict as the run already read it (None:
    read it here if this layout needs it).
    """
    raise NotImplementedError

  def prepare_export(self, cfg, spec, model_dir, scratch):
    """Like prepare, for exporting a trained model_dir without its records; files
    an export needs and model_dir lacks may be written to the folder scratch."""
    raise NotImplementedError

  def prepare_evaluation(self, cfg, spec, model_dir, files, scratch):
    """Like prepare_export, and learns from the records `files` (a test set) what
    evaluating on them needs. plan_for_export then checks their first records."""
    del files
    return self.prepare_export(cfg, spec, model_dir, scratch)

  def check_eval_records(self, plan, files, flag='--records'):
    """The first record of every file of a test set, as this model reads them."""
    inspect_lib.check_first_records(
        files, self.layout, self.record_checker(plan), flag,
        fix='pass test records of the layout the model was trained on (%s %s '
        'records)' % (inspect_lib.describe_compression(self.record_format.compression),
                      self.layout))

  def parse_fns(self, plan, is_training):
    """{'parse_fn': ..., 'batch_parse_fn': ... or None} for data/input_fn.py."""
    raise NotImplementedError

  def record_checker(self, plan):
    """A records RecordChecker that judges records as this run will read them."""
    raise NotImplementedError

  def serving_params(self, plan):
    """Keyword arguments of the layout's serving receivers and warm-up requests."""
    raise NotImplementedError

  def write_run_files(self, plan, exports):
    """Writes what the run keeps beside its checkpoints (model_dir); exports: whether
    this process writes exports. Returns the lines to show on the console."""
    del plan, exports
    return []

  def default_metric(self, plan):
    """The evaluation metric that judges the best checkpoint by default (what
    prepare found: Prepared.default_metric)."""
    del plan
    return 'loss'

  def test_report(self, plan, test_files):
    """The models.report.TestReport of `python -m export.evaluate` for this layout's
    models, over the records test_files."""
    del plan, test_files
    raise UserError('models of the %s record layout have no test-set report yet: '
                    'evaluate them with train.py --eval_record_path.' % self.layout)

  def import_weights(self, plan, path, directory, exclude_scopes=(),
                     ignore_missing=False, flag='--checkpoint_path'):
    """A Keras .h5 of weights -> (checkpoint prefix written under directory,
    {checkpoint name: variable name}, skipped variable names). Only layouts whose
    models come from Keras read them."""
    del plan, directory, exclude_scopes, ignore_missing
    raise UserError('%s=%s is a Keras .h5 file: only sequence models (--model_name=seqnn)'
                    ' read .h5 weights; pass a TensorFlow checkpoint.' % (flag, path))

  # What every layout does alike, through the methods above.

  def input_fns(self, plan, input_context=None):
    """(train input_fn, eval input_fn or None) over the plan's files.

    input_context: the worker's split in classic between-graph training (see
    data/input_fn.make_input_fn). The speed flags apply to both.
    """
    cfg = plan.config
    common = self._reader_options(cfg)
    tallies = {'train': input_lib.RecordTally(), 'eval': input_lib.RecordTally()}
    train = input_lib.make_input_fn(
        plan.train_files, is_training=True, batch_size=cfg.batch_size,
        shuffle_buffer_size=cfg.shuffle_buffer_size, seed=cfg.seed,
        default_input_context=input_context, tally=tallies['train'], **common,
        **self.parse_fns(plan, is_training=True))
    if cfg.skip_corrupt_records:
      # skips.SkipCounters counts from the record numbers and the tallies.
      train = skips.without_record_index(train, tallies['train'])
    train = speed.with_data_threads(speed.stack_batches(train, cfg.steps_per_loop),
                                    cfg.data_threads)
    return train, (self.eval_input_fn(plan, tallies['eval']) if plan.eval_files
                   else None)

  def eval_input_fn(self, plan, tally=None):
    """The input_fn of an evaluation over plan.eval_files: every record once, in
    file order. tally: the RecordTally --skip_corrupt_records counts drops into."""
    cfg = plan.config
    evaluate = input_lib.make_input_fn(
        plan.eval_files, is_training=False, batch_size=cfg.effective_eval_batch_size,
        tally=tally, **self._reader_options(cfg),
        **self.parse_fns(plan, is_training=False))
    if cfg.skip_corrupt_records:
      evaluate = skips.without_record_index(evaluate, tally)
    return speed.with_data_threads(evaluate, cfg.data_threads)

  def _reader_options(self, cfg):
    """How this layout's files are read, for training and evaluation alike."""
    return dict(compression_type=self.record_format.tf_compression,
                num_parallel_reads=cfg.num_parallel_reads,
                skip_bad_records=cfg.skip_corrupt_records)

  def check_records(self, plan):
    """The first record of every file (cheap, always), or every record
    (--validate_data). A bad record further into a file is found while training,
    which then stops and names it (locate_bad_record)."""
    cfg = plan.config
    groups = [('--train_record_path', plan.train_files)]
    if plan.eval_files:
      groups.append(('--eval_record_path', plan.eval_files))
    fix = ('--model_name=%s reads %s %s records: re-write them so' % (
        cfg.model_name, inspect_lib.describe_compression(self.record_format.compression),
        self.layout))
    for flag, files in groups:
      if cfg.skip_corrupt_records:
        for path in files:  # A file that is not TFRecords at all is not a bad record.
          inspect_lib.check_readable(path, self.record_format.compression, fix)
      else:
        inspect_lib.check_first_records(files, self.layout, self.record_checker(plan),
                                        flag, fix=fix)
    if cfg.validate_data:
      for flag, files in groups:
        self._validate(plan, flag, files)

  def _validate(self, plan, flag, files):
    console.line('Validating %d %s files (--validate_data)...' % (len(files), flag))
    report = inspect_lib.inspect_files(files, self.layout, self.record_format.compression,
                                       checker=self.record_checker(plan))
    for text in report.lines():
      console.line('  ' + text)
    if report.bad and not plan.config.skip_corrupt_records:
      raise report.error(SKIP_ADVICE)
    if report.bad:
      console.line('warning: training without the %d bad records of %s '
                   '(--skip_corrupt_records).' % (report.num_bad, flag))

  def locate_bad_record(self, plan):
    """'file record i: problem' of the first bad record, or None (a full read)."""
    for files in (plan.train_files, plan.eval_files or []):
      found = inspect_lib.first_bad_record(files, self.layout, self.record_checker(plan))
      if found:
        return found.text()
    return None

  def serving_input_fn(self, plan):
    """The --serving_input receiver, among those the layout registers."""
    return serving.make_serving_input_fn(plan.spec, plan.config.serving_input,
                                         **self.serving_params(plan))

  def export_plan(self, plan, checkpoint, scratch):
    """(plan, checkpoint) an export builds instead of plan's model and checkpoint
    (a fine-tuned model's adapters folded into its weights), or None."""
    del plan, checkpoint, scratch
    return None

  def export_assets(self, plan, directory):
    """Writes the warm-up requests every export ships; returns assets_extra.

    directory/tf_serving_warmup_requests is the source the Estimator copies into each
    version's assets.extra/.
    """
    return exporters.write_warmup_file(plan.spec, plan.config.serving_input,
                                       os.path.join(directory, WARMUP_FILE),
                                       **self.serving_params(plan))
