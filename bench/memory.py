r"""Peak memory of one training step of baskerville's Borzoi, with and without
--recompute_trunk (batch 1, on the CPU).

  python -m bench --only=memory
  python -m bench.rusage -- python -m bench.memory step PARAMS_FILE 32768 1  # one

Each figure is one child process (bench/rusage.py measures its own peak RSS) that
builds the training graph of Borzoi's params file (baskerville's
tests/data/transfer/json/borzoi_full.json, its transfer section left out) for
LENGTH bp, its crop scaled with the length, and runs two Adam steps; the second is
timed. 524,288 bp does not fit a 24 GiB machine shared with other work: LENGTH is
what the bench runs.
"""

import json
import os
import subprocess
import sys
import time

from bench import common

PARAMS = os.path.join(common.REPO, 'tests', 'data', 'basenji', 'params', 'baskerville',
                      'tests', 'data', 'transfer', 'json', 'borzoi_full.json')
LENGTH = 262144
# --toy runs the plumbing on the small reference baskerville model.
TOY_PARAMS = os.path.join(common.REPO, 'tests', 'data', 'basenji',
                          'baskerville_params.json')
TOY_LENGTH = 4096
FULL_LENGTH = 524288


def _step(params_file, length, recompute):
  """One child: build, two training steps; prints {"seconds_per_step": ...}."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from estimator_pipeline.config import params as params_lib  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.models import optimization  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.models.seqnn import network  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  params, _ = params_lib.select_head(params_lib.load(params_file))
  model = params['model']
  model_length, model['seq_length'] = model['seq_length'], length
  for block in model['trunk']:
    if block['name'] == 'Cropping1D':
      block['cropping'] = block['cropping'] * length // model_length
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [1, length, 4])
    net = network.SeqNN(True, params=model, recompute_trunk=recompute)
    preds = net.predict(x)['predictions']
    labels = v1.placeholder(tf.float32, preds.shape)
    loss = net.loss({'predictions': preds}, labels)['loss']
    step = v1.train.get_or_create_global_step()
    train_op = optimization.build_train_op(
        loss, optimization.TrainOptions(optimizer='adam', learning_rate=1e-4), 1e-4,
        step, v1.trainable_variables(), v1.get_collection(v1.GraphKeys.UPDATE_OPS),
        summaries=False)
    rng = np.random.RandomState(0)
    feed = {x: np.eye(4, dtype=np.float32)[rng.randint(0, 4, (1, length))],
            labels: rng.uniform(size=preds.shape.as_list()).astype(np.float32)}
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(train_op, feed)
      start = time.time()
      sess.run(train_op, feed)
      seconds = time.time() - start
  print(json.dumps({'seconds_per_step': seconds}))


def _child(params_file, length, recompute):
  """(seconds per step, peak RSS in MB) of one child process."""
  launcher = subprocess.run(
      [sys.executable, '-m', 'bench.rusage', '--', sys.executable, '-m',
       'bench.memory', 'step', params_file, str(length), str(int(recompute))],
      cwd=common.REPO,
      env=common.python_env(), capture_output=True, text=True, check=True)
  result = json.loads(launcher.stdout)
  if result['returncode']:
    raise RuntimeError('bench.memory step %d %d failed (exit %d): %s' % (
        length, recompute, result['returncode'], launcher.stderr[-2000:]))
  report = json.loads(result['stdout'].strip().splitlines()[-1])
  return report['seconds_per_step'], result['peak_rss_kb'] / 1024.0


def run(work_dir, toy=False, repeats=3):
  del work_dir
  params_file, length = (TOY_PARAMS, TOY_LENGTH) if toy else (PARAMS, LENGTH)
  seconds, peaks = {False: [], True: []}, {False: [], True: []}
  del repeats  # One pair: see the module docstring.
  for recompute in (True, False):
    step, peak = _child(params_file, length, recompute)
    seconds[recompute].append(step)
    peaks[recompute].append(peak)
    common.log('  %d bp, recompute %s: peak RSS %.0f MB, %.2f s per step'
               % (length, recompute, peak, step))
  return {'memory': {
      'length_bp': length, 'full_length_bp': FULL_LENGTH,
      'peak_rss_mb': common.stats(peaks[False]),
      'peak_rss_mb_recompute': common.stats(peaks[True]),
      'seconds_per_step': common.stats(seconds[False]),
      'seconds_per_step_recompute': common.stats(seconds[True]),
      'recompute_vs_plain_memory_ratio': common.stats(
          common.ratios(peaks[True], peaks[False])),
      'recompute_vs_plain_time_ratio': common.stats(
          common.ratios(seconds[True], seconds[False])),
  }}


if __name__ == '__main__':
  if sys.argv[1:2] == ['step']:
    import estimator_pipeline  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    _step(sys.argv[2], int(sys.argv[3]), bool(int(sys.argv[4])))
