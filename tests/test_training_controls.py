"""Training controls end to end: early stopping, best checkpoint, moving averages in
evaluation and export, resume with schedules, reproducibility, flags.txt and --flagfile,
and one line with exit 2 for each bad training flag.

  .venv/bin/python -m pytest -q tests/test_training_controls.py
"""

import glob
import json
import os

import numpy as np
import pytest

from conftest import run_cli
from conftest import image_config
from conftest import scalars
from conftest import write_image_data
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.train import early_stopping
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline import models
from estimator_pipeline.models import optimization
from estimator_pipeline.config import controls as training_controls
from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.train.tasks import image as image_task
from estimator_pipeline.train import estimator as estimator_lib


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return write_image_data(tmp_path_factory.mktemp('controls_data'), train=(24,),
                          validation=9, seed=1, validation_seed=2,
                          train_formats=('png',))


def _config(data, model_dir, **kw):
  return image_config(data, model_dir, **dict(
      dict(num_steps=6, batch_size=8, save_checkpoints_steps=3, log_every_steps=1,
           shuffle_buffer_size=32), **kw))


def _scalars(event_dir, tag):
  """{step: value} of one scalar tag over every event file in event_dir."""
  return scalars(event_dir).get(tag, {})


# Early stopping and the best checkpoint.

def test_early_stopping_counts_evaluations_and_keeps_the_best(data, tmp_path, capfd):
  # learning_rate=0: the evaluation loss never improves after the first evaluation.
  cfg = _config(data, tmp_path / 'run', learning_rate=0.0, num_steps=60,
                keep_checkpoint_max=1, early_stopping_patience=2)
  result = train.run(cfg)
  err = capfd.readouterr().err
  # Evaluations at 3, 6, 9: two without improvement after the best (3). A step count
  # of patience (stop_if_no_decrease_hook) would have stopped at 5.
  assert result.global_step == 9
  assert 'Early stopping at step 9: loss has not improved' in err
  assert '--early_stopping_patience=2' in err
  assert result.stopped_early
  best = os.path.join(cfg.model_dir, 'best')
  assert tf.train.latest_checkpoint(best).endswith('model.ckpt-3')
  # keep_checkpoint_max=1 pruned it from model_dir; best/ keeps it.
  assert not glob.glob(os.path.join(cfg.model_dir, 'model.ckpt-3.*'))
  state = json.load(open(os.path.join(best, 'best.json')))
  assert state['step'] == 3 and state['stopped_at_step'] == 9
  assert state['evaluations_since_best'] == 2
  # The final export exists although --num_steps was not reached.
  assert result.exports['final'] and result.exports['best']
  assert sorted(_scalars(os.path.join(cfg.model_dir, 'eval'), 'loss')) == [3, 6, 9]

  # Re-running the same command: one line, nothing trained or written, success.
  again = train.run(cfg)
  assert again.finished and 'stopped early at step 9' in again.finished
  assert 'Raise --early_stopping_patience' in capfd.readouterr().err
  assert tf.train.latest_checkpoint(cfg.model_dir).endswith('model.ckpt-9')

  # Raising the patience continues from step 9, counting the two evaluations since 3.
  more = train.run(cfg.replace(early_stopping_patience=3))
  assert more.global_step == 12 and more.stopped_early
  assert tf.train.latest_checkpoint(best).endswith('model.ckpt-3')


def test_best_checkpoint_follows_a_higher_is_better_metric(tmp_path):
  keeper = early_stopping.BestCheckpointKeeper(str(tmp_path), 'accuracy', 'auto', 3)
  assert keeper.direction == 'max'
  ckpt = _tiny_checkpoint(tmp_path / 'ckpts')
  for step, accuracy in ((1, 0.5), (2, 0.7), (3, 0.6), (4, 0.7)):
    keeper.observe(step, {'accuracy': accuracy, 'loss': 1.0}, ckpt(step))
    assert not keeper.should_stop
  keeper.observe(5, {'accuracy': 0.69, 'loss': 1.0}, ckpt(5))
  assert keeper.should_stop and 'higher is better' in keeper.stop_reason
  assert tf.train.latest_checkpoint(str(tmp_path / 'best')).endswith('ckpt-2')
  assert len(glob.glob(str(tmp_path / 'best' / '*.index'))) == 1


