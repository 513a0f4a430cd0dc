"""The blocks and options basenji and baskerville added to SeqNN: shapes, how far each
output sees (measured by perturbing inputs, and as python -m estimator_pipeline.models
reads it from the graph), U-net representations, synchronized batch norm, strand pairs,
the newer losses and per-variable gradient clipping.

  .venv/bin/python -m pytest -q tests/test_seqnn_blocks.py
"""

import functools
import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.config import params_blocks
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.data import sequence_ops
from estimator_pipeline.models import optimization
from estimator_pipeline.models import overview
from estimator_pipeline.models.seqnn import batch_stats
from estimator_pipeline.models.seqnn import blocks
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import metrics
from estimator_pipeline.models.seqnn import network

v1 = tf.compat.v1
LENGTH = 64


def _fields(name, args, length=LENGTH, channels=4, weights=(0.02, 0.1)):
  """-> (output shape, measured field of the center output, the graph's field).

  weights: the range of the (positive) weights; small by default so that no sigmoid
  or softmax saturates, larger where small ones make far inputs' effects vanish in
  float32 rounding.
  """
  with tf.Graph().as_default() as graph:
    # float64: an input far from the centre moves it by less than float32 resolves.
    x = v1.placeholder(tf.float64, [None, length, channels])
    with v1.variable_scope('block', dtype=tf.float64):
      y = blocks.build(name, x, args, is_training=False)
    read = overview.receptive_fields(graph, x)[y.name][0]
    with v1.Session() as sess:
      # Small positive weights: every path raises the output and no sigmoid or
      # softmax saturates, so any input the output sees moves it.
      rng = np.random.RandomState(0)
      for var in v1.global_variables():
        var.load(rng.uniform(*weights, size=var.shape), sess)
      base = rng.uniform(0, 1, [1, length, channels]).astype(np.float32)
      batch = np.repeat(base, length + 1, axis=0)
      for i in range(length):
        batch[i + 1, i, :] += np.arange(1, channels + 1)
      out = sess.run(y, {x: batch})
  center = out.shape[1] // 2
  changed = np.flatnonzero(np.abs(out[1:, center, :] - out[0, center, :]).max(-1) >
                           0)
  return out.shape[1:], int(changed[-1] - changed[0] + 1), (
      length if read == overview.WHOLE else read)


@pytest.mark.parametrize('name, args, shape, field', [
    ('conv_block', {'filters': 6, 'kernel_size': 5, 'conv_type': 'separable'},
     (64, 6), 5),
    ('conv_block', {'filters': 6, 'kernel_size': 5, 'pool_size': 2,
                    'pool_type': 'softmax'}, (32, 6), 6),
    # basenji's padding 'valid' pools 64 positions in threes to 21, 'same' to 22.
    ('conv_block', {'filters': 4, 'pool_size': 3, 'padding': 'valid'}, (21, 4), 3),
    ('conv_block', {'filters': 4, 'pool_size': 3}, (22, 4), 3),
    ('conv_nac', {'filters': 4, 'kernel_size': 5, 'padding': 'valid'}, (60, 4), 5),
    ('conv_dna', {'filters': 8, 'kernel_size': 5, 'se': True}, (64, 8), LENGTH),
    ('conv_next', {'filters': 4, 'kernel_size': 7}, (64, 4), 7),
    ('conv_tower_nac', {'filters_init': 4, 'filters_mult': 2, 'repeat': 2,
                        'kernel_size': 3, 'pool_size': 2}, (16, 8), 10),
    ('dilated_residual_nac', {'filters': 3, 'repeat': 3}, (64, 4), 15),
    ('dilated_dense', {'filters': 2, 'repeat': 2}, (64, 8), 7),
    ('transformer', {'key_size': 4, 'heads': 2, 'num_position_features': 4},
     (64, 4), LENGTH),
    ('transformer_tower', {'key_size': 4, 'heads': 2, 'repeat': 2,
                           'content_position_bias': False}, (64, 4), LENGTH),
    ('squeeze_excite', {'bottleneck_ratio': 2}, (64, 4), LENGTH),
    ('wheeze_excite', {'pool_size': 5}, (64, 4), 5),
    ('dense_nac', {'units': 5}, (64, 5), 1),
    ('dense_block', {'units': 3, 'flatten': True}, (1, 3), LENGTH),
    ('average_pooling', {'pool_size': 4}, (16, 4), 4),
    ('center_average', {'center': 8}, (1, 4), 8),
])
def test_block_shape_and_receptive_field(name, args, shape, field):
  out_shape, measured, read = _fields(name, args)
  assert tuple(out_shape) == shape
  assert measured == field
  assert read == field


