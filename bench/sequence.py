"""Sequence models: examples/sec of a params_small.json-sized SeqNN vs its ceiling.

basenji's tutorial params_small.json (131072 bp in, 1024 bins of 128 bp out, 3 targets)
trained by this project's full path from basenji-layout TFRecords (ZLIB, `sequence`
uint8 base indices, `target` float16), against the same train op fed from a constant
batch.

  python -m bench --only=sequence
"""

import json
import os

import numpy as np
import tensorflow as tf

from bench import common
from bench import training
from estimator_pipeline import config as config_lib

# basenji tutorials/models/params_small.json.
PARAMS_SMALL = {
    'train': {'batch_size': 4, 'loss': 'poisson', 'optimizer': 'sgd',
              'learning_rate': 0.1, 'momentum': 0.99, 'train_epochs': 20,
              'patience': 8, 'clip_norm': 2},
    'model': {
        'seq_length': 131072, 'augment_rc': True, 'augment_shift': 3,
        'activation': 'gelu', 'norm_type': 'batch', 'bn_momentum': 0.9,
        'trunk': [
            {'name': 'conv_block', 'filters': 64, 'kernel_size': 15, 'pool_size': 8},
            {'name': 'conv_tower', 'filters_init': 64, 'filters_mult': 1.125,
             'kernel_size': 5, 'pool_size': 4, 'repeat': 2},
            {'name': 'dilated_residual', 'filters': 32, 'rate_mult': 2, 'repeat': 6,
             'dropout': 0.25},
            {'name': 'conv_block', 'filters': 64, 'dropout': 0.05},
        ],
        'head': {'name': 'final', 'units': 3, 'activation': 'softplus'},
    },
}
POOL = 8 * 4 * 4  # The trunk's pooling: 128 bp per output bin.
# A step lasts about 0.3 s, so a loop (--steps_per_loop) saves nothing and costs the
# slicing of a stacked batch; one decode thread leaves the convolutions both cores
# most of the time (see bench/CHANGES.md).
TUNED_FLAGS = {'data_threads': 1}


def write_records(directory, count, seq_length, num_targets, seed=0,
                  target_length=None):
  """basenji-layout records + statistics.json; returns the glob. target_length: bins
  a record holds (default seq_length / POOL: a model that crops none)."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.RandomState(seed)
  target_length = target_length or seq_length // POOL
  options = tf.io.TFRecordOptions(compression_type='ZLIB')
  path = os.path.join(directory, 'train-0.tfr')
  with tf.io.TFRecordWriter(path, options) as writer:
    for _ in range(count):
      sequence = rng.randint(0, 4, seq_length).astype(np.uint8)
      target = rng.gamma(1.0, 1.0, (target_length, num_targets)).astype(np.float16)
      feature = {
          'sequence': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[sequence.tobytes()])),
          'target': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[target.tobytes()])),
      }
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())
  with open(os.path.join(directory, 'statistics.json'), 'w') as f:
    json.dump({'seq_length': seq_length, 'seq_depth': 4, 'target_length': target_length,
               'num_targets': num_targets, 'pool_width': POOL, 'crop_bp': 0,
               'train_seqs': count, 'valid_seqs': 0, 'test_seqs': 0}, f)
  return os.path.join(directory, 'train-*')


def run(work_dir, toy=False, repeats=3):
  params = json.loads(json.dumps(PARAMS_SMALL))
  if toy:
    params['model']['seq_length'] = 4096
  seq_length = params['model']['seq_length']
  os.makedirs(work_dir, exist_ok=True)
  params_file = os.path.join(work_dir, 'params_small.json')
  with open(params_file, 'w') as f:
    json.dump(params, f)
  records = write_records(os.path.join(work_dir, 'data'), 8 if toy else 32, seq_length,
                          params['model']['head']['units'])
  batch = params['train']['batch_size']
  # About 0.3 s a step on 2 cores: 12 steps keep one slow step from setting the figure.
  warmup, steps = (1, 2) if toy else (3, 12)
  counter = [0]

  def cfg(**flags):
    counter[0] += 1
    return config_lib.Config(
        model_dir=os.path.join(work_dir, 'run%d' % counter[0]),
        train_record_path=records, model_name='seqnn', params_file=params_file,
        batch_size=batch, num_steps=warmup + steps,
        save_checkpoints_steps=warmup + steps, log_every_steps=50, **flags)

  ceiling = training.make_ceiling_runner(cfg())
  common.log('sequence: seqnn params_small, %d bp, batch %d, %d warm-up + %d steps'
             % (seq_length, batch, warmup, steps))
  raw = common.interleave({
      'pipeline': lambda: training.run_pipeline(cfg(), warmup),
      'pipeline_tuned': lambda: training.run_pipeline(cfg(**TUNED_FLAGS), warmup),
      'ceiling': lambda: ceiling(warmup, steps),
  }, repeats, log=common.log)
  results = {v + '_examples_per_sec': common.stats(raw[v]) for v in raw}
  for v in ('pipeline', 'pipeline_tuned'):
    results[v + '_vs_ceiling_ratio'] = common.stats(common.ratios(raw[v],
                                                                  raw['ceiling']))
  results['setup'] = 'params_small.json, %d bp, %d targets, batch %d, tuned flags %s' % (
      seq_length, params['model']['head']['units'], batch, TUNED_FLAGS)
  return {'sequence': results}
