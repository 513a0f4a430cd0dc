"""What the baskerville reference tests share: the data, the model, the tolerance.

The data and its tolerance are described in tests/data/baskerville_snp/README.md.
"""

import atexit
import json
import os
import shutil
import tempfile

import numpy as np
import pytest

import baskerville_snp_model
from conftest import REPO
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import variant_scores

DATA = os.path.join(REPO, 'tests', 'data', 'baskerville_snp')
PARAMS = os.path.join(DATA, 'model_params.json')
# The reference's model.h5, drawn again from its seed, once per test process.
_MODEL_DIR = tempfile.mkdtemp(prefix='baskerville-model-')
atexit.register(shutil.rmtree, _MODEL_DIR, True)
H5 = baskerville_snp_model.write_model(os.path.join(_MODEL_DIR, 'model.h5'))
SHIFTS = (1, 0, -1)
ALL_SNP = ('logSUM', 'SUM', 'logSED', 'sqrtSUM', 'SAX', 'D1', 'logD1', 'sqrtD1', 'D2',
           'logD2', 'sqrtD2', 'logJS')
SUMS = ('SUM', 'logSUM', 'sqrtSUM', 'D1', 'logD1', 'sqrtD1')


# Module fixtures the variant tests import: the model, the genome, the reference.
@pytest.fixture(scope='module')
def model():
  return load_model()


@pytest.fixture(scope='module')
def genome(tmp_path_factory):
  return copy_genome(str(tmp_path_factory.mktemp('genome')))


@pytest.fixture(scope='module')
def ref():
  return Reference()


def data(name):
  return os.path.join(DATA, name)


def load_model(batch_size=8):
  return model_source.load(params_file=PARAMS, checkpoint=H5, batch_size=batch_size)


def copy_genome(folder):
  """The genome in a writable folder (pysam may write its index)."""
  for name in ('genome.fa', 'genome.fa.fai'):
    shutil.copy(data(name), os.path.join(folder, name))
  return os.path.join(folder, 'genome.fa')


def scorer(model, targets='targets.txt', shifts=SHIFTS, **kwargs):
  return variant_scores.Scorer(model, data(targets) if targets else '', True, shifts,
                               params_file=PARAMS, **kwargs)


class Reference:
  """reference.npz: run|dataset arrays and every run's layout."""

  def __init__(self):
    with np.load(data('reference.npz')) as f:
      self.arrays = {k: f[k] for k in f.files}
    self.layout = json.loads(str(self.arrays.pop('layout')))

  def __call__(self, run, name):
    return self.arrays['%s|%s' % (run, name)]


def ulp(values):
  return np.spacing(np.abs(values).astype(np.float16)).astype(np.float64)


def within(mine, ref, stat):
  """(fraction equal, max ulps, max abs diff, all within the tolerance)."""
  a, b = np.asarray(mine, np.float64), np.asarray(ref, np.float64)
  diff = np.abs(a - b)
  bound = 2 * ulp(b) + (5e-4 if stat in SUMS else 1e-4)
  return ((a == b).mean(), (diff / ulp(b)).max(initial=0), diff.max(initial=0),
          bool((diff <= bound).all()))


def assert_within(mine, ref, stat, where=''):
  equal, ulps, biggest, ok = within(mine, ref, stat)
  assert ok, '%s %s: %.3f equal, max %.0f ulps, max |diff| %.3g' % (
      where, stat, equal, ulps, biggest)


def h5_layout(h5):
  """Sorted [name, dtype, shape] of every dataset of an open h5py.File."""
  found = []

  def visit(name, obj):
    if hasattr(obj, 'dtype'):
      found.append([name, obj.dtype.str, list(obj.shape)])

  h5.visititems(visit)
  return sorted(found)