def test_convnext_tower_field():
  # Per repetition two 3-wide conv_nexts, then pool 2: 5, 6 | 14, 16. Softmax pooling
  # and larger weights: layer norm is not monotonic (a max pool would hide an input),
  # and with small weights far inputs vanish in float32 rounding.
  out_shape, measured, read = _fields(
      'convnext_tower', {'filters_init': 4, 'filters_end': 8, 'repeat': 2,
                         'kernel_size': 3, 'pool_type': 'softmax'}, weights=(0.2, 0.5))
  assert (tuple(out_shape), measured, read) == ((16, 8), 16, 16)


def test_transposed_conv_doubles_the_length():
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [2, 16, 4])
    y = blocks.build('tconv_nac', x, {'filters': 6, 'kernel_size': 3, 'stride': 2,
                                      'norm_type': 'batch'}, is_training=True)
    assert y.shape.as_list() == [2, 32, 6]


def _unet_params(unet):
  return {'seq_length': 64, 'activation': 'gelu', 'norm_type': 'batch', 'trunk': [
      {'name': 'conv_tower', 'filters_init': 8, 'filters_mult': 1.5, 'repeat': 3,
       'pool_size': 2, 'kernel_size': 3}] + unet,
          'head': {'name': 'final', 'units': 2}}


def test_unet_blocks_reach_back_to_the_representation_twice_as_long():
  params = _unet_params([{'name': 'unet_conv', 'kernel_size': 3,
                          'upsample_conv': True}, {'name': 'unet_concat'}])
  with tf.Graph().as_default():
    y = network.build_network(params, v1.placeholder(tf.float32, [2, 64, 4]), True)
    shapes = {v.op.name: v.shape.as_list() for v in v1.global_variables()}
  # The tower gives 32 x 8, 16 x 12, 8 x 18: unet_conv upsamples 8 to 16 and adds the
  # 16 x 12 representation; unet_concat goes back to 32 and to its 8 channels.
  assert y.shape.as_list() == [2, 32, 2]
  assert shapes['trunk/unet_conv_1/skip_norm/gamma'] == [12]
  assert shapes['trunk/unet_conv_1/skip_dense/kernel'] == [12, 18]
  assert shapes['trunk/unet_concat_2/dense/kernel'] == [8 + 18, 12]
  assert shapes['trunk/unet_concat_2/conv/kernel'] == [1, 12, 8]
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='trunk/unet_conv_0: a U-net block finds no'):
      network.build_network(dict(params, trunk=[{'name': 'unet_conv'}]),
                            v1.placeholder(tf.float32, [2, 64, 4]), True)


def test_batch_sync_is_batch_norm_on_one_device():
  x = np.random.RandomState(0).normal(2, 3, [4, 16, 3]).astype(np.float32)
  outputs = []
  for norm_type in ('batch', 'batch-sync'):
    with tf.Graph().as_default():
      y = layers.normalize(tf.constant(x), norm_type, ctx=layers.Context(True))
      with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        outputs.append(sess.run(y))
  np.testing.assert_array_equal(outputs[0], outputs[1])
  np.testing.assert_allclose(outputs[0].mean((0, 1)), 0, atol=1e-5)


def test_fused_batch_norm_is_the_op_by_op_form(monkeypatch):
  """Training-mode batch norm runs fused; outputs, gradients and moving statistics
  are the op-by-op form's (Keras' on 3-D inputs) to float32 rounding."""
  rng = np.random.RandomState(0)
  x = rng.normal(1, 3, [4, 64, 5]).astype(np.float32)
  weights = rng.normal(0, 1, x.shape).astype(np.float32)
  found = {}
  for fused in (False, True):
    monkeypatch.setattr(batch_stats, 'FUSED_BATCH_NORM', fused)
    with tf.Graph().as_default():
      inputs = tf.constant(x)
      y = layers.normalize(inputs, 'batch', ctx=layers.Context(True), bn_momentum=0.5)
      types = {op.type for op in tf.compat.v1.get_default_graph().get_operations()}
      assert ('FusedBatchNormV3' in types) == fused
      grads = tf.gradients(tf.reduce_sum(y * weights),
                           [inputs] + v1.trainable_variables())
      with v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        found[fused] = sess.run([y] + grads)
        sess.run(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
        found[fused] += sess.run(v1.model_variables())
  for plain, fused in zip(found[False], found[True]):
    np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-5 * np.abs(plain).max())


