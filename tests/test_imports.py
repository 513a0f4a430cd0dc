"""Every module the pipeline uses imports, and the TF 2.15 traps stay fixed.

  .venv/bin/python -m pytest -q tests/test_imports.py
"""

import importlib

import pytest

import estimator_pipeline  # noqa: F401
import tensorflow as tf

MODULES = [
    # The pinned third-party set, tf-models-official's parts included: a broken
    # tensorflow-metadata/protobuf pair shows up here first.
    'tensorflow', 'tensorflow_estimator', 'tf_slim', 'tf_slim.nets', 'tf_slim.learning',
    'tf_slim.data.tfexample_decoder', 'official.modeling.optimization',
    'official.modeling.optimization.lr_schedule', 'official.vision.ops.preprocess_ops',
    'official.vision.ops.augment', 'absl.app', 'absl.flags', 'absl.logging', 'numpy',
    'PIL.Image', 'sklearn.datasets', 'tqdm', 'tensorboard',
    'tensorboard_plugin_profile.profile_plugin_loader',
    'tensorboard.backend.event_processing.event_accumulator',
    'tensorflow_serving.apis.prediction_service_pb2_grpc',
    'tensorflow_serving.apis.prediction_log_pb2',
    # The project's own modules.
    'estimator_pipeline.compat', 'estimator_pipeline.config',
    'estimator_pipeline.console', 'estimator_pipeline.decoders',
    'estimator_pipeline.errors', 'estimator_pipeline.hooks',
    'estimator_pipeline.input_fn', 'estimator_pipeline.model',
    'estimator_pipeline.model_fn', 'estimator_pipeline.models',
    'estimator_pipeline.monitoring', 'estimator_pipeline.summaries',
    'estimator_pipeline.models.slim_classifier', 'estimator_pipeline.optimization',
    'estimator_pipeline.preprocessing', 'estimator_pipeline.records',
    'estimator_pipeline.records.images', 'estimator_pipeline.train_lib',
    'export', 'export.exporters', 'export.serving', 'export.predict', 'flags',
    'export.outputs', 'export.warmup', 'export.export_lib', 'export.client',
    'flags.common', 'flags.data', 'flags.export', 'flags.model', 'flags.records',
    'flags.run', 'flags.training', 'flags.performance', 'estimator_pipeline.loops',
    'flags.run', 'flags.training',
    # Training controls.
    'official.modeling.optimization.optimizer_factory',
    'official.modeling.optimization.configs.optimization_config',
    'estimator_pipeline.training_controls', 'estimator_pipeline.early_stopping',
    'estimator_pipeline.reproducibility',
]


@pytest.mark.parametrize('name', MODULES)
def test_module_imports(name):
  importlib.import_module(name)


def test_pinned_versions():
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  assert tf.__version__ == '2.15.1'
  for package, version in (('tensorflow-estimator', '2.15.0'), ('tf-slim', '1.1.0'),
                           ('tf-models-official', '2.15.0')):
    assert metadata.version(package) == version, package
  assert hasattr(tf, 'estimator') and hasattr(tf.estimator, 'train_and_evaluate')


def test_compat_alias_is_registered():
  from estimator_pipeline import compat  # pylint: disable=g-import-not-at-top
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
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
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

