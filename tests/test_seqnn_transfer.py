"""baskerville's transfer section (hound_transfer.py): what each mode and adapter
trains, counted against baskerville's own code; adapters at their initial values
predict as the base model; LoRA, IA3 and LoCon fold into the exported weights; houlsby
layers stay and params.json describes them; bad transfer sections are one line.

  .venv/bin/python -m pytest -q tests/test_seqnn_transfer.py

tests/data/transfer/baskerville_trainable.json holds the trainable weights
hound_transfer's functions (baskerville's transfer.py) give the reference .h5 model
for each transfer.
"""

import json
import os

import numpy as np
import pytest

from conftest import REPO
from conftest import run_cli
from conftest import small_config
import seq_helpers
import tensorflow as tf

from estimator_pipeline import train
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.config import transfer as transfer_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.models.seqnn import weights
from estimator_pipeline.train import exporting

DATA = os.path.join(REPO, 'tests', 'data')
PARAMS = os.path.join(DATA, 'basenji', 'baskerville_params.json')
H5 = os.path.join(DATA, 'basenji', 'baskerville_model.h5')
INPUT = os.path.join(DATA, 'basenji', 'baskerville_input.npy')
with open(os.path.join(DATA, 'transfer', 'baskerville_trainable.json')) as f:
  REFERENCE = json.load(f)
TRANSFERS = ('full', 'linear', 'lora', 'lora_full', 'ia3', 'locon', 'lora_conv',
             'houlsby', 'houlsby_se')
v1 = tf.compat.v1


def _section(name):
  return {'mode': name} if name in ('full', 'linear') else {'mode': 'adapter',
                                                            'adapter': name}


def _params(name=None):
  params, _ = params_lib.select_head(params_lib.load(PARAMS), 'head_human')
  if name:
    params['transfer'] = _section(name)
  return params


def _predict(params, checkpoint, merged=False, change=None):
  """Inference predictions of params' model on the reference input from checkpoint,
  then after change(sess) alters variables: (first, second or None, {variable: array}
  after the change)."""
  found = transfer_lib.settings(params)
  inputs = np.load(INPUT).astype(np.float32)[:1]
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [None, 4096, 4])
    model = network.SeqNN(False, params=params['model'], transfer=found, merged=merged)
    y = model.predict(x)['predictions']
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      names = set(tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map())
      v1.train.Saver([v for v in v1.global_variables() if v.op.name in names]).restore(
          sess, checkpoint)
      first, second = sess.run(y, {x: inputs}), None
      if change:
        change(sess)
        second = sess.run(y, {x: inputs})
      values = {v.op.name: sess.run(v) for v in v1.global_variables()}
      return first, second, values


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """(the reference .h5 as a checkpoint of this graph, its predictions)."""
  prefix = str(tmp_path_factory.mktemp('base') / 'base.ckpt')
  with tf.Graph().as_default() as graph:
    network.SeqNN(False, params=_params()['model']).predict(
        v1.placeholder(tf.float32, [1, 4096, 4]))
    model_layers = weights.model_layers(graph)
  h5 = weights.H5Weights(H5)
  mapping, _ = weights.match(model_layers, h5)
  weights.write_checkpoint(h5, mapping, prefix)
  h5.close()
  return prefix, _predict(_params(), prefix)[0]


@pytest.mark.parametrize('name', TRANSFERS)
def test_trainable_variables_are_hound_transfers(name):
  with tf.Graph().as_default():
    params = _params(name)
    model = network.SeqNN(True, params=params['model'],
                          transfer=transfer_lib.settings(params))
    model.predict(v1.placeholder(tf.float32, [2, 4096, 4]))
    trained = v1.trainable_variables()
  want = REFERENCE[name]
  assert sum(int(np.prod(v.shape)) for v in trained) == want['count']
  # The same weights: shapes and the adapter names baskerville gives them.
  assert sorted(v.shape.as_list() for v in trained) == sorted(
      s for _, s in want['weights'])
  ours = sorted(n.op.name.split('/')[-2] for n in trained)
  theirs = sorted(n.split('/')[-2] for n, _ in want['weights'])
  adapter_parts = {'lora_a', 'lora_b', 'ia3', 'ia3_ff', 'locon_down', 'locon_up',
                   'adapter_down', 'adapter_up'}
  assert [p for p in ours if p in adapter_parts] == [
      p for p in theirs if p in adapter_parts]


