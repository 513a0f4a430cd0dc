"""Shared test helpers: tiny, learnable image records written in tmp_path."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
import tensorflow as tf



def pytest_configure(config):
  # tf_slim builds its layers through TF's bundled legacy Keras layers, which warn on
  # every call; the warnings say nothing about this project.
  config.addinivalue_line('filterwarnings',
                          r'ignore::UserWarning:tensorflow\.python\.keras.*')
  config.addinivalue_line('filterwarnings', 'ignore::FutureWarning:google.*')


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLORS = ((220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40))


def class_image(label, size, rng):
  """A noisy image whose dominant colour is its class: learnable in a few steps."""
  base = np.array(COLORS[label % len(COLORS)], np.float32)
  noise = rng.normal(0, 25, (size, size, 3))
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def image_example(encoded, label, height, width, fmt=b'png'):
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[fmt])),
      'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_image_records(path, labels, size=32, seed=0, fmt='png'):
  """One TFRecord file with one image per label; returns the path."""
  rng = np.random.RandomState(seed)
  with tf.io.TFRecordWriter(path) as writer:
    for label in labels:
      pixels = class_image(label, size, rng)
      if fmt == 'png':
        encoded = tf.io.encode_png(pixels).numpy()
      else:
        encoded = tf.io.encode_jpeg(pixels, quality=95).numpy()
      writer.write(image_example(encoded, int(label), size, size,
                                 fmt.encode()).SerializeToString())
  return path


@pytest.fixture
def image_data(tmp_path):
  """train-0000{0,1}-of-00002 and validation-00000-of-00001 records + labels.txt."""
  data = tmp_path / 'data'
  data.mkdir()
  num_classes = 3
  for shard in range(2):
    labels = [i % num_classes for i in range(48)]
    write_image_records(str(data / ('train-%05d-of-00002.tfrecord' % shard)), labels,
                        seed=shard, fmt='png' if shard == 0 else 'jpeg')
  write_image_records(str(data / 'validation-00000-of-00001.tfrecord'),
                      [i % num_classes for i in range(30)], seed=7)
  (data / 'labels.txt').write_text('0:red\n1:green\n2:blue\n')
  return data


def run_cli(args, cwd=REPO, timeout=600):
  """Runs a project command-line entry point; returns the CompletedProcess."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable] + list(args), cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def tree_digest(directory):
  """Hash of every path and file's bytes under directory (what 'unchanged' means)."""
  digest = hashlib.sha256()
  for root, dirs, files in sorted(os.walk(directory)):
    dirs.sort()
    for name in sorted(files) + ['<dir>%s' % d for d in dirs]:
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, directory).encode())
      if not name.startswith('<dir>'):
        with open(path, 'rb') as f:
          digest.update(f.read())
  return digest.hexdigest()
