"""SeqNN end to end: basenji records -> train_and_evaluate -> eval events -> SavedModel
with DNA-string, one-hot and saliency signatures; warm start on a frozen trunk; the
test-time ensemble; the train.py command line.

  .venv/bin/python -m pytest -q tests/test_seqnn_train.py
"""

import dataclasses
import glob
import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_cli
import seq_helpers
from conftest import read_events
from conftest import small_config
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline import models
from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.train import exporting
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.train import plan as plan_lib

# Dilated convolutions trained, evaluated, exported and served: again with oneDNN off.
pytestmark = pytest.mark.both_kernels

BASES = 'ACGT'


def _config(records, model_dir, params_file, **kw):
  """seqnn from params_file; batch size, optimizer and rate from its train section."""
  values = dict(model_name='seqnn', params_file=params_file, num_steps=60,
                save_checkpoints_steps=30, log_every_steps=30)
  values.update(kw)
  for name in ('batch_size', 'learning_rate', 'random_flip'):
    values.setdefault(name, config.Config.default(name))
  return small_config(model_dir, os.path.join(records, 'train-*.tfr'),
                      os.path.join(records, 'valid-*.tfr'), **values)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp('seqnn')
  records = seq_helpers.write_dataset(root / 'data', 'new')
  params = seq_helpers.write_params(root / 'params.json')
  cfg = _config(records, root / 'run', params)
  result = train.run(cfg)
  return cfg, result, records, root


def _events(event_dir):
  values, texts = {}, set()
  for _, tag, value in read_events(event_dir):
    if value.HasField('simple_value'):
      values.setdefault(tag, []).append(value.simple_value)
    elif value.metadata.plugin_data.plugin_name == 'text':
      texts.add(tag)
  return values, texts


def test_train_eval_artifacts(trained):
  cfg, result, _, _ = trained
  assert result.global_step == 60
  saved = config.load(cfg.model_dir)
  # The params file's train section, resolved: batch 4, adam, constant rate.
  assert (saved.batch_size, saved.optimizer, saved.decay_rate) == (4, 'adam', 1.0)
  assert saved.num_classes == 2  # targets, from the records
  with open(os.path.join(cfg.model_dir, 'params.json')) as f:
    params = json.load(f)
  assert params['model']['trunk'][2]['name'] == 'dilated_residual'
  scalars, texts = _events(os.path.join(cfg.model_dir, 'eval'))
  for tag in ('loss', 'pearsonr', 'r2', 'poisson_loss'):
    assert tag in scalars, sorted(scalars)
  assert {'pearsonr_per_target', 'r2_per_target'} <= {t.split('/')[0] for t in texts}
  # The coverage is the G/C and A/T content: learnable in 60 steps.
  assert result.eval_metrics['pearsonr'] > 0.6
  # basenji keeps the model of the best validation Pearson R: model_dir/best and
  # export/best are judged by it, unless --early_stopping_metric is typed.
  assert saved.early_stopping_metric == 'pearsonr' and result.best_metric == 'pearsonr'
  with open(os.path.join(cfg.model_dir, 'best', 'best.json')) as f:
    best = json.load(f)
  assert (best['metric'], best['direction']) == ('pearsonr', 'max')
  reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(cfg.model_dir))
  # Batch-norm moving statistics were updated while training.
  moving = reader.get_tensor('trunk/conv_block_0/batch_norm/moving_mean')
  assert np.abs(moving).max() > 0


def _predict_fn(export_dir, signature):
  loaded = tf.saved_model.load(export_dir)
  return loaded, loaded.signatures[signature]


def _random_dna(n, length, seed):
  rng = np.random.RandomState(seed)
  return [''.join(rng.choice(list('ACGTNacgt'), length)) for _ in range(n)]


def _one_hot(texts):
  return np.stack([[[float(c.upper() == b) for b in BASES] for c in t] for t in texts])


