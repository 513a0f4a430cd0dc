"""SeqNN blocks, params file, losses and metrics.

  .venv/bin/python -m pytest -q tests/test_seqnn.py

Blocks are checked for output shape and receptive field (by perturbing each input
position of a graph whose weights are all positive, so a max pool cannot hide one);
metrics against numpy on the same numbers. Records: test_sequence_layout.py;
augmentation and the DNA codec: test_sequence_ops.py.
"""

import json
import os

import numpy as np
import pytest

import estimator_pipeline  # noqa: F401  (compat fixes before TF)
import seq_helpers
import tensorflow as tf

from estimator_pipeline.models.seqnn import metrics
from estimator_pipeline.config import params as seqnn_params
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network as seqnn
from estimator_pipeline.models.seqnn import blocks as seqnn_blocks

v1 = tf.compat.v1


def _run_block(name, args, length=64, channels=4, is_training=False):
  """-> (output shape, receptive field of the center output position, variables)."""
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [None, length, channels])
    with v1.variable_scope('block'):
      y = seqnn_blocks.build(name, x, dict(args, activation='gelu')
                             if 'activation' in seqnn_params.BLOCKS[name][0] else args,
                             is_training=is_training)
    names = [v.op.name for v in v1.global_variables()]
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      # All weights positive and inputs positive: every path raises the output, so a
      # large change at an input position changes every output that can see it.
      for var in v1.global_variables():
        var.load(np.random.RandomState(0).uniform(0.5, 1.0, var.shape), sess)
      base = np.full([1, length, channels], 0.5, np.float32)
      batch = np.repeat(base, length + 1, axis=0)
      for i in range(length):
        batch[i + 1, i, :] += 100.
      out = sess.run(y, {x: batch})
  center = out.shape[1] // 2
  changed = np.flatnonzero(np.abs(out[1:, center, :] - out[0, center, :]).max(-1) >
                           1e-3)
  # The span from the first to the last input that moves the output.
  return out.shape[1:], int(changed[-1] - changed[0] + 1), names


@pytest.mark.parametrize('name, args, shape, field', [
    # Receptive field by hand: r += (k - 1) * jump for a conv, (p - 1) * jump for a
    # pool, and jump *= p after a pool.
    ('conv_block', {'filters': 6, 'kernel_size': 5}, (64, 6), 5),
    ('conv_block', {'filters': 6, 'kernel_size': 5, 'pool_size': 2}, (32, 6), 6),
    ('conv_block', {'filters': 4, 'kernel_size': 3, 'residual': True}, (64, 4), 3),
    ('conv_block', {'filters': 4, 'kernel_size': 3, 'dilation_rate': 4}, (64, 4), 9),
    ('conv_dna', {'filters': 5, 'kernel_size': 7, 'norm_type': 'batch'}, (64, 5), 7),
    ('conv_dna', {'filters': 5, 'kernel_size': 7, 'residual': True,
                  'pool_size': 2}, (32, 5), 8),
    # 3 -> pool 2: 4, jump 2 -> conv 3: 8 -> pool 2: 10.
    ('conv_tower', {'filters_init': 4, 'filters_mult': 1.5, 'kernel_size': 3,
                    'pool_size': 2, 'repeat': 2}, (16, 6), 10),
    ('conv_tower', {'filters_init': 4, 'filters_end': 16, 'repeat': 3,
                    'divisible_by': 4, 'kernel_size': 1}, (64, 16), 1),
    # rates 1, 2, 4 with kernel 3: 1 + 2 + 4 + 8.
    ('dilated_residual', {'filters': 3, 'rate_mult': 2, 'repeat': 3,
                          'norm_type': 'batch'}, (64, 4), 15),
    ('dilated_residual', {'filters': 3, 'kernel_size': 5, 'repeat': 2}, (64, 4), 13),
    # first conv_nac kernel 3, second kernel 1, pool 2: 3 -> 4.
    ('res_tower', {'filters_init': 4, 'filters_mult': 2, 'kernel_size': 3,
                   'repeat': 1}, (32, 4), 4),
    ('dense_block', {'units': 7, 'norm_type': 'batch'}, (64, 7), 1),
    ('final', {'units': 3, 'activation': 'softplus'}, (64, 3), 1),
    ('dense', {'units': 2, 'activation': 'exp'}, (64, 2), 1),
    ('Cropping1D', {'cropping': 8}, (48, 4), 1),
    ('Cropping1D', {'cropping': [2, 6]}, (56, 4), 1),
    ('center_slice', {'center': 10}, (10, 4), 1),
])
def test_block_shape_and_receptive_field(name, args, shape, field):
  out_shape, measured, _ = _run_block(name, args)
  assert tuple(out_shape) == shape
  assert measured == field


