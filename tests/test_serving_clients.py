"""Clients of an export: REST round trips and the REST client, batch predict, and the
export command; exported predictions equal estimator.predict.

  .venv/bin/python -m pytest -q tests/test_serving_clients.py
"""

import io
import json
import os

import numpy as np
import pytest

from conftest import run_cli
import served_model
import serving_support
import tensorflow as tf

from estimator_pipeline.analysis import image_predictions as predict
from estimator_pipeline.analysis import rest_client as client
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.data import image_ops as preprocessing
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import exporting as export_lib
from estimator_pipeline.train import plan as plan_lib

SAVED_MODEL_CLI = ['-m', 'tensorflow.python.tools.saved_model_cli']


@pytest.fixture(scope='module')
def run(serving_run):
  return serving_run


# REST: the client against the REST twin.

@pytest.fixture(scope='module')
def rest_urls(run):
  servers, urls = [], {}
  for kind in ('encoded_image', 'tf_example', 'image_tensor'):
    model = serving_support.ServedModel(run['exports'][kind], name=kind)
    server, base = serving_support.start_rest(model)
    servers.append(server)
    urls[kind] = '%s/v1/models/%s' % (base, kind)
  yield urls
  for server in servers:
    server.shutdown()
    server.server_close()


def _lines(text):
  return [l.split('\t') for l in text.strip().splitlines()]


@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_rest_client_predicts_rows(run, rest_urls, kind):
  paths = served_model.photos(run)
  out = io.StringIO()
  client.run(rest_urls[kind], paths, serving_input=kind, batch_size=4, out=out)
  lines = _lines(out.getvalue())
  assert [l[0] for l in lines] == paths
  assert [l[1] for l in lines] == [served_model.NAMES[run['labels'][p]] for p in paths]
  assert all(float(l[2]) > 0.5 for l in lines)


def test_rest_columnar_inputs_equal_row_instances(run, rest_urls):
  paths = served_model.photos(run)[:3]
  url = rest_urls['encoded_image'] + ':predict'
  rows = client.post(url, client.predict_body(paths))['predictions']
  columns = client.post(url, {'inputs': {'image_bytes': client.predict_body(
      paths)['instances']}})['outputs']
  np.testing.assert_allclose([r['probabilities'] for r in rows],
                             columns['probabilities'], atol=1e-6)
  assert columns['class_names'] == [r['class_names'] for r in rows]


def test_rest_client_classify(run, rest_urls):
  paths = served_model.photos(run)
  out = io.StringIO()
  client.run(rest_urls['tf_example'], paths, method='classify', out=out)
  lines = _lines(out.getvalue())
  assert [l[1] for l in lines] == [served_model.NAMES[run['labels'][p]] for p in paths]
  # The :classify JSON answer, as TF Serving gives it: [[label, score], ...] per example.
  answer = client.post(rest_urls['tf_example'] + ':classify',
                       client.classify_body(paths[:1]))
  assert sorted(label for label, _ in answer['result'][0]) == sorted(served_model.NAMES)


def test_rest_client_cli_and_its_errors(run, rest_urls):
  paths = served_model.photos(run)
  images = ','.join(paths[:2])
  ok = run_cli(['-m', 'export.client', '--url=' + rest_urls['encoded_image'],
                '--images=' + images, '--raw'])
  assert ok.returncode == 0, ok.stderr[-2000:]
  answers = [json.loads(l) for l in ok.stdout.splitlines()]
  assert len(answers[0]['predictions']) == 2
  # A model the server does not have: one line naming the URL, exit 2.
  wrong = run_cli(['-m', 'export.client',
                   '--url=' + rest_urls['encoded_image'] + 'x', '--images=' + images])
  assert wrong.returncode == 2 and 'Traceback' not in wrong.stderr
  error = [l for l in wrong.stderr.splitlines() if l.startswith('error:')]
  assert len(error) == 1 and 'HTTP 404' in error[0], wrong.stderr[-2000:]
  with pytest.raises(UserError, match='cannot reach'):
    client.run('http://127.0.0.1:9/v1/models/x', paths[:1], timeout=5)


# The exported model answers what estimator.predict answers.

@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_exported_predictions_equal_estimator_predict(run, kind):
  paths = served_model.photos(run)
  cfg = export_lib.load_config(run['cfg'].model_dir)
  plan = plan_lib.plan_for_export(cfg, cfg.model_dir, cfg.model_dir)
  estimator = estimator_lib.build_estimator(plan)

  def input_fn():
    def load(path):
      image = preprocessing.decode_and_preprocess(
          tf.io.read_file(path), plan.spec.preprocessing, plan.image_size,
          plan.image_size, is_training=False)
      return {'image': image}
    return tf.data.Dataset.from_tensor_slices(paths).map(load).batch(4)

  expected = list(estimator.predict(input_fn, checkpoint_path=run['checkpoints'][kind]))
  served = dict(predict.predict_images(run['exports'][kind], paths, batch_size=4))
  for path, want in zip(paths, expected):
    got = served[path]
    np.testing.assert_allclose(got['probabilities'], want['probabilities'], atol=1e-5)
    np.testing.assert_allclose(got['top_k_probabilities'], want['top_k_probabilities'],
                               atol=1e-5)
    assert int(got['classes']) == int(want['classes'])
    assert got['class_names'] == want['class_names']