def _randomize_adapters(sess):
  rng = np.random.RandomState(0)
  for variable in v1.get_collection(network.adapters_lib.ADAPTER_VARIABLES):
    shape = variable.shape.as_list()
    variable.load(rng.normal(1.0 if '/ia3' in variable.op.name else 0.0, 0.1,
                             shape).astype(np.float32), sess)


# lora and lora_conv's LoRA are lora_full's code on fewer projections.
@pytest.mark.parametrize('name', ('lora_full', 'ia3', 'locon', 'houlsby', 'houlsby_se'))
def test_adapters_start_as_the_base_model_and_merge_into_its_weights(base, name,
                                                                     tmp_path):
  prefix, plain = base
  params = _params(name)
  start, trained, values = _predict(params, prefix, change=_randomize_adapters)
  if name.startswith('houlsby'):
    # baskerville starts houlsby and squeeze-excite weights at N(0, 1e-3), not zero.
    assert 0 < np.abs(start - plain).max() <= 1e-3 * np.abs(plain).max()
    return
  np.testing.assert_array_equal(start, plain)
  assert np.abs(trained - plain).max() > 1e-3 * np.abs(plain).max()  # they do act
  saved = weights.save_arrays(values, str(tmp_path / 'trained.ckpt'))
  merged_prefix = network.merge_checkpoint(params['model'], transfer_lib.settings(
      params), saved, str(tmp_path / 'merged' / 'model.ckpt'))
  names = tf.train.load_checkpoint(merged_prefix).get_variable_to_shape_map()
  assert not [n for n in names if any(p in n for p in ('lora', 'ia3', 'locon'))]
  merged, _, _ = _predict(params, merged_prefix, merged=True)
  assert np.abs(merged - trained).max() <= 1e-5 * np.abs(trained).max()


def _train(root, name, **flags):
  records = seq_helpers.write_dataset(root / 'data', 'new', n_train=4, n_valid=0,
                                      seq_length=4096, pool=64, num_targets=74)
  params = json.loads(open(PARAMS).read())
  del params['train']['warmup_steps'], params['model']['head_mouse']
  params['train']['learning_rate'] = 0.01
  params['transfer'] = _section(name)
  path = seq_helpers.write_params(root / 'p.json', params)
  cfg = small_config(root / 'run', os.path.join(records, 'train-*.tfr'),
                     model_name='seqnn', params_file=path, num_steps=1,
                     save_checkpoints_steps=1, batch_size=2, checkpoint_path=H5,
                     **flags)
  train.run(cfg)
  return root / 'run'


def _served(version):
  inputs = np.load(INPUT).astype(np.float32)[:1]
  with tf.Graph().as_default(), v1.Session() as sess:
    meta = v1.saved_model.loader.load(sess, ['serve'], version)
    onehot = meta.signature_def['onehot']
    names = [v.op.name for v in v1.global_variables()]
    return names, sess.run(onehot.outputs['predictions'].name,
                           {onehot.inputs['sequence'].name: inputs})


def test_lora_run_trains_only_its_weights_and_exports_them_merged(tmp_path, capfd):
  run = _train(tmp_path, 'lora')
  console = capfd.readouterr().err
  assert ('transfer mode adapter (adapter lora) trains 6 variables, 6858 of 117338 '
          'parameters' in console), console[-2000:]
  step1 = tf.train.load_checkpoint(str(run / 'model.ckpt-1'))
  names = step1.get_variable_to_shape_map()
  lora_b = [n for n in names if n.endswith('lora_b/kernel')]
  assert len(lora_b) == 2 and all(np.abs(step1.get_tensor(n)).max() > 0 for n in lora_b)
  final = os.path.join(run, 'export', 'final')
  version = os.path.join(final, sorted(os.listdir(final))[-1])
  served_names, served = _served(version)
  assert not [n for n in served_names if 'lora' in n]
  unmerged, _, _ = _predict(params_lib.load(str(run / 'params.json')),
                            str(run / 'model.ckpt-1'))
  assert np.abs(served - unmerged).max() <= 1e-5 * np.abs(unmerged).max()


def test_houlsby_run_keeps_its_layers_and_params_json_describes_them(tmp_path):
  run = _train(tmp_path, 'houlsby')
  saved = params_lib.load(str(run / 'params.json'))
  assert (saved['model']['adapter'], saved['model']['adapter_latent']) == ('houlsby', 8)
  final = os.path.join(run, 'export', 'final')
  version = os.path.join(final, sorted(os.listdir(final))[-1])
  with open(os.path.join(version, 'assets.extra', 'params.json')) as f:
    assert json.load(f)['model']['adapter'] == 'houlsby'
  served_names, served = _served(version)
  assert len([n for n in served_names if '/adapter_houlsby' in n]) == 8
  # The model section alone (baskerville's load_model_houlsby.json) builds them too.
  alone = dict(saved)
  del alone['transfer']
  unmerged, _, _ = _predict(alone, str(run / 'model.ckpt-1'))
  assert np.abs(served - unmerged).max() <= 1e-5 * np.abs(unmerged).max()