def test_export_signatures_with_saved_model_cli(trained):
  cfg, result, _, _ = trained
  export = result.exports['final']
  shown = run_cli(['-m', 'tensorflow.python.tools.saved_model_cli', 'show', '--dir',
                   export, '--all'])
  assert shown.returncode == 0, shown.stderr
  for text in ("signature_def['serving_default']", "signature_def['onehot']",
               "signature_def['saliency']", 'DT_STRING', 'shape: (-1, 32, 2)',
               "inputs['target_index']", "outputs['scores']", 'shape: (-1, 256, 4)'):
    assert text in shown.stdout, text
  dna = _random_dna(2, 256, 0)
  out_dir = os.path.join(cfg.model_dir, 'cli_out')
  ran = run_cli(['-m', 'tensorflow.python.tools.saved_model_cli', 'run', '--dir',
                 export, '--tag_set', 'serve', '--signature_def', 'serving_default',
                 '--input_exprs', 'sequence=%r' % dna, '--outdir', out_dir])
  assert ran.returncode == 0, ran.stderr
  cli_preds = np.load(os.path.join(out_dir, 'predictions.npy'))
  assert cli_preds.shape == (2, 32, 2) and (cli_preds > 0).all()  # softplus
  # The one-hot signature gives the same numbers for the same sequences.
  _, onehot = _predict_fn(export, 'onehot')
  preds = onehot(sequence=tf.constant(_one_hot(dna), tf.float32))['predictions']
  np.testing.assert_allclose(preds.numpy(), cli_preds, rtol=1e-5, atol=1e-6)
  # A sequence of the wrong length is refused.
  _, serving_default = _predict_fn(export, 'serving_default')
  with pytest.raises(tf.errors.InvalidArgumentError, match='exactly 256'):
    serving_default(sequence=tf.constant(['ACGT']))


def test_saliency_signature_is_input_times_gradient(trained):
  _, result, _, _ = trained
  export = result.exports['final']
  _, saliency = _predict_fn(export, 'saliency')
  _, onehot = _predict_fn(export, 'onehot')
  dna = _random_dna(2, 256, 1)
  out = saliency(sequence=tf.constant(dna), target_index=tf.constant([0, 1], tf.int32))
  sal, scores = out['saliency'].numpy(), out['scores'].numpy()
  assert sal.shape == (2, 256, 4) and scores.shape == (2, 256)
  np.testing.assert_allclose(scores, sal.sum(-1), rtol=1e-5, atol=1e-7)
  x = _one_hot(dna)
  assert (sal[x == 0] == 0).all()  # input x gradient: zero where the input is zero
  assert np.abs(scores).max() > 0
  # The gradient, taken by TensorFlow 2 through the one-hot signature: example 0 asks
  # for target 0, example 1 for target 1, each summed over length.
  inputs = tf.constant(x, tf.float32)
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    preds = onehot(sequence=inputs)['predictions']
    chosen = tf.reduce_sum(preds[0, :, 0]) + tf.reduce_sum(preds[1, :, 1])
  gradient = tape.gradient(chosen, inputs).numpy()
  np.testing.assert_allclose(sal, x * gradient, rtol=1e-4, atol=1e-6)
  # Another target gives another map.
  other = saliency(sequence=tf.constant(dna), target_index=tf.constant([1, 0],
                                                                        tf.int32))
  assert not np.allclose(other['saliency'].numpy(), sal)


def test_ensemble_export_averages_rc_and_shifts(trained, tmp_path):
  cfg, result, records, _ = trained
  ens_cfg = cfg.replace(ensemble_rc=True, ensemble_shifts='-1,0,1')
  spec = models.get('seqnn')
  plan = plan_lib.preflight(ens_cfg.replace(
      model_dir=str(tmp_path / 'plan'),
      train_record_path=os.path.join(records, 'train-0.tfr'), eval_record_path=''))
  fn = model_fn_lib.make_model_fn(spec, num_classes=2, model_params=plan.model_params)
  estimator = tf.estimator.Estimator(fn, model_dir=cfg.model_dir)
  export = estimator.export_saved_model(
      str(tmp_path / 'ensemble'), plan.task.serving_input_fn(plan)).decode()
  _, ensemble = _predict_fn(export, 'onehot')
  _, single = _predict_fn(result.exports['final'], 'onehot')
  x = _one_hot(_random_dna(2, 256, 2)).astype(np.float32)
  predict = lambda a: single(sequence=tf.constant(a))['predictions'].numpy()
  want = []
  for shift in (-1, 0, 1):
    shifted = np.zeros_like(x)
    if shift > 0:
      shifted[:, shift:] = x[:, :-shift]
    elif shift < 0:
      shifted[:, :shift] = x[:, -shift:]
    else:
      shifted = x
    want.append(predict(shifted))
    want.append(predict(shifted[:, ::-1, ::-1].copy())[:, ::-1])
  got = ensemble(sequence=tf.constant(x))['predictions'].numpy()
  np.testing.assert_allclose(got, np.mean(want, 0), rtol=1e-4, atol=1e-6)
  assert not np.allclose(got, predict(x), rtol=1e-3)


