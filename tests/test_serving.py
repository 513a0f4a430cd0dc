"""Serving and inference: the three serving inputs, saved_model_cli, the warm-up file,
gRPC and REST round trips through an in-process TF Serving stand-in, the export CLI,
batch predict and the REST client; exported predictions equal estimator.predict.

  .venv/bin/python -m pytest -q tests/test_serving.py
"""

import io
import json
import os

import grpc
import numpy as np
import pytest

from conftest import class_image
from conftest import run_cli
from conftest import write_image_records
import serving_support
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from estimator_pipeline import config
from estimator_pipeline import models
from estimator_pipeline import preprocessing
from estimator_pipeline import train_lib
from estimator_pipeline.errors import UserError
from export import client
from export import export_lib
from export import predict
from export import serving
from export import warmup

NAMES = ('red', 'green', 'blue')
SAVED_MODEL_CLI = ['-m', 'tensorflow.python.tools.saved_model_cli']


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """One tiny cifarnet run and an export per serving input, shared by the module."""
  root = tmp_path_factory.mktemp('serving')
  data = root / 'data'
  data.mkdir()
  write_image_records(str(data / 'train-00000-of-00001.tfrecord'),
                      [i % 3 for i in range(48)], seed=1)
  write_image_records(str(data / 'validation-00000-of-00001.tfrecord'),
                      [i % 3 for i in range(12)], seed=2, fmt='jpeg')
  (data / 'labels.txt').write_text(''.join('%d:%s\n' % kv for kv in enumerate(NAMES)))
  cfg = config.Config(
      model_dir=str(root / 'run'), train_record_path=str(data / 'train-*'),
      eval_record_path=str(data / 'validation-*'), model_name='cifarnet',
      num_steps=20, batch_size=16, save_checkpoints_steps=10, log_every_steps=10,
      learning_rate=0.02, random_flip=False)
  result = train_lib.run(cfg)

  # Photos of every class, of other sizes than the records, PNG and JPEG, and one
  # file that is not an image.
  photos = root / 'photos'
  photos.mkdir()
  rng = np.random.RandomState(11)
  labels = {}
  for label in range(3):
    png = photos / ('%d_%s.png' % (label, NAMES[label]))
    png.write_bytes(tf.io.encode_png(class_image(label, 40, rng)).numpy())
    jpg = photos / ('%d_%s.jpg' % (label, NAMES[label]))
    jpg.write_bytes(tf.io.encode_jpeg(class_image(label, 48, rng), quality=95).numpy())
    labels[str(png)] = labels[str(jpg)] = label
  broken = photos / 'broken.jpg'
  broken.write_bytes(b'\xff\xd8\xff not really a jpeg')

  # The export CLI, as a user runs it (a new process), and the library in-process.
  cli = run_cli(['-m', 'export', '--model_dir=' + cfg.model_dir, '--checkpoint=best',
                 '--export_dir=' + str(root / 'served_examples'),
                 '--serving_input=tf_example'])
  assert cli.returncode == 0, cli.stderr[-3000:]
  tensor_dir, tensor_ckpt = export_lib.export(
      cfg.model_dir, 'latest', str(root / 'served_tensors'), 'image_tensor')
  return {
      'cfg': cfg, 'result': result, 'data': data, 'root': root, 'labels': labels,
      'broken': str(broken), 'cli': cli,
      'exports': {'encoded_image': result.exports['final'],
                  'tf_example': cli.stdout.strip().splitlines()[-1],
                  'image_tensor': tensor_dir},
      'checkpoints': {'encoded_image': tf.train.latest_checkpoint(cfg.model_dir),
                      'tf_example': export_lib.choose_checkpoint(cfg.model_dir,
                                                                 'best'),
                      'image_tensor': tensor_ckpt},
  }


def _photos(run):
  return sorted(run['labels'])


def _example(path):
  data = open(path, 'rb').read()
  return warmup.image_example(data, 'png' if path.endswith('.png') else 'jpeg')


