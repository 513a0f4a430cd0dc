"""basenji's and baskerville's trained models here: their .h5 exported without training
gives their predictions, plain and ensembled; a trunk warm-started from an .h5 is their
trunk, bit for bit; an .h5 that does not fit is one line naming the block.

  .venv/bin/python -m pytest -q tests/test_seqnn_basenji.py

The reference files (tests/data/basenji/README.md) were written by basenji's and
baskerville's own code; a faithful float32 build is within 2e-5 x max |reference|.
"""

import json
import os

import h5py
import numpy as np
import pytest

from conftest import REPO
from conftest import run_cli
from conftest import small_config
import seq_helpers
import tensorflow as tf

from estimator_pipeline import train
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.models.seqnn import weights
from estimator_pipeline.train import exporting
from estimator_pipeline.train import tasks

DATA = os.path.join(REPO, 'tests', 'data', 'basenji')
TOLERANCE = 2e-5
v1 = tf.compat.v1


def _ref(name):
  return os.path.join(DATA, name)


def _onehot_predictions(version, lib):
  """(signature names, the onehot signature's predictions on the reference input)."""
  inputs = np.load(_ref('%s_input.npy' % lib)).astype(np.float32)
  # TF1's loader: TF2's tf.saved_model.load prunes every signature first, which for
  # an ensembled model (six networks and their gradients) takes half a minute.
  with tf.Graph().as_default(), v1.Session() as sess:
    meta = v1.saved_model.loader.load(sess, ['serve'], version)
    onehot = meta.signature_def['onehot']
    return set(meta.signature_def), sess.run(
        onehot.outputs['predictions'].name, {onehot.inputs['sequence'].name: inputs})


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
  """{(lib, ensembled): SavedModel version} exported from the reference .h5 files:
  the first by `python -m export`, the others by the library it runs."""
  root = tmp_path_factory.mktemp('exports')
  done = run_cli(['-m', 'export', '--params_file=' + _ref('basenji_params.json'),
                  '--checkpoint=' + _ref('basenji_model.h5'),
                  '--export_dir=' + str(root / 'cli')])
  assert done.returncode == 0, done.stderr[-3000:]
  found = {('basenji', False): done.stdout.strip().splitlines()[-1]}
  for lib, ensembled in (('basenji', True), ('baskerville', False),
                         ('baskerville', True)):
    overrides = dict(params_file=_ref('%s_params.json' % lib), ensemble_rc=ensembled,
                     ensemble_shifts='1,0,-1' if ensembled else '0')
    found[lib, ensembled], checkpoint = exporting.export(
        '', _ref('%s_model.h5' % lib), str(root / ('%s_%s' % (lib, ensembled))),
        overrides=overrides)
    assert checkpoint == _ref('%s_model.h5' % lib)
  return found


@pytest.mark.both_kernels
@pytest.mark.parametrize('lib', ['basenji', 'baskerville'])
@pytest.mark.parametrize('ensembled', [False, True], ids=['plain', 'rc_shifts'])
def test_h5_export_predicts_as_basenji(exports, lib, ensembled):
  want = np.load(_ref('%s_pred%s.npy' % (lib, '_ensemble_rc_shifts' if ensembled
                                         else '')))
  signatures, got = _onehot_predictions(exports[lib, ensembled], lib)
  assert {'serving_default', 'onehot', 'saliency'} <= signatures
  assert got.shape == want.shape
  assert np.abs(got - want).max() <= TOLERANCE * np.abs(want).max()


