"""An in-process stand-in for TF Serving, for tests: gRPC PredictionService and REST.

It loads an exported SavedModel with tf.saved_model.load and answers TF Serving's real
APIs on 127.0.0.1:
- gRPC: tensorflow_serving.apis PredictionService Predict and Classify, with the real
  PredictRequest / ClassificationRequest protos;
- REST: POST /v1/models/<name>[/versions/<v>]:predict (row `instances` and columnar
  `inputs`, {"b64": ...} for binary values) and :classify (`examples`), and GET
  /v1/models/<name>, in TF Serving's JSON formats.

It checks what TF Serving checks (model name, signature name, classify method) so a
client that works here sends what the real server accepts.
"""

import base64
import concurrent.futures
import http.server
import json
import os
import re
import threading

import grpc
import numpy as np
import tensorflow as tf

from tensorflow.python.saved_model import loader_impl  # pylint: disable=g-direct-tensorflow-import
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

CLASSIFY_METHOD = 'tensorflow/serving/classify'
DEFAULT_SIGNATURE = 'serving_default'


class ServingError(Exception):
  def __init__(self, message, grpc_code=grpc.StatusCode.INVALID_ARGUMENT, http=400):
    super().__init__(message)
    self.grpc_code = grpc_code
    self.http = http


class ServedModel:
  """One SavedModel version, as TF Serving runs it."""

  def __init__(self, version_dir, name='model'):
    self.name = name
    self.version = int(os.path.basename(os.path.normpath(version_dir)))
    self.loaded = tf.saved_model.load(version_dir)
    meta_graph = loader_impl.parse_saved_model(version_dir).meta_graphs[0]
    self.signature_defs = dict(meta_graph.signature_def)
    self.lock = threading.Lock()

  def check(self, name, version=None):
    if name != self.name:
      raise ServingError('Servable not found for request: Latest(%s)' % name,
                         grpc.StatusCode.NOT_FOUND, 404)
    if version is not None and int(version) != self.version:
      raise ServingError('Servable not found for request: Specific(%s, %s)'
                         % (name, version), grpc.StatusCode.NOT_FOUND, 404)

  def _signature(self, name):
    name = name or DEFAULT_SIGNATURE
    if name not in self.signature_defs:
      raise ServingError("Serving signature key \"%s\" not found." % name)
    return name, self.signature_defs[name], self.loaded.signatures[name]

  def input_names(self, signature_name):
    return sorted(self._signature(signature_name)[1].inputs)

  def predict(self, signature_name, inputs):
    """{input name: array} -> {output name: numpy array}."""
    _, signature_def, fn = self._signature(signature_name)
    missing = set(signature_def.inputs) - set(inputs)
    extra = set(inputs) - set(signature_def.inputs)
    if missing or extra:
      raise ServingError('input keys %s do not match the signature\'s %s'
                         % (sorted(inputs), sorted(signature_def.inputs)))
    feed = {}
    for key, value in inputs.items():
      dtype = tf.dtypes.as_dtype(signature_def.inputs[key].dtype)
      try:
        feed[key] = tf.constant(value, dtype=dtype)
      except (TypeError, ValueError) as e:
        raise ServingError('input %s: %s' % (key, e))
    try:
      with self.lock:
        result = fn(**feed)
    except tf.errors.InvalidArgumentError as e:
      raise ServingError(e.message)
    return {k: v.numpy() for k, v in result.items()}

  def classify(self, signature_name, serialized_examples):
    """serialized tf.Examples -> [[(label bytes, score)] per example]."""
    name, signature_def, _ = self._signature(signature_name)
    if signature_def.method_name != CLASSIFY_METHOD:
      raise ServingError('Expected classification signature method_name to be %s. Was:'
                         ' %s' % (CLASSIFY_METHOD, signature_def.method_name))
    (input_name,) = signature_def.inputs
    out = self.predict(name, {input_name: np.array(serialized_examples, dtype=object)})
    scores = out['scores']
    labels = out.get('classes')
    results = []
    for i in range(scores.shape[0]):
      results.append([(labels[i][j] if labels is not None else b'', float(scores[i][j]))
                      for j in range(scores.shape[1])])
    return results


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
  """tensorflow.serving.PredictionService over a ServedModel."""

  def __init__(self, model):
    self.model = model

  def _fail(self, context, error):
    context.abort(error.grpc_code, str(error))

  def Predict(self, request, context):
    try:
      spec = request.model_spec
      self.model.check(spec.name, spec.version.value if spec.HasField('version')
                       else None)
      inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
      outputs = self.model.predict(spec.signature_name, inputs)
    except ServingError as e:
      return self._fail(context, e)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self.model.name
    response.model_spec.version.value = self.model.version
    response.model_spec.signature_name = spec.signature_name or DEFAULT_SIGNATURE
    for key, value in outputs.items():
      if request.output_filter and key not in request.output_filter:
        continue
      response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
    return response

  def Classify(self, request, context):
    try:
      spec = request.model_spec
      self.model.check(spec.name, spec.version.value if spec.HasField('version')
                       else None)
      kind = request.input.WhichOneof('kind')
      if kind == 'example_list':
        examples = list(request.input.example_list.examples)
      elif kind == 'example_list_with_context':
        context_example = request.input.example_list_with_context.context
        examples = []
        for example in request.input.example_list_with_context.examples:
          merged = tf.train.Example()
          merged.CopyFrom(context_example)
          merged.MergeFrom(example)
          examples.append(merged)
      else:
        raise ServingError('Input is empty')
      results = self.model.classify(spec.signature_name,
                                    [e.SerializeToString() for e in examples])
    except ServingError as e:
      return self._fail(context, e)
    response = classification_pb2.ClassificationResponse()
    response.model_spec.name = self.model.name
    response.model_spec.version.value = self.model.version
    response.model_spec.signature_name = spec.signature_name or DEFAULT_SIGNATURE
    for pairs in results:
      classifications = response.result.classifications.add()
      for label, score in pairs:
        classifications.classes.add(label=label.decode(), score=score)
    return response


