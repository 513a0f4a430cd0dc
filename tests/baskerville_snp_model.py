"""The small stranded baskerville model of the variant-scoring reference, rebuilt.

The reference's model.h5 (written by baskerville's SeqNN.save) holds seeded random
weights: every array, in the model's order, drawn from numpy.random.RandomState(3301)
with the distribution model_weights.tsv names. Rather than ship its 580 KB, the tests
draw the same arrays again and write them into a Keras .h5 of the reference's own
layout (model_skeleton.json.gz: its attributes and weight names). The predictions
the tests compare (model_pred.npy, and every score) show the weights are the same.

  python -c "
  import tests.baskerville_snp_model as m; print(m.write_model('/tmp/model.h5'))"
"""

import gzip
import json
import os
import re

import h5py
import numpy as np

DATA = os.path.join(os.path.dirname(__file__), 'data', 'baskerville_snp')
PARAMS = os.path.join(DATA, 'model_params.json')
TARGETS = os.path.join(DATA, 'targets.txt')
SEED = 3301
_DISTRIBUTION = re.compile(r'([NU])\(([^,]+),(.+)\)$')


def _value(text):
  """'1/sqrt(28)' or '0.1' -> a float."""
  match = re.match(r'1/sqrt\((\d+)\)$', text)
  return 1 / np.sqrt(float(match.group(1))) if match else float(text)


def weights():
  """{weight name: float32 array}, drawn as the reference drew them."""
  state = np.random.RandomState(SEED)
  drawn = {}
  with open(os.path.join(DATA, 'model_weights.tsv')) as f:
    next(f)
    for line in f:
      name, shape, distribution = line.rstrip('\n').split('\t')
      shape = tuple(int(n) for n in shape.split('x'))
      kind, a, b = _DISTRIBUTION.match(distribution).groups()
      draw = state.uniform if kind == 'U' else state.normal
      drawn[name] = draw(_value(a), _value(b), shape).astype(np.float32)
  return drawn


def write_model(path):
  """Writes the reference model's .h5 to path; returns path."""
  with gzip.open(os.path.join(DATA, 'model_skeleton.json.gz'), 'rt') as f:
    skeleton = json.load(f)
  drawn = weights()
  with h5py.File(path, 'w') as h5:
    _attrs(h5, skeleton['root'])
    group = h5.create_group('model_weights')
    _attrs(group, skeleton['model_weights'])
    for layer, attrs in skeleton['layers'].items():
      sub = group.create_group(layer)
      _attrs(sub, attrs)
      for name in attrs.get('weight_names', []):
        # 'conv1d/kernel:0' lives at model_weights/<layer>/conv1d/kernel:0.
        sub.create_dataset(name, data=drawn[name])
  return path


def _attrs(obj, attrs):
  for key, value in attrs.items():
    if isinstance(value, list):
      value = np.array(value, dtype=h5py.string_dtype())
    obj.attrs[key] = value


def model_input():
  """The reference's fixed one-hot input, float32 [2, 4096, 4] (N = all zero)."""
  codes = np.load(os.path.join(DATA, 'model_input_codes.npy'))
  return np.eye(5, 4, dtype=np.float32)[codes]