def test_export_from_params_file_and_a_model_dir_checkpoint(trained, tmp_path):
  """python -m export --params_file=... --checkpoint=<a model_dir checkpoint>: the
  same SavedModel as the run's own export, without its model_dir."""
  cfg, result, _, _ = trained
  version, checkpoint = exporting.export(
      '', tf.train.latest_checkpoint(cfg.model_dir), str(tmp_path / 'out'),
      overrides={'params_file': cfg.params_file})
  assert checkpoint.endswith('-60')
  x = _one_hot(_random_dna(2, 256, 3)).astype(np.float32)
  _, mine = _predict_fn(version, 'onehot')
  _, theirs = _predict_fn(result.exports['final'], 'onehot')
  np.testing.assert_allclose(mine(sequence=tf.constant(x))['predictions'].numpy(),
                             theirs(sequence=tf.constant(x))['predictions'].numpy(),
                             rtol=1e-6)


def test_warm_start_new_head_on_frozen_trunk(trained, tmp_path):
  cfg, _, records, _ = trained
  cfg2 = _config(records, tmp_path / 'head', cfg.params_file, num_steps=20,
                 save_checkpoints_steps=20, checkpoint_path=cfg.model_dir,
                 checkpoint_exclude_scopes='head', scopes_to_freeze='trunk')
  train.run(cfg2)
  before = tf.train.load_checkpoint(tf.train.latest_checkpoint(cfg.model_dir))
  after = tf.train.load_checkpoint(tf.train.latest_checkpoint(cfg2.model_dir))
  names = [n for n in after.get_variable_to_shape_map()
           if n.startswith(('trunk/', 'head/')) and 'Adam' not in n]
  trunk = [n for n in names if n.startswith('trunk/')]
  assert any('moving_mean' in n for n in trunk)
  for name in trunk:  # weights and batch-norm statistics alike
    np.testing.assert_array_equal(after.get_tensor(name), before.get_tensor(name),
                                  err_msg=name)
  kernel = 'head/final_0/dense/kernel'
  assert not np.array_equal(after.get_tensor(kernel), before.get_tensor(kernel))


def test_steps_per_loop_and_data_threads(trained, tmp_path):
  """The speed flags apply to sequence records too: stacked batches, a private pool."""
  cfg, _, records, root = trained
  params = cfg.params_file
  looped = train.run(_config(records, tmp_path / 'looped', params, num_steps=10,
                                 save_checkpoints_steps=4, steps_per_loop=3,
                                 data_threads=1))
  assert looped.global_step == 10
  # Loops stop at every checkpoint step: 10 = 3+1 | 3+1 | 2.
  steps = sorted(int(p.split('-')[-1].split('.')[0]) for p in glob.glob(
      str(tmp_path / 'looped' / 'model.ckpt-*.index')))
  assert steps == [0, 4, 8, 10]
  assert np.isfinite(looped.eval_metrics['loss'])
  plan = plan_lib.preflight(_config(records, tmp_path / 'plan', params,
                                     steps_per_loop=3, data_threads=1))
  train_input, _ = plan.task.input_fns(plan)
  dataset = train_input()
  features, target = dataset.element_spec
  assert features['sequence'].shape.as_list()[:2] == [3, cfg.batch_size]
  assert target.shape.as_list()[:2] == [3, cfg.batch_size]
  assert dataset.options().threading.private_threadpool_size == 1


def test_train_py_on_old_layout_without_statistics(tmp_path):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'old', n_train=16, n_valid=8,
                                      statistics=False)
  params = json.loads(json.dumps(seq_helpers.TINY_PARAMS))
  params['model']['seq_length'] = 128  # the records hold 256 bp: data wins, said once
  params['train']['learning_rate'] = 0.02
  params['model']['head'] = [{'name': 'dense_block', 'units': 4},
                             {'name': 'final', 'units': 3, 'activation': 'softplus'}]
  path = seq_helpers.write_params(tmp_path / 'params.json', params)
  model_dir = tmp_path / 'run'
  done = run_cli(['train.py', '--model_name=seqnn', '--params_file=' + path,
                  '--model_dir=' + str(model_dir),
                  '--train_record_path=' + os.path.join(records, 'train-*.tfr'),
                  '--eval_record_path=' + os.path.join(records, 'valid-*.tfr'),
                  '--num_steps=4', '--batch_size=2', '--save_checkpoints_steps=4',
                  '--learning_rate=0.01'])
  assert done.returncode == 0, done.stderr[-2000:]
  console = done.stdout + done.stderr
  assert 'seq_length 128, but the records hold 256 bp' in console
  assert 'head final units 3, but the records hold 2 targets' in console
  saved = json.loads((model_dir / 'config.json').read_text())
  # Typed flags beat the file, even at their default value (0.01); the rest is the
  # file's.
  assert saved['batch_size'] == 2 and saved['learning_rate'] == 0.01
  assert saved['optimizer'] == 'adam' and saved['decay_rate'] == 1.0
  assert glob.glob(str(model_dir / 'export' / 'final' / '*' / 'saved_model.pb'))

  # Bad params: one line, exit 2, model_dir untouched.
  before = sorted(os.listdir(model_dir))
  bad = tmp_path / 'bad.json'
  bad.write_text('{"model": {"seq_length": 256, "trunk": [{"name": "conv_blok"}], '
                 '"head": {"name": "final", "units": 2}}}')
  failed = run_cli(['train.py', '--model_name=seqnn', '--params_file=' + str(bad),
                    '--model_dir=' + str(model_dir), '--num_steps=8',
                    '--train_record_path=' + os.path.join(records, 'train-*.tfr')])
  assert failed.returncode == 2
  assert 'Traceback' not in failed.stderr
  lines = [l for l in failed.stderr.splitlines() if l.startswith('error:')]
  assert len(lines) == 1 and "unknown block name 'conv_blok'" in lines[0], lines
  assert sorted(os.listdir(model_dir)) == before


