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

import os

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


class Task:
  """One record layout's part of a run. Subclasses fill in the abstract methods."""

  # The record layout (records/format.py) this task trains on.
  layout = ''

  @property
  def record_format(self):
    return format_lib.get(self.layout)

  # What a subclass says about its layout.

  def prepare(self, plan):
    """Reads what the run needs to know from the records and the flags (never
    writing): sets plan.num_classes, plan.image_size and plan.data, and may set
    plan.variables / plan.trainable when it had to build the model to learn them."""
    raise NotImplementedError

  def prepare_export(self, plan, model_dir, scratch):
    """Like prepare, for exporting a trained model_dir without its records; files
    an export needs and model_dir lacks may be written to the folder scratch."""
    raise NotImplementedError

  def prepare_evaluation(self, plan, model_dir, files, scratch):
    """Like prepare_export, then learns from the records `files` (a test set) what
    evaluating on them needs, refusing records the model cannot read."""
    self.prepare_export(plan, model_dir, scratch)
    self.check_eval_records(plan, files)

  def check_eval_records(self, plan, files, flag='--records'):
    """The first record of every file of a test set, as this model reads them."""
    inspect_lib.check_first_records(
        files, self.layout, self.record_checker(plan), flag,
        fix='pass test records of the layout the model was trained on (%s %s '
        'records)' % (inspect_lib.describe_compression(self.record_format.compression),
                      self.layout))

  def model_params(self, plan):
    """The keyword arguments the Model is built with."""
    raise NotImplementedError

  def example_inputs(self, plan):
    """(features, labels) placeholders of one batch, to build the model on."""
    raise NotImplementedError

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
    """The evaluation metric that judges the best checkpoint by default."""
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

  def export_assets(self, plan, directory):
    """Writes the warm-up requests every export ships; returns assets_extra.

    directory/tf_serving_warmup_requests is the source the Estimator copies into each
    version's assets.extra/.
    """
    return exporters.write_warmup_file(plan.spec, plan.config.serving_input,
                                       os.path.join(directory, WARMUP_FILE),
                                       **self.serving_params(plan))

  def model_variables(self, plan):
    """({name: shape}, trainable names) of the model, from a throw-away graph."""
    with tf.Graph().as_default():
      features, _ = self.example_inputs(plan)
      model = plan.spec.build(is_training=True, num_classes=plan.num_classes,
                              **plan.model_params)
      model.predict(model.preprocess(features))
      return ({v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()},
              {v.op.name for v in tf.compat.v1.trainable_variables()})

  def metric_names(self, plan):
    """The evaluation metrics the model reports, from a throw-away graph."""
    with tf.Graph().as_default():
      features, labels = self.example_inputs(plan)
      model = plan.spec.build(is_training=False, num_classes=plan.num_classes,
                              **plan.model_params)
      prediction = model.predict(model.preprocess(features))
      names = set(model.accuracy(model.postprocess(prediction), labels))
      names.update(model.loss(prediction, labels))
    # model_fn reports these besides the model's own.
    return sorted(names | {'loss', 'regularization_loss'})