def test_h5_of_another_architecture_is_one_line_naming_the_block(tmp_path):
  done = run_cli(['-m', 'export', '--params_file=' + _ref('baskerville_params.json'),
                  '--checkpoint=' + _ref('basenji_model.h5'),
                  '--export_dir=' + str(tmp_path / 'out')])
  assert done.returncode == 2, done.stderr[-3000:]
  assert 'Traceback' not in done.stderr
  errors = [l for l in done.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1, done.stderr[-3000:]
  assert 'does not fit block trunk/conv_dna_0' in errors[0]
  assert 'conv/kernel' in errors[0] and '[7, 4, 32]' in errors[0], errors[0]
  assert '[15, 4, 64]' in errors[0], errors[0]
  assert not os.path.exists(tmp_path / 'out')


def _model_layers(params):
  with tf.Graph().as_default() as graph:
    model = network.SeqNN(False, params=params)
    model.predict(v1.placeholder(tf.float32, [1, params['seq_length'], 4]))
    return weights.model_layers(graph)


def _basenji_section(**changes):
  params, _ = params_lib.select_head(params_lib.load(_ref('basenji_params.json')))
  return dict(params['model'], **changes)


def _trunk_only_h5(path):
  """basenji's SeqNN.save(trunk=True): the reference .h5 without its head's layer."""
  with h5py.File(_ref('basenji_model.h5'), 'r') as source, h5py.File(path, 'w') as f:
    names = [n for n in source['model_weights'].attrs['layer_names'] if n != 'dense']
    for name in names:
      source.copy(source['model_weights'][name], f, name)
    f.attrs['layer_names'] = names
  return path


def test_missing_and_mismatched_weights_name_the_block(tmp_path):
  section = _basenji_section()
  trunk_only = weights.H5Weights(_trunk_only_h5(str(tmp_path / 'trunk.h5')))
  with pytest.raises(UserError) as e:
    weights.match(_model_layers(section), trunk_only)
  assert ('does not fit block head/final_0: its weight dense/kernel (shape [64, 3]) '
          'is not in the .h5 (it holds weights for 32 layers') in str(e.value)
  # A new head on that trunk: what basenji #102 and #180 ask for.
  mapping, _ = weights.match(_model_layers(section), trunk_only, ('head',))
  assert len(mapping) == 80
  # With --ignore_missing_vars what does not fit is skipped and listed.
  mapping, skipped = weights.match(_model_layers(section), trunk_only,
                                   ignore_missing=True)
  assert len(mapping) == 80 and skipped == ['head/final_0/dense/kernel',
                                            'head/final_0/dense/bias']
  trunk_only.close()
  h5 = weights.H5Weights(_ref('basenji_model.h5'))
  longer = dict(section, trunk=section['trunk'] + [{'name': 'conv_block',
                                                    'filters': 8}])
  with pytest.raises(UserError) as e:
    weights.match(_model_layers(longer), h5)
  assert str(e.value).startswith(
      '--checkpoint_path=%s does not fit block trunk/conv_block_4: its weight '
      'conv/kernel has shape [1, 64, 8] in the model but [64, 3] in the .h5 '
      '(dense/kernel:0 of layer dense): pass the params file' % _ref('basenji_model.h5'))
  shorter = dict(section, trunk=section['trunk'][:-1])
  with pytest.raises(UserError) as e:
    weights.match(_model_layers(shorter), h5)
  assert 'does not fit block head/final_0' in str(e.value)  # 72 inputs, not 64
  assert '[72, 3]' in str(e.value) and '[1, 72, 64]' in str(e.value)
  h5.close()


def test_other_hdf5_and_image_models_are_refused(tmp_path):
  path = str(tmp_path / 'other.h5')
  with h5py.File(path, 'w') as f:
    f['x'] = np.zeros(3)
  assert files.is_hdf5(path) and not files.is_hdf5(_ref('basenji_params.json'))
  with pytest.raises(UserError, match='is an HDF5 file but not Keras weights'):
    weights.H5Weights(path)
  with pytest.raises(UserError, match='only sequence models'):
    tasks.get('image').import_weights(None, path, str(tmp_path))


def test_trunk_warm_start_from_h5_is_bit_identical_with_a_new_head(tmp_path, capfd):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=4, n_valid=0,
                                      seq_length=4096, pool=128, num_targets=2)
  cfg = small_config(tmp_path / 'run', os.path.join(records, 'train-*.tfr'),
                     model_name='seqnn', params_file=_ref('basenji_params.json'),
                     num_steps=1, save_checkpoints_steps=1, batch_size=2,
                     learning_rate=0.01, checkpoint_path=_ref('basenji_model.h5'),
                     checkpoint_exclude_scopes='head')
  train.run(cfg)
  console = capfd.readouterr().err
  assert 'Warm-starting 80 variables from %s (excluded: head)' % _ref(
      'basenji_model.h5') in console
  # Keys basenji takes and this run does not use are named once, not refused.
  for key in ('train.train_epochs', 'train.patience'):
    assert console.count('%s %s is not applied' % (_ref('basenji_params.json'),
                                                   key)) == 1, console[-3000:]
  step0 = tf.train.load_checkpoint(str(tmp_path / 'run' / 'model.ckpt-0'))
  h5 = weights.H5Weights(_ref('basenji_model.h5'))
  mapping, _ = weights.match(_model_layers(_basenji_section()), h5, ('head',))
  assert len(mapping) == 80 and all(n.startswith('trunk/') for n in mapping)
  assert any(n.endswith('moving_variance') for n in mapping)
  for name, (layer, weight) in mapping.items():
    np.testing.assert_array_equal(step0.get_tensor(name), h5.value(layer, weight),
                                  err_msg=name)
  # The new head predicts the records' 2 targets (the .h5's head has 3).
  assert step0.get_variable_to_shape_map()['head/final_0/dense/kernel'] == [64, 2]
  h5.close()


def test_warm_start_from_a_foreign_h5_writes_nothing(tmp_path):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=2, n_valid=0,
                                      seq_length=4096, pool=64, num_targets=2)
  with open(_ref('baskerville_params.json')) as f:
    params = json.load(f)
  del params['train']['warmup_steps']  # longer than this one-step run
  params_path = seq_helpers.write_params(tmp_path / 'p.json', params)
  cfg = small_config(tmp_path / 'run', os.path.join(records, 'train-*.tfr'),
                     model_name='seqnn', params_file=params_path, num_steps=1,
                     checkpoint_path=_ref('basenji_model.h5'))
  with pytest.raises(UserError, match='does not fit block trunk/conv_dna_0'):
    train.run(cfg)
  assert not os.path.exists(tmp_path / 'run')


def test_gelu_switch_changes_what_the_h5_predicts(tmp_path):
  # basenji 0.6+ computes gelu's tanh form; the sigmoid form of basenji 0.5.1 and
  # earlier (--gelu=sigmoid, for the 2020 Basenji2 models) gives other numbers.
  section = _basenji_section()
  h5 = weights.H5Weights(_ref('basenji_model.h5'))
  mapping, _ = weights.match(_model_layers(section), h5)
  prefix = weights.write_checkpoint(h5, mapping, str(tmp_path / 'w.ckpt'))
  h5.close()
  inputs = np.load(_ref('basenji_input.npy')).astype(np.float32)
  want = np.load(_ref('basenji_pred.npy'))
  errors = {}
  for gelu in ('tanh', 'sigmoid'):
    with tf.Graph().as_default():
      x = v1.placeholder(tf.float32, [None, 4096, 4])
      y = network.SeqNN(False, params=section, gelu=gelu).predict(x)['predictions']
      with v1.Session() as sess:
        v1.train.Saver(v1.global_variables()).restore(sess, prefix)
        errors[gelu] = np.abs(sess.run(y, {x: inputs}) - want).max() / want.max()
  assert errors['tanh'] <= TOLERANCE < 20 * TOLERANCE < errors['sigmoid']