def _tiny_checkpoint(directory):
  directory.mkdir()

  def write(step):
    with tf.Graph().as_default():
      v = tf.compat.v1.get_variable('v', initializer=float(step))
      saver = tf.compat.v1.train.Saver([v])
      with tf.compat.v1.Session() as sess:
        sess.run(v.initializer)
        return saver.save(sess, str(directory / 'ckpt'), global_step=step)
  return write


@pytest.mark.parametrize('metric, mode, expected', [
    ('loss', 'auto', 'min'), ('classification_loss', 'auto', 'min'),
    ('accuracy', 'auto', 'max'), ('mean_per_class_accuracy', 'auto', 'max'),
    ('top_5_accuracy', 'auto', 'max'), ('pearson_r', 'max', 'max'),
    ('accuracy', 'min', 'min')])
def test_metric_direction(metric, mode, expected):
  assert training_controls.metric_direction(metric, mode) == expected


def test_unknown_metric_direction_and_name_are_refused(data, tmp_path):
  with pytest.raises(UserError, match='--early_stopping_mode=min or max'):
    training_controls.metric_direction('gizmo', 'auto')
  cfg = _config(data, tmp_path / 'run', early_stopping_metric='acuracy',
                early_stopping_mode='max')
  with pytest.raises(UserError, match='--early_stopping_metric=acuracy is not an '
                     'evaluation metric.*accuracy'):
    plan_lib.preflight(cfg)
  assert not os.path.exists(cfg.model_dir)


# Moving averages in evaluation and export.

def _evaluate_without_averages(cfg, checkpoint, model_dir):
  fn = model_fn_lib.make_model_fn(models.get('cifarnet'), num_classes=3,
                                  model_params={'image_size': 32})
  plan = plan_lib.preflight(cfg.replace(model_dir=str(model_dir)))
  _, eval_input = plan.task.input_fns(plan)
  estimator = tf.estimator.Estimator(fn, model_dir=str(model_dir))
  return estimator.evaluate(eval_input, checkpoint_path=checkpoint)['loss']


def test_evaluation_and_export_use_the_moving_averages(data, tmp_path):
  cfg = _config(data, tmp_path / 'run', moving_average_decay=0.9, learning_rate=0.05,
                save_checkpoints_steps=6)
  result = train.run(cfg)
  reported = _scalars(os.path.join(cfg.model_dir, 'eval'), 'loss')[6]
  raw = tf.train.latest_checkpoint(cfg.model_dir)
  reader = tf.train.load_checkpoint(raw)
  names = reader.get_variable_to_shape_map()
  shadows = sorted(n for n in names if n.endswith('/ExponentialMovingAverage'))
  assert 'CifarNet/logits/weights/ExponentialMovingAverage' in shadows

  # The same checkpoint with the averages written over the weights, evaluated by a
  # model_fn that knows nothing of averages, must give the reported loss.
  averaged_dir = tmp_path / 'averaged'
  averaged_dir.mkdir()
  with tf.Graph().as_default():
    variables = []
    for name in sorted(names):
      source = name + '/ExponentialMovingAverage'
      if name.endswith('/ExponentialMovingAverage'):
        continue
      value = reader.get_tensor(source if source in names else name)
      variables.append(tf.compat.v1.Variable(value, name=name))
    saver = tf.compat.v1.train.Saver(variables)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      averaged = saver.save(sess, str(averaged_dir / 'model.ckpt'), global_step=6)
  with_averages = _evaluate_without_averages(cfg, averaged, tmp_path / 'eval_avg')
  without = _evaluate_without_averages(cfg, raw, tmp_path / 'eval_raw')
  np.testing.assert_allclose(reported, with_averages, rtol=1e-5)
  assert abs(reported - without) > 1e-4, (reported, without)

  # The best checkpoint (of the only evaluation) is kept in best/, averages included.
  assert tf.train.latest_checkpoint(os.path.join(cfg.model_dir, 'best')).endswith(
      'model.ckpt-6')

  # The SavedModel restores the averages too (its saver maps them onto the weights).
  exported = tf.train.load_checkpoint(
      os.path.join(result.exports['final'], 'variables', 'variables'))
  np.testing.assert_array_equal(
      exported.get_tensor('CifarNet/logits/weights/ExponentialMovingAverage'),
      reader.get_tensor('CifarNet/logits/weights/ExponentialMovingAverage'))


