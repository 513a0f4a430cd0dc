"""Tiny basenji sequence records for tests, in both layouts, written in tmp_path."""

import json
import os

import numpy as np
import tensorflow as tf

# A small SeqNN: stride 8 (pool 2 x 4), so 256 bp -> 32 bins.
TINY_PARAMS = {
    'train': {'batch_size': 4, 'loss': 'poisson', 'optimizer': 'adam',
              'learning_rate': 0.01, 'train_epochs_max': 5},
    'model': {
        'seq_length': 256, 'augment_rc': True, 'augment_shift': 1,
        'activation': 'gelu', 'norm_type': 'batch', 'bn_momentum': 0.9,
        'trunk': [
            {'name': 'conv_block', 'filters': 8, 'kernel_size': 7, 'pool_size': 2},
            {'name': 'conv_tower', 'filters_init': 8, 'filters_mult': 1.25,
             'kernel_size': 3, 'pool_size': 2, 'repeat': 2},
            {'name': 'dilated_residual', 'filters': 4, 'rate_mult': 2, 'repeat': 2,
             'dropout': 0.1},
            {'name': 'conv_block', 'filters': 8, 'dropout': 0.05},
        ],
        'head': {'name': 'final', 'units': 2, 'activation': 'softplus'},
    },
}


def example(sequence_bytes, target, target_bytes):
  if target_bytes:
    t = tf.train.Feature(bytes_list=tf.train.BytesList(
        value=[target.astype(np.float16).tobytes()]))
  else:
    t = tf.train.Feature(float_list=tf.train.FloatList(
        value=target.astype(np.float32).ravel()))
  s = tf.train.Feature(bytes_list=tf.train.BytesList(value=[sequence_bytes]))
  return tf.train.Example(features=tf.train.Features(
      feature={'sequence': s, 'target': t}))


def make_examples(n, seq_length=256, pool=8, num_targets=2, seed=0):
  """(base indices [n, L], targets [n, L/pool, N]): coverage = G/C content per bin,
  track 1 the A/T content; learnable by a tiny convolution."""
  rng = np.random.RandomState(seed)
  bases = rng.randint(0, 4, size=(n, seq_length)).astype(np.uint8)
  bases[rng.rand(n, seq_length) < 0.01] = 4  # some N
  bins = seq_length // pool
  gc = np.isin(bases, (1, 2)).reshape(n, bins, pool).mean(-1)
  at = np.isin(bases, (0, 3)).reshape(n, bins, pool).mean(-1)
  targets = np.stack([4 * gc, 2 * at] + [gc] * (num_targets - 2), -1)[..., :num_targets]
  return bases, targets.astype(np.float32)


def one_hot(bases):
  return (bases[..., None] == np.arange(4)).astype(np.uint8)


def write_records(path, bases, targets, layout='new'):
  """layout 'new': uint8 indices + float16 bytes; 'old': one-hot + float list."""
  with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(
      compression_type='ZLIB')) as writer:
    for b, t in zip(bases, targets):
      if layout == 'new':
        ex = example(b.tobytes(), t, True)
      else:
        ex = example(one_hot(b).tobytes(), t, False)
      writer.write(ex.SerializeToString())
  return str(path)


def write_dataset(root, layout='new', n_train=48, n_valid=16, seq_length=256, pool=8,
                  num_targets=2, statistics=True):
  """root/tfrecords/{train,valid}-0.tfr + root/statistics.json (basenji's layout)."""
  records = os.path.join(str(root), 'tfrecords')
  os.makedirs(records, exist_ok=True)
  b, t = make_examples(n_train, seq_length, pool, num_targets, seed=1)
  write_records(os.path.join(records, 'train-0.tfr'), b, t, layout)
  b, t = make_examples(n_valid, seq_length, pool, num_targets, seed=2)
  write_records(os.path.join(records, 'valid-0.tfr'), b, t, layout)
  if statistics:
    with open(os.path.join(str(root), 'statistics.json'), 'w') as f:
      json.dump({'seq_length': seq_length, 'seq_1hot': layout == 'old',
                 'pool_width': pool, 'crop_bp': 0,
                 'target_length': seq_length // pool, 'num_targets': num_targets,
                 'train_seqs': n_train, 'valid_seqs': n_valid, 'test_seqs': 0}, f)
  return records


def write_params(path, params=None):
  with open(str(path), 'w') as f:
    json.dump(params or TINY_PARAMS, f, indent=2)
  return str(path)