def _decoded(path):
  return tf.io.decode_image(open(path, 'rb').read(), channels=3,
                            expand_animations=False).numpy()


# The serving inputs and their registry.

def test_serving_inputs_are_chosen_by_the_models_layout(run, tmp_path):
  spec = models.get('cifarnet')
  assert serving.names(spec.layout) == ['encoded_image', 'image_tensor', 'tf_example']
  assert serving.get(spec, '').name == 'encoded_image'
  with pytest.raises(UserError, match='encoded_image, image_tensor, tf_example'):
    serving.get(spec, 'jpeg_please')
  # Another layout (sequence models) plugs in its own inputs; an image name is not one.
  other = models.ModelSpec(name='seqlike', build=None, layout='sequence_test')
  with pytest.raises(UserError, match='no serving input is registered'):
    serving.get(other, 'encoded_image')
  # A bad --serving_input is refused before anything is written.
  cfg = run['cfg'].replace(model_dir=str(tmp_path / 'never'), serving_input='bogus')
  with pytest.raises(UserError, match='--serving_input=bogus'):
    train_lib.run(cfg)
  assert not (tmp_path / 'never').exists()


# What every export holds.

@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_export_ships_class_names_asset_and_warmup_requests(run, kind):
  version = run['exports'][kind]
  assert os.path.basename(version).isdigit()
  names_asset = os.path.join(version, 'assets', 'class_names.txt')
  assert open(names_asset).read().splitlines() == list(NAMES)
  # The names are read from the asset, not baked into the graph as constants.
  graph = open(os.path.join(version, 'saved_model.pb'), 'rb').read()
  assert b'green' not in graph
  logs = warmup.read(os.path.join(version, 'assets.extra', warmup.WARMUP_FILE))
  kinds = [log.WhichOneof('log_type') for log in logs]
  assert kinds == (['predict_log', 'classify_log'] if kind == 'tf_example'
                   else ['predict_log'])
  request = logs[0].predict_log.request
  assert request.model_spec.signature_name == 'serving_default'
  key = {'encoded_image': 'image_bytes', 'image_tensor': 'images',
         'tf_example': 'examples'}[kind]
  assert list(request.inputs) == [key]
  assert request.inputs[key].tensor_shape.dim[0].size == warmup.WARMUP_BATCH


def test_training_exports_best_and_final_with_warmup(run):
  model_dir = run['cfg'].model_dir
  for name in ('best', 'final'):
    directory = os.path.join(model_dir, 'export', name)
    versions = [v for v in os.listdir(directory)]
    assert versions and all(v.isdigit() for v in versions), versions
    for v in versions:
      assert os.path.isfile(os.path.join(directory, v, 'assets.extra',
                                         warmup.WARMUP_FILE))
      assert os.path.isfile(os.path.join(directory, v, 'assets', 'class_names.txt'))


# saved_model_cli, on real files, for every serving input.

def _cli_inputs(kind, path, tmp_path):
  npy = tmp_path / 'inputs.npy'
  if kind == 'encoded_image':
    np.save(npy, np.array([open(path, 'rb').read()], dtype=object))
    return 'image_bytes=%s' % npy
  if kind == 'image_tensor':
    np.save(npy, _decoded(path)[np.newaxis])
    return 'images=%s' % npy
  np.save(npy, np.array([_example(path).SerializeToString()], dtype=object))
  return 'examples=%s' % npy


