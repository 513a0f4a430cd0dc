"""End to end: records -> train_and_evaluate -> checkpoints, eval events, SavedModels
that saved_model_cli shows and runs; resume. Bad input: test_reliability.py.

  .venv/bin/python -m pytest -q tests/test_train.py
"""

import glob
import os

import numpy as np
import pytest

from conftest import class_image
from conftest import run_cli
from conftest import tree_digest
from conftest import image_config
from conftest import read_events
from conftest import write_image_data
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.core import files
from estimator_pipeline.records import image_format
from estimator_pipeline.analysis import image_predictions as predict


_config = image_config  # 30 steps of 16, a checkpoint and evaluation every 15.


def _scalar_tags(event_dir):
  tags = {}
  for step, tag, _ in read_events(event_dir):
    tags.setdefault(tag, []).append(step)
  return tags


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """One small cifarnet run shared by the tests that only read its artifacts."""
  root = tmp_path_factory.mktemp('trained')
  data = write_image_data(root / 'data', train_formats=('png',), validation_seed=9)
  cfg = _config(data, root / 'run')
  result = train.run(cfg)
  return cfg, result, data


def test_checkpoints_events_and_config(trained):
  cfg, result, _ = trained
  assert result.global_step == cfg.num_steps
  assert tf.train.latest_checkpoint(cfg.model_dir).endswith('model.ckpt-30')
  saved = config.load(cfg.model_dir)
  assert saved.model_name == 'cifarnet' and saved.num_steps == 30
  train_tags = _scalar_tags(cfg.model_dir)
  for tag in ('loss', 'total_loss', 'classification_loss', 'regularization_loss',
              'learning_rate', 'accuracy', 'global_step/sec'):
    assert tag in train_tags, (tag, sorted(train_tags))
  eval_tags = _scalar_tags(os.path.join(cfg.model_dir, 'eval'))
  for tag in ('loss', 'accuracy', 'mean_per_class_accuracy'):
    assert tag in eval_tags, (tag, sorted(eval_tags))
  # Evaluation ran after every checkpoint (15 and 30), not once at the end.
  assert sorted(set(eval_tags['accuracy'])) == [15, 30]
  assert result.eval_metrics['accuracy'] >= 0.9


def test_export_layout_for_tf_serving(trained):
  cfg, result, _ = trained
  for name in ('best', 'final'):
    versions = os.listdir(os.path.join(cfg.model_dir, 'export', name))
    assert versions and all(v.isdigit() for v in versions), versions
    newest = os.path.join(cfg.model_dir, 'export', name, max(versions, key=int))
    assert result.exports[name] == newest
    assert os.path.isfile(os.path.join(newest, 'saved_model.pb'))
    assert os.path.isfile(os.path.join(newest, 'variables', 'variables.index'))
  assert not glob.glob(os.path.join(cfg.model_dir, 'export', '*', 'temp-*'))


def test_saved_model_cli_show_and_run(trained, tmp_path):
  _, result, _ = trained
  export_dir = result.exports['best']
  show = run_cli(['-m', 'tensorflow.python.tools.saved_model_cli', 'show', '--dir',
                  export_dir, '--all'])
  assert show.returncode == 0, show.stderr
  text = show.stdout
  assert "signature_def['serving_default']" in text
  assert 'tensorflow/serving/predict' in text
  serving_def = text.split("signature_def['serving_default']")[1]
  assert "inputs['image_bytes']" in serving_def and 'dtype: DT_STRING' in serving_def
  for output in ('classes', 'probabilities', 'class_names'):
    assert "outputs['%s']" % output in serving_def

  # A real PNG file, as a client would send it, through `saved_model_cli run`.
  rng = np.random.RandomState(3)
  png = tmp_path / 'green.png'
  png.write_bytes(tf.io.encode_png(class_image(1, 40, rng)).numpy())
  np.save(tmp_path / 'inputs.npy', np.array([png.read_bytes()], dtype=object))
  run = run_cli(['-m', 'tensorflow.python.tools.saved_model_cli', 'run', '--dir',
                 export_dir, '--tag_set', 'serve', '--signature_def',
                 'serving_default', '--inputs',
                 'image_bytes=%s' % (tmp_path / 'inputs.npy')])
  assert run.returncode == 0, run.stderr
  classes_part = run.stdout.split('Result for output key classes:')[1].split('\n')[1]
  assert classes_part.strip() == '[1]', run.stdout
  assert "b'green'" in run.stdout


def test_export_predict_matches_estimator_predict(trained, tmp_path):
  cfg, result, _ = trained
  rng = np.random.RandomState(5)
  paths = []
  for label in range(3):
    path = tmp_path / ('%d.png' % label)
    path.write_bytes(tf.io.encode_png(class_image(label, 32, rng)).numpy())
    paths.append(str(path))
  served = dict(predict.predict_images(result.exports['final'], paths))
  assert [int(served[p]['classes']) for p in paths] == [0, 1, 2]
  assert [served[p]['class_names'] for p in paths] == [b'red', b'green', b'blue']
  for p in paths:
    assert abs(float(np.sum(served[p]['probabilities'])) - 1) < 1e-5


def test_resume_continues_from_latest_checkpoint(trained, capfd):
  cfg, _, data = trained
  more = cfg.replace(num_steps=40, save_checkpoints_steps=10)
  result = train.run(more)
  assert result.global_step == 40
  assert 'Resuming from' in capfd.readouterr().err
  # The closing summary's best spans both runs, as BestExporter's judgement does.
  history = files.eval_history(cfg.model_dir)
  assert {15, 30, 40} <= set(history)
  assert result.best_metrics['loss'] == min(m['loss'] for m in history.values())
  # Re-running the finished job: one line, nothing written, success.
  before = tree_digest(cfg.model_dir)
  again = train.run(more)
  err = capfd.readouterr().err
  assert 'already holds step 40, at or past --num_steps=40' in err
  assert 'Raise --num_steps' in again.finished and again.global_step == 40
  assert tree_digest(cfg.model_dir) == before


def test_model_dir_of_another_model_is_refused(trained):
  cfg, _, _ = trained
  with pytest.raises(UserError, match='model_name=cifarnet'):
    plan_lib.preflight(cfg.replace(model_name='resnet_v1_50', num_steps=100))


def test_resume_with_other_class_count_is_refused_before_writing(trained):
  cfg, _, _ = trained
  config_file = os.path.join(cfg.model_dir, 'config.json')
  before = open(config_file).read()
  with pytest.raises(UserError, match='num_classes'):
    train.run(cfg.replace(num_classes=5, num_steps=100))
  assert open(config_file).read() == before


def test_class_ids_beyond_labels_txt_get_their_number_as_name(tmp_path):
  from estimator_pipeline.models import model_fn  # pylint: disable=g-import-not-at-top
  from estimator_pipeline import models  # pylint: disable=g-import-not-at-top
  names_file = image_format.write_class_names(str(tmp_path), ('a', 'b', 'c'), 5)
  fn = model_fn.make_model_fn(models.get('cifarnet'), num_classes=5,
                              model_params={'class_names_file': names_file})
  with tf.Graph().as_default():
    images = tf.zeros([3, 32, 32, 3])
    spec = fn({'image': images}, None, tf.estimator.ModeKeys.PREDICT)
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.tables_initializer()])
      names = sess.run(spec.predictions['class_names'],
                       feed_dict={spec.predictions['classes']: [3, 4, 0]})
  assert list(names) == [b'3', b'4', b'a']