def test_block_variable_names_and_filters():
  _, _, names = _run_block('conv_tower', {'filters_init': 4, 'filters_mult': 2,
                                          'repeat': 2, 'norm_type': 'batch'})
  assert 'block/conv_block_0/conv/kernel' in names
  assert 'block/conv_block_1/batch_norm/moving_mean' in names
  assert 'block/conv_block_0/conv/bias' not in names  # no bias under batch norm
  _, _, names = _run_block('dilated_residual', {'filters': 3, 'repeat': 2})
  assert 'block/rep_1/dilate/conv/kernel' in names
  assert 'block/rep_1/return/scale' in names


@pytest.mark.parametrize('activation, fn', [
    ('relu', lambda x: np.maximum(x, 0)),
    # Today's basenji and baskerville: Keras' gelu(approximate=True), the tanh form.
    ('gelu', lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                              (x + 0.044715 * x ** 3)))),
    ('softplus', lambda x: np.log1p(np.exp(x))),
    ('sigmoid', lambda x: 1 / (1 + np.exp(-x))),
    ('linear', lambda x: x),
    ('exp', np.exp),
])
def test_activations(activation, fn):
  x = np.linspace(-3, 3, 13).astype(np.float32)
  np.testing.assert_allclose(seqnn_blocks.activate(tf.constant(x), activation).numpy(),
                             fn(x), rtol=1e-5, atol=1e-6)


def test_gelu_sigmoid_form_of_older_basenji():
  # basenji 0.5.1 and earlier (the 2020 Basenji2 models): --gelu=sigmoid.
  x = np.linspace(-3, 3, 13).astype(np.float32)
  got = seqnn_blocks.activate(tf.constant(x), 'gelu', gelu='sigmoid').numpy()
  np.testing.assert_allclose(got, x / (1 + np.exp(-1.702 * x)), rtol=1e-5, atol=1e-6)
  assert np.abs(got - seqnn_blocks.activate(tf.constant(x), 'gelu').numpy()).max() > 0.01


def test_batch_norm_updates_run_through_update_ops():
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [4, 16, 2])
    with v1.variable_scope('trunk'):
      seqnn_blocks.build('conv_block', x, {'filters': 3, 'norm_type': 'batch',
                                           'bn_momentum': 0.5}, is_training=True)
    updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
    assert len(updates) == 2 and all(op.name.startswith('trunk/') for op in updates)
    mean = [v for v in v1.global_variables() if 'moving_mean' in v.op.name][0]
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(updates, {x: np.random.RandomState(0).normal(3, 1, [4, 16, 2])})
      assert np.abs(sess.run(mean)).max() > 0  # moved half way to the batch mean


def test_network_scopes_and_globals():
  params = seq_helpers.TINY_PARAMS['model']
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [2, 256, 4])
    y = seqnn.build_network(params, x, is_training=True)
    assert y.shape.as_list() == [2, 32, 2]
    names = {v.op.name for v in v1.global_variables()}
  assert 'trunk/conv_block_0/conv/kernel' in names
  assert 'trunk/conv_tower_1/conv_block_1/batch_norm/gamma' in names
  assert 'trunk/dilated_residual_2/rep_1/return/batch_norm/gamma' in names
  assert 'head/final_0/dense/kernel' in names
  # The global norm_type reached every block that takes it (no conv bias), not the head.
  assert not any(n.startswith('trunk/') and n.endswith('/bias') for n in names)
  assert 'head/final_0/dense/bias' in names
  args = seqnn.block_args({'activation': 'gelu', 'l2_scale': 1e-3},
                          {'name': 'final', 'units': 3, 'activation': 'softplus'})
  assert args == {'units': 3, 'activation': 'softplus', 'l2_scale': 1e-3}
  args = seqnn.block_args({'bn_momentum': 0.9}, {'name': 'Cropping1D', 'cropping': 2})
  assert args == {'cropping': 2}


def test_l2_scale_adds_regularization_losses():
  params = dict(seq_helpers.TINY_PARAMS['model'], l2_scale=1e-2)
  with tf.Graph().as_default():
    seqnn.build_network(params, v1.placeholder(tf.float32, [1, 256, 4]), True)
    losses = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    kernels = [v for v in v1.trainable_variables() if v.op.name.endswith('kernel')]
    assert len(losses) == len(kernels)


# Params file.