@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_saved_model_cli_show_and_run(run, kind, tmp_path):
  version = run['exports'][kind]
  show = run_cli(SAVED_MODEL_CLI + ['show', '--dir', version, '--all'])
  assert show.returncode == 0, show.stderr[-2000:]
  default = show.stdout.split("signature_def['serving_default']")[1]
  key, dtype = {'encoded_image': ('image_bytes', 'DT_STRING'),
                'image_tensor': ('images', 'DT_UINT8'),
                'tf_example': ('examples', 'DT_STRING')}[kind]
  assert "inputs['%s']" % key in default and 'dtype: %s' % dtype in default
  for output in ('classes', 'probabilities', 'top_k_classes', 'top_k_probabilities',
                 'class_names', 'top_k_class_names'):
    assert "outputs['%s']" % output in default, output
  assert 'tensorflow/serving/predict' in default
  if kind == 'tf_example':
    classify = show.stdout.split("signature_def['classify']")[1].split(
        'signature_def[')[0]
    assert 'Method name is: tensorflow/serving/classify' in classify
    assert "outputs['classes']" in classify and "outputs['scores']" in classify
  else:
    assert "signature_def['classify']" not in show.stdout

  path = [p for p in _photos(run) if p.endswith('.jpg')][1]  # green
  inputs = _cli_inputs(kind, path, tmp_path)
  result = run_cli(SAVED_MODEL_CLI + ['run', '--dir', version, '--tag_set', 'serve',
                                      '--signature_def', 'serving_default', '--inputs',
                                      inputs])
  assert result.returncode == 0, result.stderr[-2000:]
  classes = result.stdout.split('Result for output key classes:')[1].split('\n')[1]
  assert classes.strip() == '[1]', result.stdout
  names = result.stdout.split('Result for output key class_names:')[1].split('\n')[1]
  assert names.strip() == "[b'green']", result.stdout


# gRPC: real TF Serving protos through an in-process PredictionService.

@pytest.fixture(scope='module')
def grpc_stubs(run):
  servers, stubs = [], {}
  for kind in ('encoded_image', 'tf_example'):
    model = serving_support.ServedModel(run['exports'][kind], name=kind)
    server, address = serving_support.start_grpc(model)
    servers.append(server)
    channel = grpc.insecure_channel(address)
    stubs[kind] = prediction_service_pb2_grpc.PredictionServiceStub(channel)
  yield stubs
  for server in servers:
    server.stop(None)


def test_grpc_predict_round_trip(run, grpc_stubs):
  paths = _photos(run)
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'encoded_image'
  request.model_spec.signature_name = 'serving_default'
  request.inputs['image_bytes'].CopyFrom(tf.make_tensor_proto(
      np.array([open(p, 'rb').read() for p in paths], dtype=object)))
  response = grpc_stubs['encoded_image'].Predict(request, timeout=60)
  assert response.model_spec.version.value == int(
      os.path.basename(run['exports']['encoded_image']))
  names = tf.make_ndarray(response.outputs['class_names'])
  assert [n.decode() for n in names] == [NAMES[run['labels'][p]] for p in paths]
  top = tf.make_ndarray(response.outputs['top_k_probabilities'])
  probabilities = tf.make_ndarray(response.outputs['probabilities'])
  assert top.shape == (len(paths), 3) and probabilities.shape == (len(paths), 3)
  np.testing.assert_allclose(top[:, 0], probabilities.max(axis=1), rtol=1e-6)
  np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
  top_names = tf.make_ndarray(response.outputs['top_k_class_names'])
  assert [r[0] for r in top_names] == list(names)

  # Unknown model and a broken image are errors, as TF Serving answers them.
  request.model_spec.name = 'nope'
  with pytest.raises(grpc.RpcError) as e:
    grpc_stubs['encoded_image'].Predict(request, timeout=60)
  assert e.value.code() == grpc.StatusCode.NOT_FOUND
  request.model_spec.name = 'encoded_image'
  request.inputs['image_bytes'].CopyFrom(tf.make_tensor_proto(
      np.array([open(run['broken'], 'rb').read()], dtype=object)))
  with pytest.raises(grpc.RpcError) as e:
    grpc_stubs['encoded_image'].Predict(request, timeout=60)
  assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_classify_round_trip(run, grpc_stubs):
  paths = _photos(run)
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = 'tf_example'
  request.model_spec.signature_name = 'classify'
  request.input.example_list.examples.extend(_example(p) for p in paths)
  response = grpc_stubs['tf_example'].Classify(request, timeout=60)
  results = response.result.classifications
  assert len(results) == len(paths)
  for path, result in zip(paths, results):
    assert sorted(c.label for c in result.classes) == sorted(NAMES)
    best = max(result.classes, key=lambda c: c.score)
    assert best.label == NAMES[run['labels'][path]]
    assert abs(sum(c.score for c in result.classes) - 1) < 1e-5

  # Classify needs a classify signature: serving_default (predict) is refused.
  request.model_spec.signature_name = 'serving_default'
  with pytest.raises(grpc.RpcError) as e:
    grpc_stubs['tf_example'].Classify(request, timeout=60)
  assert 'tensorflow/serving/classify' in e.value.details()


