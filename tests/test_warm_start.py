"""Fine-tuning a real slim net: warm start with excluded scopes, and frozen scopes.

A checkpoint of slim's resnet_v1_50 (10 classes, slim's variable names) stands in for a
published one; fine-tuning to 3 classes excludes the logits, restores every other
variable exactly, and keeps block1 (batch-norm statistics included) bit-identical.

  .venv/bin/python -m pytest -q tests/test_warm_start.py
"""

import re

import numpy as np
import pytest

from conftest import image_config
from conftest import write_image_data
import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import resnet_v1

from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.train import plan as plan_lib


@pytest.fixture(scope='module')
def source_checkpoint(tmp_path_factory):
  """A resnet_v1_50 checkpoint with random, non-default values in every variable."""
  path = str(tmp_path_factory.mktemp('published') / 'resnet_v1_50.ckpt')
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
      resnet_v1.resnet_v1_50(images, num_classes=10, is_training=True)
    variables = tf.compat.v1.global_variables()
    rng = np.random.RandomState(0)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      # Moving statistics start at 0/1 in a fresh net; give them values a fresh
      # Estimator would never produce, so "restored" cannot pass by accident.
      for v in variables:
        if 'moving_' in v.op.name:
          v.load(rng.uniform(0.5, 1.5, v.shape.as_list()).astype(np.float32), sess)
      tf.compat.v1.train.Saver(variables).save(sess, path, write_meta_graph=False)
  return path


@pytest.fixture
def small_data(tmp_path):
  return write_image_data(tmp_path / 'data', train=(24,), validation=0,
                          train_formats=('png',))


def _config(data, model_dir, ckpt, **kw):
  return image_config(data, model_dir, evaluate=False, **dict(dict(
      model_name='resnet_v1_50', image_size=32, num_steps=3, batch_size=4,
      save_checkpoints_steps=3, log_every_steps=1, learning_rate=0.01,
      random_flip=True, checkpoint_path=ckpt,
      checkpoint_exclude_scopes='resnet_v1_50/logits',
      scopes_to_freeze='resnet_v1_50/block1'), **kw))


def test_fine_tune_restores_all_but_head_and_keeps_frozen_scope(
    source_checkpoint, small_data, tmp_path, capfd):
  cfg = _config(small_data, tmp_path / 'run', source_checkpoint)
  result = train.run(cfg)
  assert result.global_step == 3
  assert 'Warm-starting' in capfd.readouterr().err
  source = tf.train.load_checkpoint(source_checkpoint)
  source_names = set(source.get_variable_to_shape_map())
  step0 = tf.train.load_checkpoint(str(tmp_path / 'run' / 'model.ckpt-0'))
  final = tf.train.load_checkpoint(str(tmp_path / 'run' / 'model.ckpt-3'))
  model_names = {n for n in final.get_variable_to_shape_map()
                 if n.startswith('resnet_v1_50/') and 'Momentum' not in n}

  restored = model_names - {n for n in model_names if '/logits/' in n}
  assert len(restored) == len(source_names) - 2  # all but logits weights and biases
  for name in sorted(restored):
    np.testing.assert_array_equal(step0.get_tensor(name), source.get_tensor(name),
                                  err_msg=name)
  # The new head has the new class count and was not restored.
  assert final.get_tensor('resnet_v1_50/logits/weights').shape == (1, 1, 2048, 3)

  frozen = [n for n in restored if n.startswith('resnet_v1_50/block1/')]
  assert any('moving_mean' in n for n in frozen) and any('weights' in n for n in frozen)
  for name in frozen:
    np.testing.assert_array_equal(final.get_tensor(name), source.get_tensor(name),
                                  err_msg=name)
  # Outside the frozen scope, training changed the weights and the statistics.
  for name in ('resnet_v1_50/conv1/weights', 'resnet_v1_50/conv1/BatchNorm/moving_mean',
               'resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/weights'):
    assert not np.array_equal(final.get_tensor(name), source.get_tensor(name)), name


def test_head_of_another_shape_names_variable_and_both_shapes(
    source_checkpoint, small_data, tmp_path):
  cfg = _config(small_data, tmp_path / 'run', source_checkpoint,
                checkpoint_exclude_scopes='', scopes_to_freeze='')
  with pytest.raises(UserError) as info:
    plan_lib.preflight(cfg)
  message = str(info.value)
  assert re.search(r'variable resnet_v1_50/logits/\w+ has shape \[(1, 1, 2048, )?3\] '
                   r'in the model but \[(1, 1, 2048, )?10\] in --checkpoint_path=',
                   message), message
  assert not (tmp_path / 'run').exists()


def test_ignore_missing_vars_skips_and_lists(source_checkpoint, small_data, tmp_path):
  cfg = _config(small_data, tmp_path / 'run', source_checkpoint,
                checkpoint_exclude_scopes='', ignore_missing_vars=True)
  plan = plan_lib.preflight(cfg)
  assert set(plan.skipped_vars) == {'resnet_v1_50/logits/weights',
                                    'resnet_v1_50/logits/biases'}
  assert 'resnet_v1_50/conv1/weights' in plan.warm_start_map


def test_checkpoint_directory_is_accepted(source_checkpoint, small_data, tmp_path):
  import os  # pylint: disable=g-import-not-at-top
  cfg = _config(small_data, tmp_path / 'run', os.path.dirname(source_checkpoint))
  plan = plan_lib.preflight(cfg)
  assert plan.warm_start_checkpoint == source_checkpoint