def test_params_file_reads_and_maps_train_section(tmp_path):
  from estimator_pipeline import config
  path = seq_helpers.write_params(tmp_path / 'p.json')
  cfg = config.Config(params_file=path)
  resolved, params, skipped = seqnn_params.resolve_config(cfg)
  assert params['model']['trunk'][0]['name'] == 'conv_block'
  assert resolved.batch_size == 4 and resolved.optimizer == 'adam'
  assert resolved.learning_rate == 0.01 and resolved.decay_rate == 1.0
  assert ('train_epochs_max' in dict(skipped))
  # A flag the user typed wins over the file.
  resolved, _, _ = seqnn_params.resolve_config(cfg.replace(batch_size=7),
                                               explicit={'batch_size'})
  assert resolved.batch_size == 7 and resolved.learning_rate == 0.01
  # basenji's sgd is SGD with momentum 0.99 by default.
  params = json.loads(json.dumps(seq_helpers.TINY_PARAMS))
  params['train'] = {'optimizer': 'sgd'}
  path = seq_helpers.write_params(tmp_path / 'sgd.json', params)
  resolved, _, _ = seqnn_params.resolve_config(config.Config(params_file=path))
  assert resolved.optimizer == 'momentum' and resolved.momentum == 0.99


def test_train_keys_not_in_config_are_reported():
  applied, skipped = seqnn_params.train_values(
      {'train': {'clip_norm': 2, 'patience': 3, 'adam_beta1': 0.9}}, {'batch_size'})
  assert dict(skipped).keys() == {'clip_norm', 'patience', 'adam_beta1'}
  # basenji's clip_norm is Keras' clipnorm (each variable on its own); its
  # global_clipnorm is the global one.
  applied, skipped = seqnn_params.train_values(
      {'train': {'clip_norm': 2, 'global_clipnorm': 3}},
      {'clip_gradient_norm', 'clip_gradient_norm_per_variable'})
  assert applied['clip_gradient_norm_per_variable'] == 2 and not skipped
  assert applied['clip_gradient_norm'] == 3


@pytest.mark.parametrize('text, words', [
    ('{"model": {"seq_length": 8,\n  "trunk": [}', ['line 2 column', 'p.json']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [{'name': 'conv_blok'}],
                           'head': {'name': 'final', 'units': 1}}}),
     ["unknown block name 'conv_blok'", 'conv_block', 'dilated_residual', 'trunk[0]']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [
        {'name': 'conv_block', 'filter': 3}], 'head': {'name': 'final', 'units': 1}}}),
     ['unknown key filter', 'accepted:', 'filters', 'kernel_size']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [
        {'name': 'conv_tower', 'filters_init': 3}],
        'head': {'name': 'final', 'units': 1}}}),
     ['missing required key filters_mult or filters_end']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [],
                           'head': {'name': 'final'}}}),
     ['head[0] (final)', 'missing required key units']),
    (json.dumps({'model': {'trunk': [], 'head': {'name': 'final', 'units': 1}}}),
     ['missing required key seq_length']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [], 'activation': 'swish',
                           'head': {'name': 'final', 'units': 1}}}),
     ["activation='swish'", 'gelu']),
    (json.dumps({'model': {'seq_length': 8, 'trunk': [],
                           'head': {'name': 'final', 'units': 1}},
                 'train': {'epochs': 3}}), ['unknown key epochs', 'train_epochs_max']),
])
def test_params_errors_name_the_culprit(tmp_path, text, words):
  path = tmp_path / 'p.json'
  path.write_text(text)
  with pytest.raises(UserError) as e:
    seqnn_params.load(str(path))
  message = str(e.value)
  assert '\n' not in message
  for word in words:
    assert word in message, message


def test_params_are_never_executed(tmp_path):
  path = tmp_path / 'p.py'
  path.write_text('__import__("os").system("touch %s")' % (tmp_path / 'pwned'))
  with pytest.raises(UserError):
    seqnn_params.load(str(path))
  assert not (tmp_path / 'pwned').exists()


# Metrics against numpy.

def _streaming(metric_fn, batches):
  with tf.Graph().as_default():
    y = v1.placeholder(tf.float32, [None, None, batches[0][0].shape[-1]])
    p = v1.placeholder(tf.float32, [None, None, batches[0][0].shape[-1]])
    value, update = metric_fn(y, p)
    with v1.Session() as sess:
      sess.run(v1.local_variables_initializer())
      for labels, preds in batches:
        sess.run(update, {y: labels, p: preds})
      return sess.run(value)


