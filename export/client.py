r"""A TF Serving REST client: sends image files to a served model and prints its answers.

  docker run -p 8501:8501 -v $PWD/runs/x/export/best:/models/x -e MODEL_NAME=x \
      tensorflow/serving
  python -m export.client --url=http://localhost:8501/v1/models/x --images='photos/*.jpg'

Posts the images to <url>:predict in batches of --batch_size, in the form of the
export's --serving_input, and prints one line per image: file, the best class (name
when the model has labels.txt), its probability, and the top-k. --method=classify
posts tf.Examples to <url>:classify (exports made with --serving_input=tf_example) and
prints the best (class, score); --raw prints each answer as the server sent it
(estimator_pipeline/analysis/rest_client.py). An unreachable server or an error
answer prints one line and exits with 2.
"""

import glob
import os

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import rest_client
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main


def define_flags():
  """The command line's flags (defined by __main__ only, so modules import freely)."""
  absl_flags.DEFINE_string('url', '', 'The model\'s REST address, '
                           'http://HOST:8501/v1/models/NAME (optionally /versions/N).')
  absl_flags.DEFINE_string('images', '', 'Glob or comma list of JPEG/PNG files to send.')
  absl_flags.DEFINE_enum('method', 'predict', ['predict', 'classify'], 'TF Serving API '
                         'to call: predict (serving_default) or classify (the classify '
                         'signature of a tf_example export).')
  absl_flags.DEFINE_enum('serving_input', 'encoded_image',
                         ['encoded_image', 'tf_example', 'image_tensor'],
                         'What the served model\'s serving_default takes (the '
                         '--serving_input it was exported with); --method=predict only.')
  absl_flags.DEFINE_string('signature_name', '', 'Signature to call; empty means '
                           'serving_default for predict and classify for classify.')
  absl_flags.DEFINE_integer('batch_size', 16, 'Images per request.')
  absl_flags.DEFINE_float('timeout', 60.0, 'Seconds to wait for each answer.')
  absl_flags.DEFINE_bool('raw', False, 'Print each JSON answer as the server sent it.')


def main(argv):
  if len(argv) > 1:
    raise UserError('unexpected argument %r: every option is a --flag.' % argv[1])
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  if not FLAGS.url:
    raise UserError('--url is empty: pass http://HOST:8501/v1/models/NAME.')
  if FLAGS.batch_size <= 0:
    raise UserError('--batch_size=%d must be positive.' % FLAGS.batch_size)
  paths = sorted(p for part in FLAGS.images.split(',') if part
                 for p in glob.glob(part) if os.path.isfile(p))
  if not paths:
    raise UserError('--images=%r matches no file.' % FLAGS.images)
  rest_client.run(FLAGS.url, paths, FLAGS.method, FLAGS.serving_input,
                  FLAGS.signature_name, FLAGS.batch_size, FLAGS.timeout, FLAGS.raw)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
