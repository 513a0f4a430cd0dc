"""The numbers do not depend on the CPU: every kind of op the SeqNN blocks are made of
trains on both of TensorFlow's CPU kernel libraries, with the same values.

TensorFlow 2.15 runs oneDNN kernels by default only on CPUs with AVX-512 (or AMX) and
Eigen's elsewhere; TF_ENABLE_ONEDNN_OPTS=0 or =1 forces one or the other. Eigen has no
dilated Conv2D gradient, so a dilated convolution must not reach it as one. Here one
network holds dilated, separable dilated, depthwise (attention's qkv_width),
transposed and plain convolutions, max, softmax and average pooling, the U-net's
upsampling and batch norm; each library runs it in a process of its own (TensorFlow
reads the variable once, at import) on the same weights and input, and its outputs
and gradients must agree to float32 rounding:

  .venv/bin/python -m pytest -q tests/test_cpu_kernels.py

`make test` also runs the SeqNN tests marked `both_kernels` a second time with oneDNN
off, so a machine with AVX-512 covers one without.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO

PARAMS = {
    'seq_length': 256, 'activation': 'gelu', 'norm_type': 'batch', 'bn_momentum': 0.9,
    'trunk': [
        {'name': 'conv_dna', 'filters': 8, 'kernel_size': 7, 'pool_size': 2},
        {'name': 'conv_block', 'filters': 8, 'kernel_size': 3, 'dilation_rate': 2,
         'conv_type': 'separable', 'pool_size': 2, 'pool_type': 'softmax'},
        {'name': 'res_tower', 'filters_init': 8, 'filters_end': 12, 'divisible_by': 4,
         'kernel_size': 3, 'pool_size': 2, 'repeat': 1},
        {'name': 'dilated_residual', 'filters': 6, 'rate_mult': 2, 'repeat': 3,
         'dropout': 0},
        {'name': 'transformer', 'key_size': 4, 'heads': 2, 'num_position_features': 4,
         'qkv_width': 3, 'dropout': 0, 'attention_dropout': 0, 'position_dropout': 0},
        {'name': 'unet_conv', 'kernel_size': 3, 'upsample_conv': True},
        {'name': 'tconv_nac', 'filters': 8, 'kernel_size': 3, 'stride': 2},
        {'name': 'average_pooling', 'pool_size': 2},
    ],
    'head': {'name': 'final', 'units': 3, 'activation': 'softplus'},
}

# Builds PARAMS in training mode, loads seeded weights, and saves the predictions and
# the gradients of a weighted sum of them (input and every trainable variable).
SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    import estimator_pipeline
    import tensorflow as tf
    from estimator_pipeline.models.seqnn import network
    v1 = tf.compat.v1
    params, out = json.loads(sys.argv[1]), sys.argv[2]
    with tf.Graph().as_default():
      x = v1.placeholder(tf.float32, [2, params['seq_length'], 4])
      model = network.SeqNN(is_training=True, num_classes=3, params=params)
      preds = model.predict(model.preprocess({'sequence': x}))['predictions']
      rng = np.random.RandomState(0)
      weights = rng.uniform(size=preds.shape.as_list()).astype(np.float32)
      variables = v1.trainable_variables()
      grads = tf.gradients(tf.reduce_sum(preds * weights), [x] + variables)
      with v1.Session() as sess:
        for var in v1.global_variables():
          var.load(rng.normal(0, 0.3, var.shape).astype(np.float32), sess)
        seq = np.eye(4, dtype=np.float32)[rng.randint(0, 4, x.shape[:2])]
        values = sess.run([preds] + grads, {x: seq})
    names = ['predictions', 'input'] + [v.op.name for v in variables]
    np.savez(out, **dict(zip(names, values)))
''')


def _run(library, out):
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=library, TF_CPP_MIN_LOG_LEVEL='3',
             PYTHONPATH=REPO)
  done = subprocess.run([sys.executable, '-c', SCRIPT, json.dumps(PARAMS), out],
                        env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, 'TF_ENABLE_ONEDNN_OPTS=%s:\n%s' % (
      library, done.stderr[-3000:])
  return np.load(out)


@pytest.mark.parametrize('kind', ['dilated', 'separable dilated'])
def test_each_block_kind_is_in_the_network(kind):
  # The network above must keep holding what it is meant to check.
  trunk = {b['name']: b for b in PARAMS['trunk']}
  if kind == 'dilated':
    assert trunk['dilated_residual']['repeat'] > 1
  else:
    assert trunk['conv_block']['conv_type'] == 'separable'
    assert trunk['conv_block']['dilation_rate'] > 1


def test_both_kernel_libraries_train_it_to_the_same_numbers(tmp_path):
  eigen = _run('0', str(tmp_path / 'eigen.npz'))
  onednn = _run('1', str(tmp_path / 'onednn.npz'))
  assert sorted(eigen.files) == sorted(onednn.files)
  assert any('dilated_residual' in name for name in eigen.files)
  largest = max(np.abs(eigen[name]).max() for name in eigen.files)
  for name in eigen.files:
    a, b = eigen[name], onednn[name]
    assert np.isfinite(a).all() and np.abs(a).max() > 0, name
    # Float32 rounding through the network, in two kernels' summation orders. A
    # gradient that is zero but for rounding (a batch norm's beta before another batch
    # norm) is compared against a floor from the largest one.
    scale = max(np.abs(a).max(), 1e-3 * largest)
    assert np.abs(a - b).max() <= 1e-4 * scale, name