def test_mismatched_records_are_refused_before_training(tmp_path):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=4, n_valid=2)
  with open(tmp_path / 'data' / 'statistics.json') as f:
    stats = json.load(f)
  stats['target_length'] = 16
  (tmp_path / 'data' / 'statistics.json').write_text(json.dumps(stats))
  cfg = _config(records, tmp_path / 'run',
                seq_helpers.write_params(tmp_path / 'p.json'))
  with pytest.raises(UserError) as e:
    plan_lib.preflight(cfg)
  assert 'train-0.tfr' in str(e.value) and '64' in str(e.value)
  assert not os.path.exists(tmp_path / 'run')
  shutil.rmtree(tmp_path / 'data')


def test_params_file_with_an_image_model_is_refused(tmp_path):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=2, n_valid=1)
  cfg = _config(records, tmp_path / 'run', seq_helpers.write_params(tmp_path / 'p.json'),
                model_name='cifarnet')
  with pytest.raises(UserError, match='--params_file is read by sequence models'):
    plan_lib.preflight(cfg)


def test_missing_params_file_is_a_user_error(tmp_path):
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=2, n_valid=1)
  with pytest.raises(UserError, match='--params_file is empty'):
    plan_lib.preflight(_config(records, tmp_path / 'run', ''))
  with pytest.raises(UserError, match='does not exist'):
    plan_lib.preflight(_config(records, tmp_path / 'run', str(tmp_path / 'no.json')))


def test_params_read_once_model_built_once_and_the_plan_frozen(trained, tmp_path,
                                                               monkeypatch):
  cfg, _, records, _ = trained
  cfg = cfg.replace(model_dir=str(tmp_path / 'run'), num_steps=2,
                    save_checkpoints_steps=2, early_stopping_metric='')
  reads, builds = [], []
  load, build = params_lib.load, network.build_network
  monkeypatch.setattr(params_lib, 'load', lambda path: reads.append(path) or load(path))
  monkeypatch.setattr(network, 'build_network',
                      lambda *args: builds.append(args) or build(*args))
  # What driver.run does: the params file read once, its train section applied.
  resolved, params, not_applied = params_lib.resolve_config(cfg)
  plan = plan_lib.preflight(resolved, params=params, not_applied=not_applied)
  assert len(reads) == 1 and len(builds) == 1  # variables and metrics: one graph
  assert plan.notes == ('note: %s train.train_epochs_max is not applied (counts '
                        'epochs; the run counts steps: set --num_steps).'
                        % cfg.params_file,)
  with pytest.raises(dataclasses.FrozenInstanceError):
    plan.num_classes = 3
  # Resolved once, in preflight: what the Estimator runs with and config.json keeps.
  assert (plan.config.num_classes, plan.config.early_stopping_metric) == (
      2, 'pearsonr')
  reads.clear()
  train.run(cfg)
  assert reads == [cfg.params_file]
  assert config.load(cfg.model_dir) == plan.config

  # A head the records' targets refit changes its variables: the one second build.
  refit = json.loads(json.dumps(seq_helpers.TINY_PARAMS))
  refit['model']['head']['units'] = 3
  builds.clear()
  plan = plan_lib.preflight(cfg.replace(
      model_dir=str(tmp_path / 'refit'), params_file=seq_helpers.write_params(
          tmp_path / 'refit.json', refit)))
  assert len(builds) == 2
  assert plan.variables['head/final_0/dense/kernel'][-1] == 2, plan.variables