def start_grpc(model):
  """A gRPC server on 127.0.0.1 with a free port; returns (server, 'host:port')."""
  server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionServicer(model), server)
  port = server.add_insecure_port('127.0.0.1:0')
  server.start()
  return server, '127.0.0.1:%d' % port


# REST: TF Serving's JSON formats (tensorflow_serving/util/json_tensor.cc).

def _from_json(value):
  if isinstance(value, dict):
    if set(value) == {'b64'}:
      return base64.b64decode(value['b64'])
    return {k: _from_json(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_from_json(v) for v in value]
  return value


def _to_json(name, value):
  if isinstance(value, np.ndarray):
    return [_to_json(name, v) for v in value] if value.ndim else _to_json(
        name, value.item())
  if isinstance(value, (bytes, np.bytes_)):
    # TF Serving writes strings as text, and as {"b64": ...} for outputs named *_bytes.
    if name.endswith('_bytes'):
      return {'b64': base64.b64encode(value).decode()}
    return value.decode('utf-8', errors='replace')
  if isinstance(value, np.generic):
    return value.item()
  return value


def _feature(value):
  values = value if isinstance(value, list) else [value]
  if all(isinstance(v, bool) or isinstance(v, int) for v in values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
  if all(isinstance(v, (int, float)) for v in values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))
  out = []
  for v in values:
    if isinstance(v, dict) and set(v) == {'b64'}:
      out.append(base64.b64decode(v['b64']))
    elif isinstance(v, str):
      out.append(v.encode())
    else:
      raise ServingError('unsupported feature value %r' % (v,))
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=out))


def _example(features):
  if not isinstance(features, dict):
    raise ServingError('each of "examples" must be an object of features')
  return tf.train.Example(features=tf.train.Features(
      feature={k: _feature(v) for k, v in features.items()}))