# Resume: step and schedule continue, nothing is warm-started again.

def test_resume_continues_step_and_schedule_without_warm_start(data, tmp_path, capfd):
  cfg = _config(data, tmp_path / 'run', eval_record_path='', num_steps=3,
                lr_schedule='piecewise', lr_boundaries='4', lr_values='0.05,0.01',
                grad_accum_steps=2, clip_gradient_norm=5.0)
  first = train.run(cfg)
  assert first.global_step == 3
  more = cfg.replace(num_steps=6, checkpoint_path=tf.train.latest_checkpoint(
      cfg.model_dir))
  plan = plan_lib.preflight(more)
  assert plan.latest_checkpoint and plan.warm_start_checkpoint is None
  second = train.run(more)
  assert second.global_step == 6
  assert '--checkpoint_path is not applied' in capfd.readouterr().err
  # The Estimator tags a step's summaries with the step it reached: the update from
  # step 4 to 5, past the boundary at 4, is the first at 0.01, in the resumed run.
  lr = _scalars(cfg.model_dir, 'learning_rate')
  assert {s: round(v, 6) for s, v in lr.items()} == {
      0: 0.05, 1: 0.05, 2: 0.05, 3: 0.05, 4: 0.05, 5: 0.01, 6: 0.01}, lr
  assert set(_scalars(cfg.model_dir, 'gradient_norm')) >= {0, 5}


def test_resume_with_another_optimizer_or_new_averages_is_refused(data, tmp_path):
  cfg = _config(data, tmp_path / 'run', eval_record_path='', num_steps=1)
  train.run(cfg)
  before = open(os.path.join(cfg.model_dir, 'config.json')).read()
  with pytest.raises(UserError, match='trained with --optimizer=momentum'):
    train.run(cfg.replace(num_steps=3, optimizer='adam'))
  with pytest.raises(UserError, match='without --moving_average_decay'):
    train.run(cfg.replace(num_steps=3, moving_average_decay=0.99))
  assert open(os.path.join(cfg.model_dir, 'config.json')).read() == before


# Weight decay, AdamW and label smoothing.

def _image_model_params(cfg):
  return image_task.model_params(cfg, 32, image_task.ImageData())


def test_adamw_replaces_the_l2_term_by_decoupled_decay():
  cfg = config.Config(model_dir='m', train_record_path='t', optimizer='adamw')
  assert _image_model_params(cfg)['weight_decay'] == 0.0
  assert optimization.TrainOptions.from_config(cfg).decoupled_weight_decay == 0.01
  cfg = cfg.replace(weight_decay=0.05)
  assert optimization.TrainOptions.from_config(cfg).decoupled_weight_decay == 0.05
  momentum = cfg.replace(optimizer='momentum')
  assert _image_model_params(momentum)['weight_decay'] == 0.05
  assert optimization.TrainOptions.from_config(momentum).decoupled_weight_decay == 0


def _cifarnet_losses(**params):
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(1)
    model = models.get('cifarnet').build(is_training=False, num_classes=3,
                                         image_size=32, **params)
    images = tf.random.uniform([4, 32, 32, 3], 0, 255, seed=2)
    prediction = model.predict(model.preprocess({'image': images}))
    losses = model.loss(prediction, tf.constant([0, 1, 2, 0], tf.int64))
    reg = tf.compat.v1.losses.get_regularization_loss()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      logits, loss, reg = sess.run([prediction['logits'], losses['loss'], reg])
  return logits, loss, reg