def test_batch_sync_pools_the_replicas_statistics_under_mirrored_strategy():
  # Two logical CPUs exist only if set before TensorFlow starts: its own process.
  script = textwrap.dedent('''
      import estimator_pipeline, numpy as np, tensorflow as tf
      from estimator_pipeline.models.seqnn import layers
      cpu = tf.config.list_physical_devices('CPU')[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      v1 = tf.compat.v1
      rng = np.random.RandomState(0)
      data = np.stack([rng.normal(1, 1, [2, 8, 3]), rng.normal(5, 2, [2, 8, 3])])
      with tf.Graph().as_default():
        strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
        with strategy.scope():
          def step(i):
            x = tf.constant(data, tf.float32)[i]
            layers.normalize(x, 'batch-sync', ctx=layers.Context(True),
                             bn_momentum=0.0)
            return tf.group(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
          replica = strategy.experimental_distribute_values_from_function(
              lambda c: c.replica_id_in_sync_group)
          ops = strategy.extended.call_for_each_replica(step, args=(replica,))
          mean = [v for v in v1.global_variables() if 'moving_mean' in v.name][0]
          with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(strategy.experimental_local_results(ops))
            got = sess.run(strategy.experimental_local_results(mean))
      want = data.reshape(-1, 3).mean(0)
      assert all(np.allclose(g, want, atol=1e-5) for g in got), (got, want)
      print('synchronized')
  ''')
  done = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                        text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  assert done.returncode == 0 and 'synchronized' in done.stdout, done.stderr[-3000:]


def test_rc_augmentation_swaps_stranded_targets():
  sequence = tf.one_hot([0, 1, 2, 3, 3, 0], 4)
  target = tf.constant([[1., 2., 3.], [4., 5., 6.]])  # 2 bins x 3 targets
  # Targets 0 and 1 are the two strands of one track; target 2 is unstranded.
  seen = set()
  for _ in range(24):
    seq, tgt = sequence_ops.augment_sequence(sequence, target, augment_rc=True,
                                             strand_pair=(1, 0, 2))
    if np.array_equal(seq.numpy(), sequence.numpy()):
      np.testing.assert_array_equal(tgt.numpy(), target.numpy())
      seen.add('forward')
    else:
      np.testing.assert_array_equal(seq.numpy(), sequence.numpy()[::-1, ::-1])
      np.testing.assert_array_equal(tgt.numpy(), [[5., 4., 6.], [2., 1., 3.]])
      seen.add('reverse')
  assert seen == {'forward', 'reverse'}


def test_rc_ensemble_swaps_stranded_predictions():
  params = {'seq_length': 32, 'activation': 'relu', 'strand_pair': [[1, 0]],
            'trunk': [{'name': 'conv_block', 'filters': 4, 'kernel_size': 5}],
            'head': {'name': 'final', 'units': 2, 'activation': 'softplus'}}
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [1, 32, 4])
    model = network.SeqNN(False, params=params, ensemble_rc=True)
    plain = model.predict(x)['predictions']
    ensemble = model.ensemble_predictions(x)
    onehot = np.eye(4, dtype=np.float32)[np.random.RandomState(0).randint(0, 4, 32)]
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      forward, got = sess.run([plain, ensemble], {x: onehot[None]})
      reverse = sess.run(plain, {x: onehot[None, ::-1, ::-1]})
  want = (forward + reverse[:, ::-1, ::-1]) / 2  # bins reversed, strands swapped
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_newer_losses_match_numpy():
  rng = np.random.RandomState(3)
  y = rng.gamma(2, 1, [2, 6, 3]).astype(np.float32)
  p = rng.gamma(2, 1, [2, 6, 3]).astype(np.float32)
  eps = 1e-7
  total_y, total_p = y.sum(1), p.sum(1)
  poisson = (total_p - total_y * np.log(total_p + eps)) / 6
  multinomial = -((y + eps) * np.log((p + eps) / total_p[:, None])).sum(1) / 6
  np.testing.assert_allclose(
      metrics.poisson_multinomial_loss(y, p, total_weight=0.2).numpy(),
      np.mean(multinomial + 0.2 * poisson), rtol=1e-5)
  share_y = (y + eps) / (y + eps).sum(-1, keepdims=True)
  share_p = (p + eps) / (p + eps).sum(-1, keepdims=True)
  kl = (share_y * np.log(share_y / share_p)).sum(-1)
  np.testing.assert_allclose(
      metrics.poisson_kl_loss(y, p, spec_weight=0.5).numpy(),
      np.mean((p - y * np.log(p + eps)).mean(-1) + 0.5 * kl), rtol=1e-5)
  centered = (y - y.mean(-1, keepdims=True)) * (p - p.mean(-1, keepdims=True))
  np.testing.assert_allclose(
      metrics.mse_udot_loss(y, p, spec_weight=2.).numpy(),
      np.mean(((p - y) ** 2).mean(-1) - 2. * centered.mean(-1)), rtol=1e-5)
  assert metrics.loss_params('poisson_mn', {'total_weight': 0.2, 'spec_weight': 1}) == {
      'total_weight': 0.2}