# The export CLI.

def test_export_cli_writes_a_new_integer_version(run):
  cli = run['cli']
  version = run['exports']['tf_example']
  assert os.path.dirname(version) == str(run['root'] / 'served_examples')
  assert os.path.basename(version).isdigit()
  assert 'Exported' in cli.stderr and 'Traceback' not in cli.stderr
  # A named checkpoint, into the same directory: a newer version beside the first.
  first_ckpt = os.path.join(run['cfg'].model_dir, 'model.ckpt-10')
  path, ckpt = export_lib.export(run['cfg'].model_dir, first_ckpt,
                                 os.path.dirname(version), 'tf_example')
  assert ckpt == first_ckpt
  assert int(os.path.basename(path)) > int(os.path.basename(version))
  assert sorted(os.listdir(os.path.dirname(version))) == sorted(
      [os.path.basename(version), os.path.basename(path)])


def test_export_of_a_run_without_class_names_file_reads_labels_txt(run, tmp_path):
  names_file = os.path.join(run['cfg'].model_dir, 'class_names.txt')
  os.rename(names_file, names_file + '.aside')
  try:
    path, _ = export_lib.export(run['cfg'].model_dir, 'latest', str(tmp_path))
  finally:
    os.rename(names_file + '.aside', names_file)
  asset = os.path.join(path, 'assets', 'class_names.txt')
  assert open(asset).read().splitlines() == list(served_model.NAMES)
  assert not [f for f in os.listdir(run['cfg'].model_dir) if f.startswith('export-')]


def test_export_cli_bad_input(run, tmp_path):
  model_dir = run['cfg'].model_dir
  with pytest.raises(UserError, match='holds no config.json'):
    export_lib.export(str(tmp_path))
  with pytest.raises(UserError, match='--checkpoint=.*does not exist'):
    export_lib.export(model_dir, str(tmp_path / 'model.ckpt-99'), str(tmp_path / 'o'))
  # A checkpoint of another model: named variable and shapes, nothing exported.
  with tf.Graph().as_default():
    tf.compat.v1.get_variable('CifarNet/conv1/weights', [3, 3, 3, 8])
    saver = tf.compat.v1.train.Saver()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      other = saver.save(sess, str(tmp_path / 'other.ckpt'))
  with pytest.raises(UserError, match='CifarNet/conv1/weights of shape'):
    export_lib.export(model_dir, other, str(tmp_path / 'o'))
  assert not (tmp_path / 'o').exists()
  proc = run_cli(['-m', 'export', '--model_dir=' + model_dir,
                  '--serving_input=jpeg_please'])
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  error = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(error) == 1 and '--serving_input=jpeg_please' in error[0], proc.stderr


# Batch predict.

def test_predict_cli_writes_csv_and_skips_unreadable_images(run, tmp_path):
  output = tmp_path / 'predictions.csv'
  parent = os.path.dirname(run['exports']['encoded_image'])  # newest version used
  proc = run_cli(['-m', 'export.predict', '--saved_model=' + parent,
                  '--images=' + str(run['root'] / 'photos' / '*'), '--batch_size=4',
                  '--output=' + str(output)])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'broken.jpg' in proc.stderr and 'Traceback' not in proc.stderr
  import csv  # pylint: disable=g-import-not-at-top
  rows = list(csv.DictReader(open(output)))
  assert [r['file'] for r in rows] == served_model.photos(run)
  assert [r['class_name'] for r in rows] == [served_model.NAMES[run['labels'][p]] for p in
                                             served_model.photos(run)]
  assert [r['class_name_1'] for r in rows] == [r['class_name'] for r in rows]
  for r in rows:
    total = sum(float(r['probability_%d' % i]) for i in (1, 2, 3))
    assert abs(total - 1) < 1e-4


def test_predict_records_to_jsonl(run, tmp_path):
  output = tmp_path / 'predictions.jsonl'
  count, skipped = predict.run(run['exports']['tf_example'],
                               records=str(run['data'] / 'validation-*'),
                               output=str(output), batch_size=5)
  assert count == 12 and not skipped
  rows = [json.loads(l) for l in open(output)]
  assert [r['file'].rsplit(':', 1)[1] for r in rows] == [str(i) for i in range(12)]
  assert [r['class_name'] for r in rows] == [served_model.NAMES[i % 3] for i in range(12)]
  assert all(len(r['top_k_class_names']) == 3 for r in rows)
  with pytest.raises(UserError, match='.csv or .jsonl'):
    predict.run(run['exports']['tf_example'], images=run['broken'],
                output=str(tmp_path / 'p.txt'))
  with pytest.raises(UserError, match='every one of them was unreadable'):
    predict.run(run['exports']['tf_example'], images=run['broken'])