def test_label_smoothing_and_weight_decay_change_the_loss_as_defined():
  logits, plain, _ = _cifarnet_losses()
  _, smoothed, _ = _cifarnet_losses(label_smoothing=0.3)
  onehot = np.eye(3)[[0, 1, 2, 0]]
  log_p = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
  for smoothing, got in ((0.0, plain), (0.3, smoothed)):
    targets = onehot * (1 - smoothing) + smoothing / 3
    np.testing.assert_allclose(got, np.mean(-np.sum(targets * log_p, axis=1)),
                               rtol=1e-5)
  _, _, reg_default = _cifarnet_losses()
  _, _, reg_double = _cifarnet_losses(weight_decay=0.008)
  _, _, reg_none = _cifarnet_losses(weight_decay=0.0)
  assert reg_none == 0 and reg_default > 0
  np.testing.assert_allclose(reg_double, 2 * reg_default, rtol=1e-5)


# Reproducibility, flags.txt and --flagfile (through train.py).

def _train_cli(data, model_dir, *extra):
  return run_cli(['train.py', '--model_dir=%s' % model_dir,
                  '--train_record_path=%s' % (data / 'train-*.tfrecord'),
                  '--model_name=cifarnet', '--num_steps=5', '--batch_size=8',
                  '--log_every_steps=1', '--save_checkpoints_steps=5',
                  '--learning_rate=0.05'] + list(extra))


def test_deterministic_runs_repeat_losses_and_flagfile_repeats_the_run(data, tmp_path):
  # --random_seed is the old name of --seed and still works.
  first = _train_cli(data, tmp_path / 'a', '--random_seed=5', '--deterministic')
  assert first.returncode == 0, first.stderr[-3000:]
  flagfile = tmp_path / 'a' / 'flags.txt'
  lines = flagfile.read_text().splitlines()
  assert '--seed=5' in lines and '--deterministic=true' in lines
  assert '--model_name=cifarnet' in lines and '--num_steps=5' in lines
  again = run_cli(['train.py', '--flagfile=%s' % flagfile,
                   '--model_dir=%s' % (tmp_path / 'b')])
  assert again.returncode == 0, again.stderr[-3000:]
  other_seed = run_cli(['train.py', '--flagfile=%s' % flagfile, '--seed=6',
                        '--model_dir=%s' % (tmp_path / 'c')])
  assert other_seed.returncode == 0, other_seed.stderr[-3000:]

  config_a = json.load(open(tmp_path / 'a' / 'config.json'))
  config_b = json.load(open(tmp_path / 'b' / 'config.json'))
  assert config_a.pop('model_dir') != config_b.pop('model_dir')
  assert config_a == config_b

  losses = [_scalars(str(tmp_path / d), 'loss') for d in 'abc']
  assert sorted(losses[0]) == [1, 2, 3, 4, 5]
  assert losses[0] == losses[1]  # Identical, step for step.
  assert losses[0] != losses[2]  # The seed matters.


# Every training flag is checked before anything is built or written.

