"""--recompute_trunk: each trunk block (each repetition of a tower) keeps only its input
and output and recomputes its activations in the backward pass; the gradients are the
ones without it, the batch-norm updates run once, and dropout drops the same units in
the recomputation.

  .venv/bin/python -m pytest -q tests/test_recompute_trunk.py
"""

import numpy as np
import pytest

import tensorflow as tf

from estimator_pipeline.config import config
from estimator_pipeline.config import transfer as transfer_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.models.seqnn import recompute

v1 = tf.compat.v1
PARAMS = {
    'seq_length': 256, 'activation': 'gelu', 'norm_type': 'batch', 'trunk': [
        {'name': 'conv_dna', 'filters': 8, 'kernel_size': 5, 'pool_size': 2},
        {'name': 'res_tower', 'filters_init': 8, 'filters_end': 12, 'kernel_size': 3,
         'repeat': 2, 'num_convs': 2, 'pool_size': 2},
        {'name': 'dilated_residual', 'filters': 4, 'repeat': 2},
        {'name': 'transformer_tower', 'key_size': 4, 'heads': 2, 'repeat': 2,
         'dropout': 0, 'attention_dropout': 0, 'position_dropout': 0},
        {'name': 'unet_conv', 'kernel_size': 3},
    ],
    'head': {'name': 'final', 'units': 3, 'activation': 'softplus'},
}


def _gradients(params, recompute, values=None, transfer=None):
  """({variable: gradient}, {variable: value}, number of update ops,
  {'Conv2D': ops, 'Conv2DBackpropFilter': ops})."""
  inputs = np.random.RandomState(0).randint(0, 2, (2, 256, 4)).astype(np.float32)
  with tf.Graph().as_default() as graph:
    x = v1.placeholder(tf.float32, [2, 256, 4])
    y = network.SeqNN(True, params=params, recompute_trunk=recompute,
                      transfer=transfer).predict(x)
    trained = v1.trainable_variables()
    grads = tf.gradients(tf.reduce_sum(y['predictions']), trained)
    updates = len(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
    convs = {t: len([o for o in graph.get_operations() if o.type == t])
             for t in ('Conv2D', 'Conv2DBackpropFilter')}
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      for variable in v1.global_variables():
        if values is not None:
          variable.load(values[variable.op.name], sess)
      values = {v.op.name: sess.run(v) for v in v1.global_variables()}
      found = dict(zip([v.op.name for v in trained], sess.run(grads, {x: inputs})))
  return found, values, updates, convs


def test_recomputed_trunk_gives_the_same_gradients():
  plain, values, updates, convs = _gradients(PARAMS, False)
  again, _, updates_again, convs_again = _gradients(PARAMS, True, values)
  scale = max(np.abs(g).max() for g in plain.values())
  assert max(np.abs(again[n] - plain[n]).max() for n in plain) <= 1e-5 * scale
  assert updates_again == updates  # the recomputation adds no batch-norm update
  assert convs_again['Conv2D'] > convs['Conv2D']  # the backward pass convolves again
  # Each filter's gradient once: a representation the U-net block reads (a tower's)
  # is an output of the recomputed block, not a back door into its forward build.
  assert convs_again['Conv2DBackpropFilter'] == convs['Conv2DBackpropFilter']


@pytest.mark.parametrize('adapter', ['lora', 'locon', 'houlsby'])
def test_recomputed_trunk_trains_adapters_with_the_same_gradients(adapter):
  # The fine-tuning case: a transfer's adapters inside the recomputed blocks.
  found = transfer_lib.settings({'model': PARAMS, 'transfer': {
      'mode': 'adapter', 'adapter': adapter, 'adapter_latent': 2}})
  plain, values, _, _ = _gradients(PARAMS, False, transfer=found)
  again, _, _, _ = _gradients(PARAMS, True, values, transfer=found)
  assert set(again) == set(plain) and len(plain) < 40  # the adapters, not the base
  scale = max(np.abs(g).max() for g in plain.values())
  assert scale > 0
  assert max(np.abs(again[n] - plain[n]).max() for n in plain) <= 1e-5 * scale


def test_the_recomputation_runs_in_the_backward_pass():
  # What saves the memory: no recomputed convolution may start before the forward
  # pass has ended (the predictions exist), or its activations live as long as ever.
  # tf.recompute_grad fails this in a TF1 graph (see recompute.py).
  inputs = np.random.RandomState(0).randint(0, 2, (2, 256, 4)).astype(np.float32)
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [2, 256, 4])
    y = network.SeqNN(True, params=PARAMS, recompute_trunk=True).predict(x)
    predictions = y['predictions'].op.name
    grads = tf.gradients(tf.reduce_sum(y['predictions']), v1.trainable_variables())
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(grads, {x: inputs})
      metadata = v1.RunMetadata()
      sess.run([grads, y['predictions']], {x: inputs}, run_metadata=metadata,
               options=v1.RunOptions(trace_level=v1.RunOptions.FULL_TRACE))
  nodes = [n for d in metadata.step_stats.dev_stats for n in d.node_stats]
  forward_end = max(n.all_start_micros + n.all_end_rel_micros for n in nodes
                    if n.node_name == predictions)
  recomputed = [n for n in nodes if 'Conv2D' in n.timeline_label
                and '/%s/' % recompute.SCOPE in n.node_name]
  assert len(recomputed) >= 8, len(recomputed)  # every recomputed block convolves
  early = [n.node_name for n in recomputed if n.all_start_micros < forward_end]
  assert not early


def test_dropout_drops_the_same_units_in_the_recomputation():
  # A linear model: sum(y(x)) - sum(y(0)) = <gradient, x> for one dropout mask. A
  # recomputation that drew another mask would give the gradient of another function.
  params = {'seq_length': 256, 'activation': 'linear', 'trunk': [
      {'name': 'conv_dna', 'filters': 8, 'kernel_size': 5, 'activation': 'linear'},
      {'name': 'res_tower', 'filters_init': 8, 'filters_end': 8, 'kernel_size': 3,
       'repeat': 2, 'num_convs': 1, 'pool_size': 2, 'dropout': 0.5,
       'activation': 'linear'}],
      'head': {'name': 'final', 'units': 2}}
  x = np.random.RandomState(1).uniform(size=(1, 256, 4)).astype(np.float32)
  with tf.Graph().as_default() as graph:
    inputs = v1.placeholder(tf.float32, [1, 256, 4])
    y = network.SeqNN(True, params=params, recompute_trunk=True).predict(inputs)
    total = tf.reduce_sum(y['predictions'])
    gradient = tf.gradients(total, inputs)[0]
    seeds = [o.outputs[0] for o in graph.get_operations()
             if o.type == 'RandomUniformInt']
    assert len(seeds) == 3  # one per recomputed block or repetition
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      fixed = {s: [7, i] for i, s in enumerate(seeds)}
      at_x, grad = sess.run([total, gradient], {**fixed, inputs: x})
      at_0 = sess.run(total, {**fixed, inputs: np.zeros_like(x)})
  assert at_x - at_0 == pytest.approx(float(np.sum(grad * x)), rel=1e-4)


def test_recompute_trunk_is_for_sequence_models_only(tmp_path):
  cfg = config.Config(model_dir=str(tmp_path / 'run'), train_record_path='x-*',
                      model_name='cifarnet', recompute_trunk=True)
  with pytest.raises(UserError, match='--recompute_trunk recomputes the trunk'):
    cfg.validate()
