r"""Predict with an exported SavedModel through its serving_default signature.

  python -m export.predict --saved_model=runs/x/export/best --images='photos/*.jpg'

--saved_model takes a version directory or its parent (the newest version is used).
Prints one line per image: file, class id, class name (when exported), probability.
"""

import glob
import os
import sys

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
import tensorflow as tf

import flags
from estimator_pipeline.errors import UserError
from estimator_pipeline.errors import run_main
from export import serving

absl_flags.DEFINE_string('saved_model', '', 'SavedModel version directory, or the '
                         'directory of versions whose newest one is used.')
absl_flags.DEFINE_string('images', '', 'Glob or comma list of JPEG/PNG files to predict.')
absl_flags.DEFINE_integer('batch_size', 32, 'Images sent to the model per call.')


def resolve_version(path):
  """A SavedModel version directory, or the newest integer version below path."""
  if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
    return path
  if tf.io.gfile.isdir(path):
    versions = sorted((int(d.strip('/')) for d in tf.io.gfile.listdir(path)
                       if d.strip('/').isdigit()))
    for version in reversed(versions):
      candidate = os.path.join(path, str(version))
      if tf.io.gfile.exists(os.path.join(candidate, 'saved_model.pb')):
        return candidate
  raise UserError('--saved_model=%s holds no saved_model.pb nor integer version '
                  'directories with one.' % path)


def predict_images(saved_model, paths, batch_size=32):
  """Yields (path, outputs dict of numpy values for that image) per image."""
  loaded = tf.saved_model.load(resolve_version(saved_model))
  signature = loaded.signatures['serving_default']
  for start in range(0, len(paths), batch_size):
    chunk = paths[start:start + batch_size]
    encoded = [tf.io.read_file(p) for p in chunk]
    outputs = signature(**{serving.IMAGE_BYTES_KEY: tf.stack(encoded)})
    for i, path in enumerate(chunk):
      yield path, {k: v[i].numpy() for k, v in outputs.items()}


def main(argv):
  del argv
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  paths = sorted(p for part in FLAGS.images.split(',') if part
                 for p in glob.glob(part))
  if not paths:
    raise UserError('--images=%r matches no file.' % FLAGS.images)
  for path, out in predict_images(FLAGS.saved_model, paths, FLAGS.batch_size):
    cls = int(out['classes'])
    name = out.get('class_names', b'').decode() if 'class_names' in out else ''
    prob = float(out['probabilities'][cls])
    sys.stdout.write('%s\t%d\t%s\t%.4f\n' % (path, cls, name, prob))


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