BAD_FLAGS = [
    ({'num_steps': -5}, '--num_steps=-5'),
    ({'warmup_steps': -1}, '--warmup_steps=-1'),
    ({'warmup_steps': 6}, '--warmup_steps=6 is not shorter than training'),
    ({'optimizer': 'adagrad'}, '--optimizer=adagrad is not known'),
    ({'lr_schedule': 'linear'}, '--lr_schedule=linear is not known'),
    ({'lr_schedule': 'piecewise'}, '--lr_schedule=piecewise needs --lr_boundaries'),
    ({'lr_schedule': 'piecewise', 'lr_boundaries': '5,3'}, '--lr_boundaries=5,3'),
    ({'lr_schedule': 'piecewise', 'lr_boundaries': '3', 'lr_values': '1'},
     '--lr_values has 1 values'),
    ({'lr_schedule': 'piecewise', 'lr_boundaries': '3,x'}, "--lr_boundaries=3,x: 'x'"),
    ({'lr_boundaries': '3'}, '--lr_boundaries is set but --lr_schedule=exponential'),
    ({'lr_schedule': 'cosine', 'end_learning_rate': 1.0}, '--end_learning_rate=1.0'),
    ({'grad_accum_steps': 0}, '--grad_accum_steps=0'),
    ({'clip_gradient_norm': -1.0}, '--clip_gradient_norm=-1.0'),
    ({'moving_average_decay': 1.0}, '--moving_average_decay=1.0'),
    ({'adam_beta1': 1.0}, '--adam_beta1=1.0'),
    ({'adam_epsilon': 0.0}, '--adam_epsilon=0.0'),
    ({'label_smoothing': 1.0}, '--label_smoothing=1.0'),
    ({'save_checkpoints_secs': 60}, '--save_checkpoints_steps=3 and '
     '--save_checkpoints_secs=60 are both set'),
    ({'eval_every_steps': 4}, '--eval_every_steps=4 and --save_checkpoints_steps=3'),
    ({'eval_every_steps': 3, 'eval_record_path': ''},
     '--eval_every_steps=3 needs --eval_record_path'),
    ({'eval_every_steps': 3, 'save_checkpoints_steps': 0, 'save_checkpoints_secs': 60},
     '--save_checkpoints_secs=60 saves by time'),
    ({'lr_schedule': 'piecewise', 'lr_boundaries': '3', 'lr_values': '0.1,-1'},
     '--lr_values=0.1,-1 must not be negative'),
    ({'save_checkpoints_secs': -1, 'save_checkpoints_steps': 0},
     '--save_checkpoints_secs=-1'),
    ({'throttle_secs': -1}, '--throttle_secs=-1'),
    ({'early_stopping_patience': 3, 'eval_record_path': ''},
     '--early_stopping_patience=3 needs --eval_record_path'),
    ({'early_stopping_patience': -1}, '--early_stopping_patience=-1'),
    ({'early_stopping_mode': 'up'}, '--early_stopping_mode=up is not known'),
    ({'early_stopping_metric': 'gizmo'}, 'cannot tell whether a larger gizmo'),
    ({'keep_checkpoint_every_n_hours': 0.0}, '--keep_checkpoint_every_n_hours=0.0'),
]


@pytest.mark.parametrize('changes, expected', BAD_FLAGS,
                         ids=['-'.join(sorted(c[0])) + str(i)
                              for i, c in enumerate(BAD_FLAGS)])
def test_bad_training_flag_is_refused_before_anything_is_built(data, tmp_path, changes,
                                                               expected):
  cfg = _config(data, tmp_path / 'run', **changes)
  with pytest.raises(UserError) as caught:
    cfg.validate()
  assert expected in str(caught.value), str(caught.value)
  assert '\n' not in str(caught.value)
  assert not os.path.exists(cfg.model_dir)


@pytest.mark.parametrize('args, expected', [
    (['--lr_schedule=linear'], '--lr_schedule'),
    (['--warmup_steps=9'], '--warmup_steps=9 is not shorter than training'),
])
def test_bad_training_flag_on_the_command_line_is_one_line_and_exit_2(data, tmp_path,
                                                                      args, expected):
  proc = _train_cli(data, tmp_path / 'run', *args)
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and expected in errors[0], proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr
  assert not os.path.exists(tmp_path / 'run')


def test_checkpoint_policy_reaches_the_estimator(data, tmp_path):
  cfg = _config(data, tmp_path / 'run', save_checkpoints_steps=0,
                save_checkpoints_secs=30, keep_checkpoint_max=2,
                keep_checkpoint_every_n_hours=0.5, seed=11, deterministic=True)
  run_config = estimator_lib.build_estimator(plan_lib.preflight(cfg)).config
  assert run_config.save_checkpoints_secs == 30
  assert run_config.save_checkpoints_steps is None
  assert run_config.keep_checkpoint_max == 2
  assert run_config.keep_checkpoint_every_n_hours == 0.5
  assert run_config.tf_random_seed == 11
  # Evaluation follows the checkpoints: every --eval_every_steps, else ten a run.
  assert _config(data, 'x', save_checkpoints_steps=0, eval_every_steps=7,
                 num_steps=100).effective_save_checkpoints_steps == 7
  assert _config(data, 'x', save_checkpoints_steps=0,
                 num_steps=100).effective_save_checkpoints_steps == 10