def test_clip_norm_clips_each_variable_on_its_own():
  with tf.Graph().as_default():
    a = v1.get_variable('a', initializer=tf.zeros([2]))
    b = v1.get_variable('b', initializer=tf.zeros([3]))
    loss = 10. * tf.reduce_sum(a) + 0.1 * tf.reduce_sum(b)
    options = optimization.TrainOptions(optimizer='sgd', learning_rate=1.0,
                                        clip_gradient_norm_per_variable=1.0)
    step = v1.train.get_or_create_global_step()
    train_op = optimization.build_train_op(loss, options, tf.constant(1.0), step,
                                           [a, b], summaries=False)
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(train_op)
      moved_a, moved_b = sess.run([a, b])
  # a's gradient (norm 14.1) is cut to norm 1; b's (norm 0.17) is left as it is.
  np.testing.assert_allclose(np.linalg.norm(moved_a), 1.0, rtol=1e-5)
  np.testing.assert_allclose(moved_b, [-0.1] * 3, rtol=1e-5)


@pytest.mark.parametrize('values, words', [
    ({'gelu': 'erf'}, '--gelu=erf is not known; known: tanh, sigmoid'),
    ({'head': 'head_human'}, '--head=head_human picks a head of --params_file, which '
                             'is empty'),
    ({'clip_gradient_norm_per_variable': -1.0},
     '--clip_gradient_norm_per_variable=-1.0 must be >= 0'),
])
def test_new_flags_are_checked(values, words):
  cfg = config.Config(model_dir='runs/x', train_record_path='d/*', **values)
  with pytest.raises(UserError) as e:
    cfg.validate()
  assert words in str(e.value)


# Blocks that take some keys themselves and pass the others on to another block.
_FORWARDS = {'conv_tower': 'conv_block', 'conv_tower_nac': 'conv_nac',
             'res_tower': 'conv_nac', 'convnext_tower': 'conv_next',
             'dilated_residual': 'conv_block', 'dilated_residual_nac': 'conv_nac',
             'dilated_dense': 'conv_block', 'transformer_tower': 'transformer'}


def _keywords(function):
  """(keyword arguments a block function takes after x and ctx, whether it takes
  **kwargs)."""
  fixed = {}
  if isinstance(function, functools.partial):
    fixed, function = function.keywords, function.func
  params = list(inspect.signature(function).parameters.values())[2:]
  names = {p.name for p in params
           if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - set(fixed)
  return names, any(p.kind == p.VAR_KEYWORD for p in params)


def test_params_blocks_table_matches_the_block_functions():
  """config/params_blocks.py's keys of each block are the keyword arguments of its
  function (or of the block it passes them on to): a key the table lets through
  reaches the block, and a key the block takes can be written in a params file."""
  assert sorted(blocks.FUNCTIONS) == sorted(params_blocks.BLOCKS)
  assert not set(params_blocks.UNSUPPORTED) & set(params_blocks.BLOCKS)
  for name, function in blocks.FUNCTIONS.items():
    spec = params_blocks.BLOCKS[name]
    own, passes_on = _keywords(function)
    used = set(spec.used)
    # Ignored keys are dropped before the call (network.block_args).
    assert not own & set(spec.ignored), (name, own & set(spec.ignored))
    if passes_on:
      inner, _ = _keywords(blocks.FUNCTIONS[_FORWARDS[name]])
      assert own <= used, (name, sorted(own - used))
      assert used - own <= inner, (name, sorted(used - own - inner))
    else:
      assert own == used, (name, sorted(own ^ used))
    for required in spec.required:
      assert set(required.split(' or ')) <= used, (name, required)
  with pytest.raises(LookupError, match="names block 'no_such_block', which none"):
    blocks._function('no_such_block')  # pylint: disable=protected-access
