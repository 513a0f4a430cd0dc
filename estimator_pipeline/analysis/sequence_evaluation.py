r"""The test-set report of a sequence model given without its model_dir: an export
(--saved_model) or basenji's params file with its .h5 (analysis/model_source.py),
with the ensemble it was loaded with:

  python -m export.evaluate --params_file=params.json --checkpoint=model_best.h5 \
      --records='data/tfrecords/test-*.tfr' --output_dir=report/

One pass of its predictions; Pearson R and R2 per target from float64 sums (there are
no training metrics to equal), written as acc.tsv and scatter.png like a model_dir's.
"""

import tensorflow as tf

from estimator_pipeline.analysis import evaluation
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.data import sequence_parse
from estimator_pipeline.models.seqnn import report
from estimator_pipeline.records import sequence_format
from estimator_pipeline.train.tasks import sequence as sequence_task


def stranded_table(records):
  """The targets.txt beside the records when it has Borzoi's strand_pair column (its
  pairs then reach the ensemble, as baskerville's hound_eval.py takes them from the
  data's targets.txt), else ''."""
  try:
    test_files = files.list_files(records, '--records')
  except UserError:
    return ''  # evaluate_model names the problem
  path = sequence_format.file_beside(test_files[0], sequence_format.TARGETS_FILE)
  if path is None:
    return ''
  rows = sequence_format.read_targets_table(path, required=())
  return path if 'strand_pair' in rows[0][1] else ''


def evaluate_model(model, records, output_dir, progress=True):
  """Evaluates a model_source.SequenceModel on basenji records; writes acc.tsv and
  scatter.png. Returns a Result (metrics: the means over targets)."""
  if not output_dir:
    raise UserError('--output_dir is empty: name the folder of the report, e.g. '
                    '--output_dir=report/.')
  test_files = files.list_files(records, '--records')
  layout = sequence_task.records_layout(
      test_files, model.seq_length, model.bins, model.num_targets,
      'the model %s' % model.source)
  parse_fn = sequence_parse.make_sequence_parse_fn(layout, is_training=False)
  dataset = tf.data.TFRecordDataset(
      test_files, compression_type=sequence_format.FORMAT.tf_compression).map(
          parse_fn).batch(model.batch_size)
  test_report = report.SequenceReport(model.num_targets, False, test_files)
  moments = report.TargetMoments(model.num_targets)
  batches = ((labels.numpy(), features['sequence'].numpy())
             for features, labels in dataset)
  try:
    with console.Progress(0, 'predicting', unit='seq', enabled=progress) as meter:
      for labels, preds in model.predict_pairs(batches):
        moments.add(labels, preds)
        test_report.add(labels, {'predictions': preds})
        meter.update(len(labels))
  except tf.errors.OpError as e:
    raise UserError('--records=%s cannot be evaluated: %s' % (
        records, short_tf_message(e))) from None
  values = moments.values()
  files.make_output_dir(output_dir)
  paths, lines = test_report.write(output_dir, '%s, %s' % (model.source, records),
                                   values)
  metrics = {name: float(v.mean()) for name, v in values.items()}
  lines.insert(0, 'Test %s: %s' % (model.source, console.metrics_text(metrics)))
  return evaluation.Result(checkpoint=model.source, metrics=metrics, paths=paths,
                           lines=lines)
