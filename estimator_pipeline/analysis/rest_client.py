r"""A TF Serving REST client: image files to `:predict` or `:classify` requests, the
answers as lines.

  python -m export.client --url=http://localhost:8501/v1/models/x --images='photos/*.jpg'

Builds TF Serving `instances` requests ({"b64": ...} per image for the default
encoded_image export; a serialized tf.Example per image for --serving_input=tf_example;
pixel arrays for image_tensor, one image per request since they must share a size),
posts them to <url>:predict in batches and writes one line per image: file, the best
class (name when the model has labels.txt), its probability, and the top-k.
method='classify' posts tf.Examples to <url>:classify (exports made with
--serving_input=tf_example) and writes the best (class, score); raw writes each answer
as the server sent it. Uses only urllib: no HTTP dependency.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request

import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import image_format


def _b64(data):
  return {'b64': base64.b64encode(data).decode('ascii')}


def _image_format(path, data):
  return (image_format.sniff(data) or os.path.splitext(path)[1].lstrip('.').lower()
          or 'jpeg')


def _example(path, data):
  return image_format.make_example(data, image_format=_image_format(path, data))


def predict_body(paths, serving_input='encoded_image', signature_name=''):
  """A TF Serving :predict body in the row ("instances") format."""
  instances = []
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    if serving_input == 'encoded_image':
      instances.append(_b64(data))
    elif serving_input == 'tf_example':
      instances.append(_b64(_example(path, data).SerializeToString()))
    elif serving_input == 'image_tensor':
      instances.append(tf.io.decode_image(data, channels=3,
                                          expand_animations=False).numpy().tolist())
    else:
      raise UserError('--serving_input=%s is not one of encoded_image, tf_example, '
                      'image_tensor.' % serving_input)
  body = {'instances': instances}
  if signature_name:
    body['signature_name'] = signature_name
  return body


def classify_body(paths, signature_name='classify'):
  """A TF Serving :classify body: one tf.Example (as JSON features) per image."""
  examples = []
  for path in paths:
    with open(path, 'rb') as f:
      data = f.read()
    examples.append({image_format.KEYS['encoded']: _b64(data),
                     image_format.KEYS['format']: _image_format(path, data)})
  return {'signature_name': signature_name or 'classify', 'examples': examples}


def post(url, body, timeout=60.0):
  """POSTs JSON; returns the JSON answer. Errors name the URL and the server's words."""
  request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                   headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=timeout) as response:
      return json.loads(response.read())
  except urllib.error.HTTPError as e:
    try:
      message = json.loads(e.read()).get('error', '')
    except ValueError:
      message = ''
    raise UserError('%s answered HTTP %d%s: check --url and --serving_input.'
                    % (url, e.code, ' (%s)' % message if message else ''))
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, 'reason', e)
    raise UserError('cannot reach %s (%s): is TF Serving running there (see BUILD.md, '
                    '"Serving and inference")?' % (url, reason))


def _line(path, prediction):
  if not isinstance(prediction, dict):
    return '%s\t%s' % (path, json.dumps(prediction))
  names = prediction.get('top_k_class_names') or [
      str(c) for c in prediction.get('top_k_classes', [])]
  probs = prediction.get('top_k_probabilities', [])
  best = prediction.get('class_names', prediction.get('classes', ''))
  prob = ''
  if 'probabilities' in prediction and 'classes' in prediction:
    prob = '%.4f' % prediction['probabilities'][int(prediction['classes'])]
  top = ', '.join('%s %.4f' % (n, p) for n, p in zip(names, probs))
  return '%s\t%s\t%s\t%s' % (path, best, prob, top)


def run(url, paths, method='predict', serving_input='encoded_image', signature_name='',
        batch_size=16, timeout=60.0, raw=False, out=sys.stdout):
  """Sends paths in batches; writes one line per image (or the raw answers) to out."""
  url = url.rstrip('/')
  if not url.startswith(('http://', 'https://')) or '/v1/models/' not in url:
    raise UserError('--url=%s is not a TF Serving model address: use '
                    'http://HOST:8501/v1/models/NAME.' % url)
  if method == 'predict' and serving_input == 'image_tensor':
    # A uint8 [N, H, W, 3] request holds images of one size: one image per request.
    batch_size = 1
  answers = []
  for start in range(0, len(paths), batch_size):
    chunk = paths[start:start + batch_size]
    if method == 'classify':
      answer = post(url + ':classify', classify_body(chunk, signature_name), timeout)
      rows = answer.get('result', [])
    else:
      answer = post(url + ':predict',
                    predict_body(chunk, serving_input, signature_name), timeout)
      rows = answer.get('predictions', [])
    answers.append(answer)
    if raw:
      out.write(json.dumps(answer) + '\n')
      continue
    for path, row in zip(chunk, rows):
      if method == 'classify':
        label, score = max(row, key=lambda pair: pair[1])
        out.write('%s\t%s\t%.4f\n' % (path, label, score))
      else:
        out.write(_line(path, row) + '\n')
  return answers
