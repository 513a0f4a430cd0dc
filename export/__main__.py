r"""Export a trained model without training: a new SavedModel version for TF Serving.

  python -m export --model_dir=runs/x --checkpoint=best --export_dir=out/ \
      [--serving_input=encoded_image|image_tensor|tf_example]
  python -m export --params_file=params.json --checkpoint=model_best.h5 \
      --export_dir=out/ [--head=head_human] [--ensemble_rc --ensemble_shifts=1,0,-1]

Reads the model from --model_dir/config.json, restores --checkpoint (best: the best
evaluation by the run's --early_stopping_metric among the kept checkpoints; latest; or
a checkpoint path) and writes --export_dir/<integer version>/ with saved_model.pb,
variables/, assets/ and assets.extra/tf_serving_warmup_requests. A sequence model can
instead be built from basenji's --params_file, its weights read from the .h5 basenji's
or baskerville's SeqNN.save wrote (or any checkpoint of that model); --targets_file
gives it a stranded targets table's strand pairs (Borzoi's params files have none).
Bad input prints one line and exits with 2.
"""

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
import shutil
import tempfile

from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import strands
from estimator_pipeline.core import errors
from estimator_pipeline.train import exporting
from flags import common
from flags import export as export_flags

common.define('model_dir', 'Directory that train.py trained: its config.json says '
              'which model to build and its checkpoints hold the weights. Empty: a '
              'sequence model built from --params_file.')
export_flags.define_serving_input_flag()
absl_flags.DEFINE_string('checkpoint', 'latest', 'Which checkpoint to export: latest, '
                         'best (the best evaluation by the run\'s '
                         '--early_stopping_metric among the kept checkpoints), a '
                         'checkpoint path, or the .h5 basenji\'s SeqNN.save wrote.')
absl_flags.DEFINE_string('export_dir', '', 'Directory of versions to add a new integer '
                         'version to; empty means <model_dir>/export/manual.')
common.define('params_file', "Without --model_dir: basenji's (or baskerville's) JSON "
              'params file of the sequence model to export.')
common.define('head', 'With --params_file: which head* of the file to build; empty '
              "takes basenji's, the first in natural order.")
common.define('gelu', 'With --params_file: tanh (basenji 0.6 and later, baskerville) '
              'or sigmoid (basenji 0.5.1 and earlier) gelu.')
common.define_own(absl_flags.DEFINE_string, 'targets_file', '', 'With --params_file: '
                  "a targets table whose strand_pair column (Borzoi's) pairs the "
                  "strands of the head's outputs, for a params file that has no "
                  'strand_pair: the export swaps them in its --ensemble_rc ensemble '
                  'and carries them for ensembles around it.')
export_flags.define_ensemble_flags()

# Flags that, typed, replace what --model_dir's config.json says.
_OVERRIDES = ('ensemble_rc', 'ensemble_shifts')
_PARAMS_MODE = ('params_file', 'head', 'gelu') + _OVERRIDES


def main(argv):
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every option is a --flag.'
                           % argv[1])
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  if FLAGS.model_dir and FLAGS.params_file:
    raise errors.UserError('--model_dir and --params_file are both set: a model_dir '
                           'holds its own params.json; pass one of them.')
  if FLAGS.model_dir:
    for name in ('head', 'gelu'):
      if FLAGS[name].present:
        raise errors.UserError('--%s is read with --params_file; --model_dir=%s keeps '
                               'the %s it was trained with: leave it out.'
                               % (name, FLAGS.model_dir, name))
    overrides = {n: FLAGS[n].value for n in _OVERRIDES if FLAGS[n].present}
  else:
    overrides = {n: FLAGS[n].value for n in _PARAMS_MODE}
  if FLAGS.targets_file and FLAGS.model_dir:
    raise errors.UserError('--targets_file is read with --params_file; --model_dir=%s '
                           'keeps the strand pairs it was trained with: leave it out.'
                           % FLAGS.model_dir)
  scratch = tempfile.mkdtemp(prefix='export-params-')
  try:
    if FLAGS.targets_file:
      overrides['params_file'] = strands.params_with_table(
          FLAGS.params_file, FLAGS.head, FLAGS.targets_file, scratch)
      overrides['head'] = ''  # the copy holds the chosen head only
    path, checkpoint = exporting.export(FLAGS.model_dir, FLAGS.checkpoint,
                                         FLAGS.export_dir, FLAGS.serving_input,
                                         overrides)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  console.line('Exported %s from %s.' % (path, checkpoint))
  print(path)


if __name__ == '__main__':
  app.run(lambda argv: errors.run_main(main, argv), flags_parser=flags.parse_or_exit)
