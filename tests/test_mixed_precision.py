"""--mixed_precision: float16 computation of float32 variables with Keras' dynamic loss
scale; a short run's losses are float32's; an overflowing step is skipped and lowers
the scale; a resumed run restores it; checkpoints pass both ways between float32 and
mixed runs; exports take and give float32.

  .venv/bin/python -m pytest -q tests/test_mixed_precision.py
"""

import copy
import os

import pytest

from conftest import image_config
from conftest import scalars
from conftest import small_config
from conftest import write_image_data
import seq_helpers
import tensorflow as tf

from estimator_pipeline import train
from estimator_pipeline.config import config
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models import optimization
from estimator_pipeline.models import precision

v1 = tf.compat.v1


def _scale_values(model_dir, step):
  reader = tf.train.load_checkpoint(os.path.join(str(model_dir), 'model.ckpt-%d' % step))
  names = reader.get_variable_to_dtype_map()
  assert all(names[n] in (tf.float32, tf.int64) for n in names), names
  if precision.SCALE_NAME not in names:
    return None
  return (reader.get_tensor(precision.SCALE_NAME),
          reader.get_tensor(precision.GOOD_STEPS_NAME))


def test_an_overflowing_step_is_skipped_and_lowers_the_scale():
  with tf.Graph().as_default():
    step = v1.train.get_or_create_global_step()
    with precision.compute_scope():
      w = v1.get_variable('w', [], initializer=v1.constant_initializer(1.0))
    big = v1.placeholder(tf.float16, [])
    # d(loss * scale)/dw = big * scale in float16: 60000 * 32768 overflows.
    loss = tf.cast(w * big, tf.float32)
    train_op = optimization.build_train_op(
        loss, optimization.TrainOptions(optimizer='sgd', mixed_precision=True), 0.1,
        step, [v for v in v1.global_variables() if v.op.name == 'w'])
    scale, good = [v for v in v1.global_variables()
                   if v.op.name in (precision.SCALE_NAME, precision.GOOD_STEPS_NAME)]
    variable = [v for v in v1.global_variables() if v.op.name == 'w'][0]
    assert variable.dtype.base_dtype == tf.float32 and w.dtype == tf.float16
    with v1.Session() as sess:
      sess.run(v1.global_variables_initializer())
      sess.run(train_op, {big: 60000.0})
      assert sess.run([variable, scale, good, step]) == [1.0, 2.0 ** 14, 0, 1]
      sess.run(train_op, {big: 2.0})  # finite: applied, the scale kept
      w_value, scale_value, good_value = sess.run([variable, scale, good])
      assert w_value == pytest.approx(1.0 - 0.1 * 2.0) and scale_value == 2.0 ** 14
      assert good_value == 1


def _sequence_run(root, model_dir, steps, mixed):
  records = seq_helpers.write_dataset(root / 'data', 'new', n_train=8, n_valid=0)
  # Without dropout: its masks would differ between the two graphs' random seeds.
  tiny = copy.deepcopy(seq_helpers.TINY_PARAMS)
  for block in tiny['model']['trunk']:
    block.pop('dropout', None)
  params = seq_helpers.write_params(root / 'p.json', tiny)
  cfg = small_config(model_dir, os.path.join(records, 'train-*.tfr'),
                     model_name='seqnn', params_file=params, num_steps=steps,
                     save_checkpoints_steps=1, log_every_steps=1, batch_size=4,
                     seed=3, mixed_precision=mixed)
  train.run(cfg)
  return scalars(model_dir)


def test_sequence_losses_match_float32_and_checkpoints_pass_both_ways(tmp_path):
  exact = _sequence_run(tmp_path, tmp_path / 'float32', 2, False)['total_loss']
  mixed_dir = tmp_path / 'mixed'
  mixed = _sequence_run(tmp_path, mixed_dir, 2, True)['total_loss']
  for step in (1, 2):
    # float16 rounding of weights and activations: well under 1e-2 of the loss.
    assert mixed[step] == pytest.approx(exact[step], rel=1e-2)
  assert _scale_values(mixed_dir, 2) == (2.0 ** 15, 2)
  _sequence_run(tmp_path, mixed_dir, 3, True)  # resumed: the scale goes on counting
  assert _scale_values(mixed_dir, 3) == (2.0 ** 15, 3)
  _sequence_run(tmp_path, mixed_dir, 4, False)  # float32 resumes a mixed checkpoint
  assert _scale_values(mixed_dir, 4) is None
  _sequence_run(tmp_path, mixed_dir, 5, True)  # and mixed a float32 one
  assert _scale_values(mixed_dir, 5) == (2.0 ** 15, 1)


def test_images_train_mixed_and_export_float32(tmp_path):
  data = write_image_data(tmp_path / 'data', train=(8, 8), validation=4)
  model_dir = tmp_path / 'run'
  train.run(image_config(data, model_dir, evaluate=False, num_steps=1, batch_size=4,
                         save_checkpoints_steps=1, mixed_precision=True))
  assert _scale_values(model_dir, 1)[1] == 1
  final = os.path.join(str(model_dir), 'export', 'final')
  version = os.path.join(final, sorted(os.listdir(final))[-1])
  with tf.Graph().as_default(), v1.Session() as sess:
    meta = v1.saved_model.loader.load(sess, ['serve'], version)
    signature = meta.signature_def['serving_default']
    dtypes = {t.dtype for t in list(signature.inputs.values()) +
              list(signature.outputs.values())}
    assert tf.float16.as_datatype_enum not in dtypes
    assert not [v for v in v1.global_variables() if v.dtype.base_dtype == tf.float16]
    assert not [v for v in v1.global_variables() if 'loss_scale' in v.op.name]


@pytest.mark.parametrize('flags, words', [
    ({'grad_accum_steps': 2}, '--mixed_precision and --grad_accum_steps=2'),
    ({'steps_per_loop': 4}, '--mixed_precision and --steps_per_loop=4'),
    ({'distribution': 'mirrored'}, '--mixed_precision and --distribution=mirrored'),
])
def test_mixed_precision_refuses_what_it_cannot_combine_with(tmp_path, flags, words):
  cfg = config.Config(model_dir=str(tmp_path / 'run'), train_record_path='x-*',
                      mixed_precision=True, **flags)
  with pytest.raises(UserError, match=words.replace('-', r'\-')):
    cfg.validate()
  assert not os.path.exists(tmp_path / 'run')
