r"""How good is a trained model on a test set? The report for both kinds of model.

  python -m export.evaluate --model_dir=runs/flowers --checkpoint=best \
      --records='data/test-*.tfrecord' --output_dir=report/
  python -m export.evaluate --model_dir=runs/cage \
      --records='data/tfrecords/test-*.tfr' --output_dir=report/
  python -m export.evaluate --params_file=params.json --checkpoint=model_best.h5 \
      --ensemble_rc --records='data/tfrecords/test-*.tfr' --output_dir=report/

slim's eval_image_classifier.py and basenji's basenji_test.py in one command. The model
is rebuilt from --model_dir/config.json and restored from --checkpoint; the records
are read as training read its evaluation records, and the numbers equal the eval/
metrics training logged for the same checkpoint and records. The report:

- an image classifier: metrics.tsv (accuracy, top-5 accuracy, per-class precision,
  recall and accuracy) and confusion_matrix.png with the class names on both axes;
- a sequence model: acc.tsv (basenji's acc.txt columns: index, pearsonr, r2,
  identifier, description; auroc and auprc with a bce loss) and scatter.png of
  predicted against measured for the best, median and worst target.

A sequence model can also come without its model_dir, as --saved_model (an export) or
as basenji's --params_file with --checkpoint (its .h5, a model_dir or a checkpoint),
with --ensemble_rc / --ensemble_shifts: then its predictions are scored here (Pearson R
and R2 per target; there are no training metrics to equal).
Bad input prints one line and exits with 2, and nothing is written.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import evaluation
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import sequence_evaluation
from estimator_pipeline.core import errors
from flags import analysis as analysis_flags
from flags import common

common.define('model_dir', 'Directory that train.py trained: its config.json says '
              'which model to build and its checkpoints hold the weights.')
common.define_own(absl_flags.DEFINE_string, 'checkpoint', 'latest',
                  'Which checkpoint to evaluate: latest, best (the best evaluation by '
                  'the run\'s --early_stopping_metric among the kept checkpoints), or '
                  'a checkpoint path; with --params_file, the .h5 basenji\'s '
                  'SeqNN.save wrote, a model_dir or a checkpoint.')
analysis_flags.define_model_flags()
common.define_own(absl_flags.DEFINE_string, 'records', '',
                  'Glob or comma list of the test records, in the layout the model '
                  'was trained on, e.g. data/test-*.tfrecord.')
common.define_own(absl_flags.DEFINE_string, 'targets_file', '', 'With --saved_model '
                  'or --params_file: a targets table whose strand_pair column '
                  '(Borzoi\'s) pairs the strands of the model\'s outputs for the '
                  'reverse-complement ensemble; empty takes the targets.txt beside '
                  'the records when it has that column.')
common.define_own(absl_flags.DEFINE_string, 'output_dir', '',
                  'Folder of the report (created): metrics.tsv and '
                  'confusion_matrix.png, or acc.tsv and scatter.png.')

# Flags of a model given without its model_dir.
_MODEL_FLAGS = ('saved_model', 'params_file', 'head', 'gelu', 'ensemble_rc',
                'ensemble_shifts', 'batch_size', 'targets_file')


def main(argv):
  FLAGS = common.command_flags(argv)  # pylint: disable=invalid-name
  if not FLAGS.records:
    raise errors.UserError('--records is empty: pass a glob of the test records, e.g. '
                           "--records='data/test-*'.")
  if FLAGS.model_dir:
    for name in _MODEL_FLAGS:
      if FLAGS[name].present:
        raise errors.UserError(
            '--%s is read without --model_dir (a sequence model as --saved_model or '
            '--params_file); --model_dir=%s is evaluated as training evaluated it: '
            'leave --%s out.' % (name, FLAGS.model_dir, name))
    result = evaluation.evaluate(FLAGS.model_dir, FLAGS.records, FLAGS.output_dir,
                                 FLAGS.checkpoint)
  elif FLAGS.saved_model or FLAGS.params_file:
    kwargs = analysis_flags.model_kwargs()
    kwargs['targets_file'] = (kwargs['targets_file'] or
                              sequence_evaluation.stranded_table(FLAGS.records))
    model = model_source.load(takes_model_dir=True, **kwargs)
    result = sequence_evaluation.evaluate_model(model, FLAGS.records,
                                                FLAGS.output_dir)
  else:
    raise errors.UserError('--model_dir is empty: name the directory train.py '
                           'trained, e.g. --model_dir=runs/flowers (or a sequence '
                           'model as --saved_model=DIR or --params_file with '
                           '--checkpoint).')
  for text in result.lines:
    console.line(text)
  for path in result.paths:
    print(path)


if __name__ == '__main__':
  app.run(lambda argv: errors.run_main(main, argv), flags_parser=flags.parse_or_exit)