def test_pearson_r_and_r2_match_numpy_over_batches_and_length():
  rng = np.random.RandomState(0)
  batches = []
  for _ in range(3):
    labels = rng.gamma(2, 1, [4, 10, 3]).astype(np.float32)
    preds = (labels * rng.uniform(0.5, 1.5, [1, 1, 3]) +
             rng.normal(0, 0.7, labels.shape)).astype(np.float32)
    batches.append((labels, preds))
  y = np.concatenate([b[0] for b in batches]).reshape(-1, 3).astype(np.float64)
  p = np.concatenate([b[1] for b in batches]).reshape(-1, 3).astype(np.float64)
  want_r = [np.corrcoef(y[:, t], p[:, t])[0, 1] for t in range(3)]
  want_r2 = [1 - ((y[:, t] - p[:, t]) ** 2).sum() /
             ((y[:, t] - y[:, t].mean()) ** 2).sum() for t in range(3)]
  np.testing.assert_allclose(_streaming(metrics.pearson_r, batches), want_r,
                             rtol=1e-4)
  np.testing.assert_allclose(_streaming(metrics.r2, batches), want_r2, rtol=1e-4)
  # A mean of per-batch values would differ: the accumulation is what is tested.
  per_batch = np.mean([np.corrcoef(b[0].reshape(-1, 3)[:, 0],
                                   b[1].reshape(-1, 3)[:, 0])[0, 1] for b in batches])
  assert abs(per_batch - want_r[0]) > 1e-4


def _numpy_auroc(y, p):
  pos, neg = p[y > 0.5], p[y <= 0.5]
  return ((pos[:, None] > neg[None, :]).mean() +
          0.5 * (pos[:, None] == neg[None, :]).mean())


def test_auroc_and_auprc_match_numpy():
  rng = np.random.RandomState(1)
  labels = (rng.rand(2, 50, 2) < 0.3).astype(np.float32)
  preds = np.clip(labels * 0.3 + rng.uniform(0, 0.7, labels.shape), 0, 1).astype(
      np.float32)
  batches = [(labels[:1], preds[:1]), (labels[1:], preds[1:])]
  got = _streaming(lambda y, p: metrics.auc_per_target(y, p, 'ROC'), batches)
  y, p = labels.reshape(-1, 2), preds.reshape(-1, 2)
  want = [_numpy_auroc(y[:, t], p[:, t]) for t in range(2)]
  np.testing.assert_allclose(got, want, atol=0.01)
  got_pr = _streaming(lambda y, p: metrics.auc_per_target(y, p, 'PR'), batches)
  for t in range(2):
    order = np.argsort(-p[:, t])
    hits = y[order, t]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    want_ap = (precision * hits).sum() / hits.sum()  # average precision
    assert abs(got_pr[t] - want_ap) < 0.03


def test_losses_match_numpy():
  rng = np.random.RandomState(2)
  y = rng.gamma(2, 1, [2, 5, 3]).astype(np.float32)
  p = rng.gamma(2, 1, [2, 5, 3]).astype(np.float32)
  np.testing.assert_allclose(metrics.poisson_loss(y, p).numpy(),
                             np.mean(p - y * np.log(p + 1e-7)), rtol=1e-5)
  np.testing.assert_allclose(metrics.mse_loss(y, p).numpy(), np.mean((p - y) ** 2),
                             rtol=1e-5)
  b = (y > 2).astype(np.float32)
  q = 1 / (1 + np.exp(-p + 2))
  np.testing.assert_allclose(
      metrics.bce_loss(b, q).numpy(),
      -np.mean(b * np.log(q) + (1 - b) * np.log(1 - q)), rtol=1e-5)


def test_docs_example_params_build():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  params = seqnn_params.load(os.path.join(root, 'configs', 'seqnn_example.json'))
  model = params['model']
  assert [b['name'] for b in model['trunk']] == [
      'conv_block', 'conv_tower', 'dilated_residual', 'conv_block']
  assert model['head'][-1]['name'] == 'final'
  assert model['head'][-1]['activation'] == 'softplus'
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [None, model['seq_length'], 4])
    y = seqnn.build_network(model, x, is_training=True)
    # Pooling 8 x 4 x 4 = 128 bp per bin.
    assert y.shape.as_list() == [None, model['seq_length'] // 128, 10]


def test_layer_norm_and_bce_metrics_graph():
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [2, 32, 4])
    params = {'seq_length': 32, 'norm_type': 'layer', 'trunk': [
        {'name': 'conv_dna', 'filters': 4, 'kernel_size': 5, 'pool_size': 2},
        {'name': 'res_tower', 'filters_init': 4, 'filters_end': 8, 'repeat': 2}],
              'head': {'name': 'final', 'units': 3, 'activation': 'sigmoid'}}
    model = seqnn.SeqNN(False, 3, params=params, loss='bce')
    preds = model.predict(model.preprocess({'sequence': x}))
    assert preds['predictions'].shape.as_list() == [2, 4, 3]
    names = {v.op.name for v in v1.global_variables()}
    assert 'trunk/res_tower_1/rep_0/conv_nac_1/layer_norm/gamma' in names
    labels = v1.placeholder(tf.float32, [2, 4, 3])
    ops = model.accuracy(model.postprocess(preds), labels)
    assert {'auroc', 'auprc', 'auroc_per_target', 'auprc_per_target'} == set(ops)
    loss = model.loss(preds, labels)
    assert set(loss) == {'loss', 'bce_loss'}
