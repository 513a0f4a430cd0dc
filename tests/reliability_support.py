"""What the reliability tests share: bad records of every kind, a short training run as
a real process, and mounts.

  .venv/bin/python -m pytest -q tests/test_reliability.py tests/test_crash_safety.py \
      tests/test_bad_records.py
"""

import functools
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

import conftest
from conftest import image_config
from conftest import image_example
from conftest import write_image_data
from conftest import write_image_records
import seq_helpers

# A short run without evaluation: 10 steps of 8, a checkpoint every 5.
small_run = functools.partial(image_config, evaluate=False, num_steps=10, batch_size=8,
                              save_checkpoints_steps=5, log_every_steps=5,
                              num_classes=3)


def write_records(path, examples, options=None):
  with tf.io.TFRecordWriter(str(path), options=options) as writer:
    for example in examples:
      writer.write(example if isinstance(example, bytes) else
                   example.SerializeToString())
  return str(path)


def good_records(path):
  return [r.numpy() for r in tf.data.TFRecordDataset(str(path))]


def corrupt_middle(good_path, bad_path):
  """A copy of good_path whose third record has a flipped byte (bad CRC)."""
  records = good_records(good_path)
  offset = sum(16 + len(r) for r in records[:2]) + 12 + len(records[2]) // 2
  data = bytearray(open(good_path, 'rb').read())
  data[offset] ^= 0xFF
  open(bad_path, 'wb').write(bytes(data))
  return str(bad_path)


def mount(args, target):
  proc = subprocess.run(['mount'] + args + [str(target)], capture_output=True,
                        text=True)
  return proc.returncode == 0


def umount(target):
  subprocess.run(['umount', str(target)], capture_output=True)


def write_bad_data(root):
  """Good image records (root/data) plus one file per kind of bad data (root/bad), and
  a foreign checkpoint (root/lenet.ckpt)."""
  data = write_image_data(root / 'data', train=(24, 24), validation=12,
                          train_formats=('png',))
  good = data / 'train-00000-of-00002.tfrecord'
  bad = root / 'bad'
  bad.mkdir()
  (bad / 'labels.txt').write_text((data / 'labels.txt').read_text())
  (bad / 'random.tfrecord').write_bytes(np.random.RandomState(0).bytes(3000))
  write_records(bad / 'zlib.tfrecord', good_records(good), options='ZLIB')
  write_records(bad / 'empty.tfrecord', [])
  write_records(bad / 'textjpeg.tfrecord',
                 [image_example(b'<html>not a picture</html>', i % 3, 32, 32, b'jpeg')
                  for i in range(6)])
  as_string = []
  for i, raw in enumerate(good_records(good)[:6]):
    example = tf.train.Example.FromString(raw)
    label = example.features.feature['image/class/label']
    label.Clear()
    label.bytes_list.value.append(['red', 'green', 'blue'][i % 3].encode())
    as_string.append(example)
  write_records(bad / 'labelstr.tfrecord', as_string)
  write_image_records(str(bad / 'label7.tfrecord'), [0, 1, 2, 7, 0, 1], seed=3)
  corrupt_middle(str(good), bad / 'corrupt.tfrecord')
  (bad / 'labels_bad.txt').write_text('red\ngreen\nblue\n')
  # basenji params files: a JSON syntax error (a trailing comma), an unknown block.
  params = json.loads(json.dumps(seq_helpers.TINY_PARAMS))
  (bad / 'params_syntax.json').write_text(json.dumps(params, indent=1)[:-2] + ',\n}')
  params['model']['trunk'][0]['name'] = 'conv_blok'
  (bad / 'params_block.json').write_text(json.dumps(params))
  with tf.Graph().as_default():
    tf.compat.v1.get_variable('LeNet/conv1/weights', [5, 5, 1, 32])
    tf.compat.v1.get_variable('LeNet/fc3/weights', [3136, 1024])
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      tf.compat.v1.train.Saver().save(sess, str(root / 'lenet.ckpt'))
  return root


PROGRESS = re.compile(r'step (\d+)/')


def train_cmd(model_dir, data, *extra):
  return [sys.executable, 'train.py', '--model_dir=%s' % model_dir,
          '--train_record_path=%s' % (data / 'train-*.tfrecord'),
          '--model_name=cifarnet', '--batch_size=8', '--log_every_steps=5',
          '--learning_rate=0.02', '--norandom_flip'] + list(extra)


def popen(cmd, log_path):
  """Starts cmd ([sys.executable, program, args...]) with its output in log_path."""
  assert cmd[0] == sys.executable, cmd
  return conftest.start_cli(cmd[1:], log_path)


def read(path):
  with open(path) as f:
    return f.read()


def wait_until(predicate, proc, timeout=600, poll=0.02):
  """True once predicate() holds; False if proc ended first or time ran out."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    if proc.poll() is not None:
      return predicate()
    time.sleep(poll)
  return False


