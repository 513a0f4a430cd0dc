"""Every module the pipeline uses imports, and the TF 2.15 traps stay fixed.

  .venv/bin/python -m pytest -q tests/test_imports.py
"""

import importlib
import pkgutil
import subprocess
import sys

import pytest

from conftest import REPO
import estimator_pipeline  # noqa: F401
import tensorflow as tf

THIRD_PARTY = [
    # The pinned third-party set, tf-models-official's parts included: a broken
    # tensorflow-metadata/protobuf pair shows up here first.
    'tensorflow', 'tensorflow_estimator', 'tf_slim', 'tf_slim.nets', 'tf_slim.learning',
    'tf_slim.data.tfexample_decoder', 'official.modeling.optimization',
    'official.modeling.optimization.lr_schedule',
    'official.modeling.optimization.optimizer_factory',
    'official.modeling.optimization.configs.optimization_config',
    'official.vision.ops.preprocess_ops', 'official.vision.ops.augment', 'absl.app',
    'absl.flags', 'absl.logging', 'numpy', 'PIL.Image', 'sklearn.datasets',
    'tensorboard', 'tensorboard_plugin_profile.profile_plugin_loader',
    'tensorboard.backend.event_processing.event_accumulator',
    'tensorflow_serving.apis.prediction_service_pb2_grpc',
    'tensorflow_serving.apis.prediction_log_pb2', 'pysam', 'pyBigWig', 'google_crc32c',
    'zlib_ng.zlib_ng',
]
# The project's packages: every module in them is imported, found by walking the tree.
PACKAGES = ('estimator_pipeline', 'export', 'flags', 'bench')
# Programs whose flags clash with another program's when both are imported into one
# process (each runs alone); they are imported in a process of their own.
ALONE = ('estimator_pipeline.demo_seq',)


def project_modules():
  found = []
  for package in PACKAGES:
    module = importlib.import_module(package)
    found.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + '.'):
      if not info.name.endswith('__main__'):
        found.append(info.name)
  return found


def test_the_walk_finds_every_layer():
  found = set(project_modules())
  for layer in ('core', 'config', 'records', 'data', 'models', 'serving', 'train'):
    assert any(m.startswith('estimator_pipeline.%s.' % layer) for m in found), layer
  assert 'estimator_pipeline.train.tasks.image' in found
  assert 'export.predict' in found and 'flags.records' in found


@pytest.mark.parametrize('name', THIRD_PARTY)
def test_third_party_module_imports(name):
  importlib.import_module(name)


@pytest.mark.parametrize('name', [m for m in project_modules() if m not in ALONE])
def test_project_module_imports(name):
  importlib.import_module(name)


@pytest.mark.parametrize('name', ALONE)
def test_program_imports_alone(name):
  result = subprocess.run([sys.executable, '-c', 'import %s' % name],
                          capture_output=True, text=True, cwd=REPO)
  assert result.returncode == 0, result.stderr[-2000:]


def test_pinned_versions():
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  assert tf.__version__ == '2.15.1'
  for package, version in (('tensorflow-estimator', '2.15.0'), ('tf-slim', '1.1.0'),
                           ('tf-models-official', '2.15.0')):
    assert metadata.version(package) == version, package
  assert hasattr(tf, 'estimator') and hasattr(tf.estimator, 'train_and_evaluate')


def test_compat_alias_is_registered():
  from estimator_pipeline.core import compat  # pylint: disable=g-import-not-at-top
  compat.check()


def test_batch_normalized_slim_net_builds_in_training_mode():
  # The trap: without compat, slim.batch_norm raises
  # "No module named 'tf_keras.legacy_tf_layers'".
  import tf_slim as slim  # pylint: disable=g-import-not-at-top
  from tf_slim.nets import resnet_v1  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [2, 32, 32, 3])
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
      logits, _ = resnet_v1.resnet_v1_50(images, num_classes=4, is_training=True)
    assert logits.shape.as_list() == [2, 1, 1, 4]
    update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    assert len(update_ops) == 2 * 53  # moving mean and variance of 53 batch norms


def test_tf_slim_loads_without_scikit_learn_until_used():
  """compat.py defers tf_slim's scikit-learn import; using it still works."""
  code = (
      'import sys, estimator_pipeline, tf_slim\n'
      'assert "tf_slim" in sys.modules\n'
      'assert "sklearn" not in sys.modules, "sklearn imported at start-up"\n'
      'from tf_slim.losses import metric_learning\n'
      'assert metric_learning.HAS_SKLEARN\n'
      'assert metric_learning.metrics.adjusted_rand_score([0, 1], [1, 0]) == 1.0\n'
      'import sklearn.metrics\n'
      'assert type(sklearn.metrics).__name__ == "module"\n'
      'assert sklearn.metrics.adjusted_rand_score is not None\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr[-2000:]

