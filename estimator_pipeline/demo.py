r"""`make demo`: the whole pipeline on an embedded dataset, with no download.

  python -m estimator_pipeline.demo --output_dir=demo_out

1. scikit-learn's bundled digits (1797 8x8 images) are written out as a folder of PNG
   and JPEG files of mixed sizes, grayscale and colour, one sub-folder per class;
2. `python -m estimator_pipeline.records images` turns the folder into TFRecords;
3. `python train.py` trains slim's cifarnet on them and exports SavedModels;
4. `python -m export.predict` classifies one held-out image through the exported
   serving_default signature, as TF Serving would.

Each step is the command a user runs, in a subprocess, printed before it runs.
"""

import os
import shlex
import subprocess
import sys

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
import numpy as np
from PIL import Image

import flags
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from estimator_pipeline.records import image_format

absl_flags.DEFINE_string('output_dir', 'demo_out', 'Directory for the image folder, '
                         'the records and the run; it is replaced if it exists.')
absl_flags.DEFINE_integer('num_steps', 1500, 'Training steps of the demo run.')
absl_flags.DEFINE_float('target_accuracy', 0.97, 'Validation accuracy the demo must '
                        'reach; it exits with status 1 below it.')

NAMES = ('zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight',
         'nine')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_digits_folder(image_dir, seed=0):
  """Writes sklearn's digits as <image_dir>/<name>/<index>.{png,jpg}; returns paths."""
  from sklearn.datasets import load_digits
  digits = load_digits()
  rng = np.random.RandomState(seed)
  paths = []
  for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
    folder = os.path.join(image_dir, NAMES[label])
    os.makedirs(folder, exist_ok=True)
    gray = (pixels * (255.0 / 16.0)).astype(np.uint8)
    size = int(rng.randint(16, 49))  # mixed sizes, as a real folder has
    image = Image.fromarray(gray, 'L').resize((size, size), Image.BILINEAR)
    if index % 3 == 0:  # some colour images: white ink on a tinted background
      tint = rng.randint(0, 60, 3)
      image = Image.merge('RGB', [image.point(lambda v, t=t: min(255, v + t))
                                  for t in tint])
    ext = 'png' if index % 2 == 0 else 'jpg'
    path = os.path.join(folder, '%04d.%s' % (index, ext))
    image.save(path, quality=95) if ext == 'jpg' else image.save(path)
    paths.append(path)
  return paths


def _run(args):
  command = [sys.executable] + args
  console.line('$ ' + ' '.join(shlex.quote(a) for a in ['python'] + args))
  proc = subprocess.run(command, cwd=REPO)
  if proc.returncode:
    raise SystemExit(proc.returncode)


def main(argv):
  del argv
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  out = files.fresh_dir(FLAGS.output_dir)
  image_dir = os.path.join(out, 'digits')
  data_dir = os.path.join(out, 'data')
  model_dir = os.path.join(out, 'run')
  paths = write_digits_folder(image_dir)
  console.line('Wrote %d digit images (PNG and JPEG, 16 to 48 pixels) to %s'
               % (len(paths), image_dir))

  _run(['-m', 'estimator_pipeline.records', 'images', '--image_dir=' + image_dir,
        '--output_dir=' + data_dir, '--validation_fraction=0.15', '--num_shards=2',
        '--seed=0'])
  _run(['train.py', '--model_dir=' + model_dir,
        "--train_record_path=" + os.path.join(data_dir, 'train-*'),
        '--eval_record_path=' + os.path.join(data_dir, 'validation-*'),
        '--model_name=cifarnet', '--image_size=32', '--norandom_flip',
        '--batch_size=64', '--num_steps=%d' % FLAGS.num_steps,
        '--learning_rate=0.05', '--save_checkpoints_steps=%d' % (FLAGS.num_steps // 5),
        '--log_every_steps=100'])
  # One image from the validation split, never seen in training.
  held_out = _first_validation_file(data_dir, image_dir)
  _run(['-m', 'export.predict', '--saved_model=' + os.path.join(model_dir, 'export',
                                                                  'best'),
        '--images=' + held_out])

  accuracy = _final_accuracy(model_dir)
  verdict = 'reached' if accuracy >= FLAGS.target_accuracy else 'MISSED'
  console.line('Validation accuracy %.4f: %s the goal of %.2f.'
               % (accuracy, verdict, FLAGS.target_accuracy))
  if accuracy < FLAGS.target_accuracy:
    raise SystemExit(1)


def _first_validation_file(data_dir, image_dir):
  import tensorflow as tf
  path = sorted(tf.io.gfile.glob(os.path.join(data_dir, 'validation-*')))[0]
  for raw in tf.data.TFRecordDataset(path).take(1):
    example = tf.train.Example.FromString(raw.numpy())
    name = example.features.feature[image_format.KEYS['filename']].bytes_list.value[0]
    name = name.decode()
    return os.path.join(image_dir, name)
  raise UserError('no validation record in %s' % data_dir)


def _final_accuracy(model_dir):
  history = files.eval_history(model_dir)
  return history[max(history)].get('accuracy', 0.0) if history else 0.0


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
