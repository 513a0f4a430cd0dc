"""Serving: the three serving inputs and their registry, what every export holds,
saved_model_cli, gRPC round trips through an in-process TF Serving stand-in, and the
warm-up file. REST, batch predict and the export CLI: test_serving_clients.py.

  .venv/bin/python -m pytest -q tests/test_serving.py
"""

import os

import grpc
import numpy as np
import pytest

from conftest import run_cli
import served_model
import serving_support
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from estimator_pipeline import models
from estimator_pipeline import serving
from estimator_pipeline import train
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.serving import warmup

SAVED_MODEL_CLI = ['-m', 'tensorflow.python.tools.saved_model_cli']


@pytest.fixture(scope='module')
def run(serving_run):
  return serving_run


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
    train.run(cfg)
  assert not (tmp_path / 'never').exists()


# What every export holds.

@pytest.mark.parametrize('kind', ['encoded_image', 'image_tensor', 'tf_example'])
def test_export_ships_class_names_asset_and_warmup_requests(run, kind):
  version = run['exports'][kind]
  assert os.path.basename(version).isdigit()
  names_asset = os.path.join(version, 'assets', 'class_names.txt')
  assert open(names_asset).read().splitlines() == list(served_model.NAMES)
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
    np.save(npy, served_model.decoded(path)[np.newaxis])
    return 'images=%s' % npy
  np.save(npy, np.array([served_model.example(path).SerializeToString()], dtype=object))
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

  path = [p for p in served_model.photos(run) if p.endswith('.jpg')][1]  # green
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
  paths = served_model.photos(run)
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'encoded_image'
  request.model_spec.signature_name = 'serving_default'
  request.inputs['image_bytes'].CopyFrom(tf.make_tensor_proto(
      np.array([open(p, 'rb').read() for p in paths], dtype=object)))
  response = grpc_stubs['encoded_image'].Predict(request, timeout=60)
  assert response.model_spec.version.value == int(
      os.path.basename(run['exports']['encoded_image']))
  names = tf.make_ndarray(response.outputs['class_names'])
  assert [n.decode() for n in names] == [served_model.NAMES[run['labels'][p]] for p in paths]
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
  paths = served_model.photos(run)
  request = classification_pb2.ClassificationRequest()
  request.model_spec.name = 'tf_example'
  request.model_spec.signature_name = 'classify'
  request.input.example_list.examples.extend(served_model.example(p) for p in paths)
  response = grpc_stubs['tf_example'].Classify(request, timeout=60)
  results = response.result.classifications
  assert len(results) == len(paths)
  for path, result in zip(paths, results):
    assert sorted(c.label for c in result.classes) == sorted(served_model.NAMES)
    best = max(result.classes, key=lambda c: c.score)
    assert best.label == served_model.NAMES[run['labels'][path]]
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