def rest_predict(model, body):
  """A TF Serving REST :predict body (dict) -> the response body (dict)."""
  signature_name = body.get('signature_name', '')
  names = model.input_names(signature_name)
  if ('instances' in body) == ('inputs' in body):
    raise ServingError('JSON Value: %s Missing \'instances\' or \'inputs\' key, or '
                       'both given' % json.dumps(sorted(body))[:80])
  if 'instances' in body:
    instances = body['instances']
    if not isinstance(instances, list) or not instances:
      raise ServingError('"instances" must be a non-empty list')
    named = (all(isinstance(i, dict) and not set(i) == {'b64'} for i in instances))
    if named:
      inputs = {n: [_from_json(i[n]) for i in instances] for n in names
                if all(n in i for i in instances)}
    elif len(names) == 1:
      inputs = {names[0]: [_from_json(i) for i in instances]}
    else:
      raise ServingError('instances must be objects naming the inputs %s' % names)
    outputs = model.predict(signature_name, _arrays(inputs))
    count = len(instances)
    if len(outputs) == 1:
      (key, value), = outputs.items()
      return {'predictions': [_to_json(key, value[i]) for i in range(count)]}
    return {'predictions': [{k: _to_json(k, v[i]) for k, v in outputs.items()}
                            for i in range(count)]}
  columns = _from_json(body['inputs'])
  if not isinstance(columns, dict) or set(columns) - set(names):
    if len(names) != 1:
      raise ServingError('"inputs" must be an object naming the inputs %s' % names)
    columns = {names[0]: columns}
  outputs = model.predict(signature_name, _arrays(columns))
  if len(outputs) == 1:
    (key, value), = outputs.items()
    return {'outputs': _to_json(key, value)}
  return {'outputs': {k: _to_json(k, v) for k, v in outputs.items()}}


def _arrays(inputs):
  arrays = {}
  for key, value in inputs.items():
    try:
      arrays[key] = (np.array(value, dtype=object) if _is_bytes(value)
                     else np.array(value))
    except ValueError as e:
      raise ServingError('input %s is not a tensor (all instances must have the same '
                         'shape): %s' % (key, e))
  return arrays


def _is_bytes(value):
  while isinstance(value, list) and value:
    value = value[0]
  return isinstance(value, bytes)


def rest_classify(model, body):
  examples = body.get('examples')
  if not isinstance(examples, list) or not examples:
    raise ServingError('"examples" must be a non-empty list')
  context = body.get('context') or {}
  serialized = [_example(dict(context, **e)).SerializeToString() for e in examples]
  results = model.classify(body.get('signature_name', ''), serialized)
  return {'result': [[[label.decode(), score] for label, score in pairs]
                     for pairs in results]}


_PATH = re.compile(r'^/v1/models/([^/:]+)(?:/versions/(\d+))?(?::(predict|classify))?$')


class RestHandler(http.server.BaseHTTPRequestHandler):
  """TF Serving's REST API over the server's ServedModel."""

  def log_message(self, *args):  # Quiet: tests read the answers, not access logs.
    pass

  def _send(self, status, body):
    data = json.dumps(body).encode()
    self.send_response(status)
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def do_GET(self):  # pylint: disable=invalid-name
    match = _PATH.match(self.path)
    model = self.server.model
    try:
      if not match or match.group(3):
        raise ServingError('Malformed request: GET %s' % self.path, http=404)
      model.check(match.group(1), match.group(2))
    except ServingError as e:
      return self._send(e.http, {'error': str(e)})
    return self._send(200, {'model_version_status': [{
        'version': str(model.version), 'state': 'AVAILABLE',
        'status': {'error_code': 'OK', 'error_message': ''}}]})

  def do_POST(self):  # pylint: disable=invalid-name
    match = _PATH.match(self.path)
    model = self.server.model
    try:
      if not match or not match.group(3):
        raise ServingError('Malformed request: POST %s' % self.path, http=404)
      model.check(match.group(1), match.group(2))
      length = int(self.headers.get('Content-Length', 0))
      try:
        body = json.loads(self.rfile.read(length) or b'{}')
      except ValueError as e:
        raise ServingError('JSON Parse error: %s' % e)
      if not isinstance(body, dict):
        raise ServingError('JSON Value: the request must be an object')
      if match.group(3) == 'predict':
        answer = rest_predict(model, body)
      else:
        answer = rest_classify(model, body)
    except ServingError as e:
      return self._send(e.http, {'error': str(e)})
    return self._send(200, answer)


def start_rest(model):
  """The REST twin on 127.0.0.1 with a free port; returns (server, base URL)."""
  server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), RestHandler)
  server.model = model
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  return server, 'http://127.0.0.1:%d' % server.server_address[1]
