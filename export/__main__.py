r"""Export a trained model without training: a new SavedModel version for TF Serving.

  python -m export --model_dir=runs/x --checkpoint=best --export_dir=out/ \
      [--serving_input=encoded_image|image_tensor|tf_example]

Reads the model from --model_dir/config.json, restores --checkpoint (best: the lowest
evaluation loss among the kept checkpoints; latest; or a checkpoint path) and writes
--export_dir/<integer version>/ with saved_model.pb, variables/, assets/ and
assets.extra/tf_serving_warmup_requests. Bad input prints one line and exits with 2.
"""

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.core import errors
from estimator_pipeline.train import exporting
from flags import common
from flags import export as export_flags

common.define('model_dir', 'Directory that train.py trained: its config.json says '
              'which model to build and its checkpoints hold the weights.')
export_flags.define_serving_input_flag()
absl_flags.DEFINE_string('checkpoint', 'latest', 'Which checkpoint to export: latest, '
                         'best (lowest evaluation loss among the kept checkpoints), or '
                         'a checkpoint path.')
absl_flags.DEFINE_string('export_dir', '', 'Directory of versions to add a new integer '
                         'version to; empty means <model_dir>/export/manual.')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every option is a --flag.'
                           % argv[1])
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  if not FLAGS.model_dir:
    raise errors.UserError('--model_dir is empty: name the directory train.py '
                           'trained, e.g. --model_dir=runs/flowers.')
  path, checkpoint = exporting.export(FLAGS.model_dir, FLAGS.checkpoint,
                                       FLAGS.export_dir, FLAGS.serving_input)
  console.line('Exported %s from %s.' % (path, checkpoint))
  print(path)


if __name__ == '__main__':
  app.run(lambda argv: errors.run_main(main, argv), flags_parser=flags.parse_or_exit)