@pytest.mark.parametrize('section, words', [
    ({'mode': 'partial'}, ['mode=\'partial\'', 'full, linear, adapter']),
    ({'mode': 'adapter', 'adapter': 'prefix'}, ['adapter=\'prefix\'', 'lora, lora_full, '
                                                'ia3, locon, lora_conv, houlsby']),
    ({'mode': 'full', 'adapter': 'lora'}, ['needs "mode": "adapter"']),
    ({'mode': 'adapter', 'adapter': 'lora', 'rank': 4}, ['unknown key rank']),
])
def test_bad_transfer_sections_are_one_line(section, words):
  params = params_lib.load(PARAMS)
  params['transfer'] = section
  with pytest.raises(UserError) as e:
    params_lib.check(params, 'p.json')
  for word in words:
    assert word in str(e.value), str(e.value)


def test_adapter_on_a_model_without_its_blocks_is_one_line_and_writes_nothing(tmp_path):
  # basenji's small model has no attention.
  params = json.loads(open(os.path.join(DATA, 'basenji', 'basenji_params.json')).read())
  params['transfer'] = {'mode': 'adapter', 'adapter': 'lora'}
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=2, n_valid=0,
                                      seq_length=4096, pool=128, num_targets=3)
  path = seq_helpers.write_params(tmp_path / 'p.json', params)
  done = run_cli(['train.py', '--model_name=seqnn', '--params_file=' + path,
                  '--model_dir=' + str(tmp_path / 'run'), '--num_steps=1',
                  '--train_record_path=' + os.path.join(records, 'train-*.tfr')])
  lines = done.stderr.strip().splitlines()
  assert done.returncode == 2 and lines[-1].startswith('error: '), done.stderr[-2000:]
  assert 'transfer adapter lora needs a model with attention' in lines[-1]
  assert not os.path.exists(tmp_path / 'run')
  params['transfer'] = {'mode': 'adapter', 'adapter': 'houlsby_se', 'conv_select': 99}
  with pytest.raises(UserError, match='conv_select must be less than'):
    network.make_adapters(params['model'], transfer_lib.settings(params))


def test_ia3_on_borzoi_scales_its_feed_forward_as_hound_transfer():
  # Borzoi's transformers contract 1536 -> 768: baskerville's IA3 scales those inputs.
  want = REFERENCE['borzoilite']['ia3']
  params = params_lib.load(os.path.join(
      DATA, 'basenji', 'params', 'baskerville', 'tests', 'data', 'transfer', 'json',
      want['file']))
  params, _ = params_lib.select_head(params)
  params['model'].update(seq_length=8192)
  params['model']['trunk'][-1]['cropping'] = 8
  with tf.Graph().as_default():
    network.SeqNN(True, params=params['model'], transfer=transfer_lib.settings(
        params)).predict(v1.placeholder(tf.float32, [1, 8192, 4]))
    trained = v1.trainable_variables()
  assert (sum(int(np.prod(v.shape)) for v in trained), len(trained)) == (
      want['count'], want['n'])
  assert len([v for v in trained if v.op.name.endswith('ia3_ff/kernel')]) == 8


def test_an_h5_with_the_transfer_params_exports_as_the_merged_model(tmp_path):
  # hound_transfer copies the params file (transfer section and all) next to its
  # model_best.mergeW.h5, whose weights are merged: exported as they are. (A LoRA,
  # IA3 and LoCon mergeW.h5 of the reference model, written by baskerville's own
  # merge_lora / merge_ia3 / merge_locon, export within 7e-7 of its predictions.)
  params = json.loads(open(PARAMS).read())
  params['transfer'] = {'mode': 'adapter', 'adapter': 'lora'}
  path = seq_helpers.write_params(tmp_path / 'params.json', params)
  version, _ = exporting.export(checkpoint=H5, export_dir=str(tmp_path / 'exports'),
                                overrides={'params_file': path})
  names, served = _served(version)
  assert not [n for n in names if 'lora' in n]
  want = np.load(os.path.join(DATA, 'basenji', 'baskerville_pred.npy'))[:1]
  assert np.abs(served - want).max() <= 2e-5 * np.abs(want).max()
