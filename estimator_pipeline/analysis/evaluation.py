"""The test-set report of a trained model_dir: slim's eval_image_classifier.py and
basenji's basenji_test.py in one command, for both record layouts.

  python -m export.evaluate --model_dir=runs/x --checkpoint=best \
      --records='data/test-*' --output_dir=report/

The model is rebuilt from model_dir/config.json as `python -m export` rebuilds it, and
the records are read by the task of its layout with the input_fn training evaluated
with. Two passes over the records:
1. the Estimator's own evaluate, with the model_fn training used: its numbers are the
   ones training logged under eval/ for the same checkpoint and records;
2. the Estimator's predict, each prediction carrying its label, feeding the report
   the task of the model's layout hands out (Task.test_report, models/report.py):
   the per-class or per-target tables and figures.
The Estimator works in a scratch folder: nothing is written to model_dir, and
--output_dir is written only when both passes are done.

A sequence model without a model_dir (an export, or basenji's params file with its
.h5) is evaluated by sequence_evaluation.py.
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Dict, List

import tensorflow as tf

from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import exporting
from estimator_pipeline.train import plan as plan_lib

# The feature under which the predict pass carries each record's label.
LABEL_KEY = 'evaluate/label'
# The evaluation metrics the report adds (vectors, e.g. per target) start with this.
REPORT_PREFIX = 'report/'


@dataclasses.dataclass
class Result:
  checkpoint: str
  metrics: Dict[str, object]  # what the Estimator's evaluate returned
  paths: List[str]  # the files written under output_dir
  lines: List[str]  # what the report says on the console


def evaluate(model_dir, records, output_dir, checkpoint='latest', progress=True):
  """Evaluates a checkpoint of model_dir on the records; writes the report.

  Args:
    model_dir: a directory train.py trained.
    records: a glob or comma list of test records in the layout the model reads.
    output_dir: where the report goes (created).
    checkpoint: 'latest', 'best' (the run's --early_stopping_metric) or a path.
    progress: show the progress display.

  Returns:
    a Result.
  """
  if not model_dir:
    raise UserError('--model_dir is empty: name the directory train.py trained, e.g. '
                    '--model_dir=runs/flowers.')
  if not output_dir:
    raise UserError('--output_dir is empty: name the folder of the report, e.g. '
                    '--output_dir=report/.')
  test_files = files.list_files(records, '--records')
  scratch = tempfile.mkdtemp(prefix='evaluate-')
  try:
    # The ensemble is an export option; training evaluated the plain model.
    cfg = exporting.load_config(model_dir, overrides=dict(ensemble_rc=False,
                                                          ensemble_shifts='0'))
    plan = plan_lib.plan_for_export(cfg, model_dir, scratch, eval_files=test_files)
    ckpt = exporting.choose_checkpoint(
        model_dir, checkpoint, cfg.early_stopping_metric or
        plan.task.default_metric(plan), cfg.early_stopping_mode)
    exporting.check_checkpoint(plan, ckpt)
    plan = dataclasses.replace(plan, config=cfg.replace(
        model_dir=os.path.join(scratch, 'run')))
    report = plan.task.test_report(plan, test_files)
    estimator = estimator_lib.build_estimator(
        plan, extra_eval_metrics=_prefixed(report.eval_metrics))
    input_fn = plan.task.eval_input_fn(plan)
    try:
      metrics = _evaluate(estimator, input_fn, ckpt, progress)
      _predict(estimator, input_fn, ckpt, report, progress)
    except tf.errors.OpError as e:
      raise UserError('--records=%s cannot be evaluated: %s' % (
          records, short_tf_message(e))) from None
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  files.make_output_dir(output_dir)
  title = '%s, step %d, %s' % (os.path.basename(os.path.normpath(model_dir)),
                               files.checkpoint_step(ckpt), records)
  values = {k[len(REPORT_PREFIX):]: metrics.pop(k) for k in list(metrics)
            if k.startswith(REPORT_PREFIX)}
  paths, lines = report.write(output_dir, title, values)
  lines.insert(0, 'Test %s: %s' % (os.path.basename(ckpt),
                                   console.metrics_text(metrics)))
  return Result(checkpoint=ckpt, metrics=metrics, paths=paths, lines=lines)


class _ProgressHook(tf.estimator.SessionRunHook):
  """Counts the batches of an evaluation on the one progress display."""

  def __init__(self, meter):
    self._meter = meter

  def after_run(self, run_context, run_values):
    del run_context, run_values
    self._meter.update()


def _prefixed(eval_metrics):
  """The report's metrics under REPORT_PREFIX, beside the model's own: the per-target
  values come from the same ops on the same batches as the evaluation's."""
  return lambda outputs, labels: {REPORT_PREFIX + name: value for name, value in
                                  eval_metrics(outputs, labels).items()}


def _evaluate(estimator, input_fn, checkpoint, progress):
  with console.Progress(0, 'evaluating', unit='batch', enabled=progress) as meter:
    return estimator.evaluate(input_fn, checkpoint_path=checkpoint,
                              hooks=[_ProgressHook(meter)])


def _predict(estimator, input_fn, checkpoint, report, progress):
  """Feeds report.add(labels, predictions) a batch at a time."""
  with_labels = tf.estimator.Estimator(model_fn=_labels_in_predictions(
      estimator.model_fn), config=estimator.config)

  def labelled_input_fn():
    dataset = input_fn()
    return dataset.map(lambda features, labels: dict(features, **{LABEL_KEY: labels}))

  with console.Progress(0, 'predicting', unit='batch', enabled=progress) as meter:
    for batch in with_labels.predict(labelled_input_fn, checkpoint_path=checkpoint,
                                     yield_single_examples=False):
      report.add(batch.pop(LABEL_KEY), batch)
      meter.update()


def _labels_in_predictions(model_fn):
  """The model_fn, with each record's label passed through to its prediction."""

  def fn(features, labels, mode, config):
    features = dict(features)
    label = features.pop(LABEL_KEY)
    spec = model_fn(features, labels, mode, config)
    # The export outputs stay as they are: predict() reads only `predictions`.
    return spec._replace(predictions=dict(spec.predictions, **{LABEL_KEY: label}))

  return fn