@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_warmup_requests_replay_as_tf_serving_would(run, kind):
  model = serving_support.ServedModel(run['exports'][kind], name='m')
  server, address = serving_support.start_grpc(model)
  try:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(address))
    logs = warmup.read(os.path.join(run['exports'][kind], 'assets.extra',
                                    warmup.WARMUP_FILE))
    for log in logs:
      if log.WhichOneof('log_type') == 'predict_log':
        request = log.predict_log.request
        request.model_spec.name = 'm'
        response = stub.Predict(request, timeout=60)
        assert tf.make_ndarray(response.outputs['probabilities']).shape == (
            warmup.WARMUP_BATCH, 3)
      else:
        request = log.classify_log.request
        request.model_spec.name = 'm'
        response = stub.Classify(request, timeout=60)
        assert len(response.result.classifications) == warmup.WARMUP_BATCH
  finally:
    server.stop(None)


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
  paths = _photos(run)
  out = io.StringIO()
  client.run(rest_urls[kind], paths, serving_input=kind, batch_size=4, out=out)
  lines = _lines(out.getvalue())
  assert [l[0] for l in lines] == paths
  assert [l[1] for l in lines] == [NAMES[run['labels'][p]] for p in paths]
  assert all(float(l[2]) > 0.5 for l in lines)


def test_rest_columnar_inputs_equal_row_instances(run, rest_urls):
  paths = _photos(run)[:3]
  url = rest_urls['encoded_image'] + ':predict'
  rows = client.post(url, client.predict_body(paths))['predictions']
  columns = client.post(url, {'inputs': {'image_bytes': client.predict_body(
      paths)['instances']}})['outputs']
  np.testing.assert_allclose([r['probabilities'] for r in rows],
                             columns['probabilities'], atol=1e-6)
  assert columns['class_names'] == [r['class_names'] for r in rows]


def test_rest_client_classify(run, rest_urls):
  paths = _photos(run)
  out = io.StringIO()
  client.run(rest_urls['tf_example'], paths, method='classify', out=out)
  lines = _lines(out.getvalue())
  assert [l[1] for l in lines] == [NAMES[run['labels'][p]] for p in paths]
  # The :classify JSON answer, as TF Serving gives it: [[label, score], ...] per example.
  answer = client.post(rest_urls['tf_example'] + ':classify',
                       client.classify_body(paths[:1]))
  assert sorted(label for label, _ in answer['result'][0]) == sorted(NAMES)


def test_rest_client_cli_and_its_errors(run, rest_urls):
  paths = _photos(run)
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
  paths = _photos(run)
  plan = export_lib.load_plan(run['cfg'].model_dir)
  estimator = train_lib.build_estimator(plan)

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
  assert open(asset).read().splitlines() == list(NAMES)
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
  assert [r['file'] for r in rows] == _photos(run)
  assert [r['class_name'] for r in rows] == [NAMES[run['labels'][p]] for p in
                                             _photos(run)]
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
  assert [r['class_name'] for r in rows] == [NAMES[i % 3] for i in range(12)]
  assert all(len(r['top_k_class_names']) == 3 for r in rows)
  with pytest.raises(UserError, match='.csv or .jsonl'):
    predict.run(run['exports']['tf_example'], images=run['broken'],
                output=str(tmp_path / 'p.txt'))
  with pytest.raises(UserError, match='every one of them was unreadable'):
    predict.run(run['exports']['tf_example'], images=run['broken'])
