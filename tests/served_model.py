"""The model the serving tests share: one tiny cifarnet run, an export per serving
input, and photos of every class to send them (test_serving*.py, via conftest's
serving_run fixture)."""

import numpy as np
import tensorflow as tf

from conftest import class_image
from conftest import image_config
from conftest import run_cli
from conftest import write_image_data
from estimator_pipeline import train
from estimator_pipeline.records import image_format
from estimator_pipeline.train import exporting as export_lib


NAMES = ('red', 'green', 'blue')


def train_and_export(root):
  """One tiny cifarnet run and an export per serving input (test_serving*.py)."""
  data = write_image_data(root / 'data', train=(48,), validation=12, names=NAMES,
                          seed=1, validation_seed=2, train_formats=('png',),
                          validation_format='jpeg')
  cfg = image_config(data, root / 'run', num_steps=20, save_checkpoints_steps=10)
  result = train.run(cfg)

  # Photos of every class, of other sizes than the records, PNG and JPEG, and one
  # file that is not an image.
  photos = root / 'photos'
  photos.mkdir()
  rng = np.random.RandomState(11)
  labels = {}
  for label in range(3):
    png = photos / ('%d_%s.png' % (label, NAMES[label]))
    png.write_bytes(tf.io.encode_png(class_image(label, 40, rng)).numpy())
    jpg = photos / ('%d_%s.jpg' % (label, NAMES[label]))
    jpg.write_bytes(tf.io.encode_jpeg(class_image(label, 48, rng), quality=95).numpy())
    labels[str(png)] = labels[str(jpg)] = label
  broken = photos / 'broken.jpg'
  broken.write_bytes(b'\xff\xd8\xff not really a jpeg')

  # The export CLI, as a user runs it (a new process), and the library in-process.
  cli = run_cli(['-m', 'export', '--model_dir=' + cfg.model_dir, '--checkpoint=best',
                 '--export_dir=' + str(root / 'served_examples'),
                 '--serving_input=tf_example'])
  assert cli.returncode == 0, cli.stderr[-3000:]
  tensor_dir, tensor_ckpt = export_lib.export(
      cfg.model_dir, 'latest', str(root / 'served_tensors'), 'image_tensor')
  return {
      'cfg': cfg, 'result': result, 'data': data, 'root': root, 'labels': labels,
      'broken': str(broken), 'cli': cli,
      'exports': {'encoded_image': result.exports['final'],
                  'tf_example': cli.stdout.strip().splitlines()[-1],
                  'image_tensor': tensor_dir},
      'checkpoints': {'encoded_image': tf.train.latest_checkpoint(cfg.model_dir),
                      'tf_example': export_lib.choose_checkpoint(cfg.model_dir,
                                                                 'best'),
                      'image_tensor': tensor_ckpt},
  }


def photos(run):
  return sorted(run['labels'])


def example(path):
  data = open(path, 'rb').read()
  return image_format.make_example(
      data, image_format='png' if path.endswith('.png') else 'jpeg')


def decoded(path):
  return tf.io.decode_image(open(path, 'rb').read(), channels=3,
                            expand_animations=False).numpy()
