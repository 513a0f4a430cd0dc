"""--steps_per_loop (several training steps per session call) and the thread flags.

  .venv/bin/python -m pytest -q tests/test_loops.py

A run with N steps per loop must end at the same global step, checkpoint and evaluate
at the same steps, write the same training summaries and variables, and reach a
comparable loss as the same run with one step per call.
"""

import glob
import os

import pytest
import tensorflow as tf

from conftest import image_config
from conftest import run_cli
from conftest import scalars
from estimator_pipeline import config
from estimator_pipeline.data import input_fn as input_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.core import files
from estimator_pipeline.data import image_parse
from estimator_pipeline.data import speed


def _config(data, model_dir, **kw):
  return image_config(data, model_dir, **dict(
      dict(num_steps=22, save_checkpoints_steps=8, log_every_steps=5, seed=3), **kw))


def _checkpoint_steps(model_dir):
  return sorted(int(p.split('-')[-1].split('.')[0])
                for p in glob.glob(os.path.join(model_dir, 'model.ckpt-*.index')))


def test_steps_per_loop_matches_one_step_per_call(image_data, tmp_path, capsys):
  one = train.run(_config(image_data, tmp_path / 'one'))
  capsys.readouterr()
  looped = train.run(_config(image_data, tmp_path / 'looped', steps_per_loop=5,
                                 inter_op_threads=2, intra_op_threads=1,
                                 data_threads=2))
  console = capsys.readouterr().err

  # Same end, and loops stop at every checkpoint step: 22 = 5+3 | 5+3 | 5+1.
  assert one.global_step == looped.global_step == 22
  assert _checkpoint_steps(one.model_dir) == _checkpoint_steps(looped.model_dir) == [
      0, 8, 16, 22]
  eval_one = scalars(os.path.join(one.model_dir, 'eval'))
  eval_looped = scalars(os.path.join(looped.model_dir, 'eval'))
  assert sorted(eval_one['loss']) == sorted(eval_looped['loss']) == [8, 16, 22]
  # Comparable learning: both reach a loss well below chance (ln 3 = 1.1) + the
  # regularization, and within a margin of each other.
  final_one = one.eval_metrics['classification_loss']
  final_looped = looped.eval_metrics['classification_loss']
  assert final_looped < 0.7 and final_one < 0.7, (final_one, final_looped)
  assert abs(final_looped - final_one) < 0.35, (final_one, final_looped)

  # Training summaries keep their tags, come from real steps, and carry real values.
  train_looped = scalars(looped.model_dir)
  for tag in ('loss', 'total_loss', 'classification_loss', 'regularization_loss',
              'learning_rate', 'accuracy', 'global_step/sec'):
    assert tag in train_looped, (tag, sorted(train_looped))
  assert not [t for t in train_looped if 'train_loop' in t or 'while' in t]
  steps = sorted(train_looped['total_loss'])
  assert len(steps) >= 2 and all(0 < s <= 22 for s in steps)
  # The learning rate logged at a step is the schedule's value at that step's start.
  lr = train_looped['learning_rate']
  for step, value in lr.items():
    assert value <= 0.02 + 1e-9
  assert min(lr.values()) < 0.02
  # The console line reports real steps, ending at 22.
  lines = [l for l in console.splitlines() if l.startswith('step ')]
  assert lines and lines[-1].startswith('step 22/22')
  assert all('loss ' in l and 'ex/s' in l for l in lines)

  # The same variables (names and shapes) in both checkpoints: runs can resume with
  # another --steps_per_loop; the loop's own bookkeeping is not saved.
  def variables(model_dir):
    return dict(tf.train.list_variables(tf.train.latest_checkpoint(model_dir)))
  assert variables(one.model_dir) == variables(looped.model_dir)
  # Resuming the looped run with one step per call continues from 22.
  resumed = train.run(_config(image_data, tmp_path / 'looped', num_steps=26))
  assert resumed.global_step == 26


def test_stacked_input_and_thread_pool(image_data):
  record_files = files.list_files(str(image_data / 'train-*.tfrecord'))
  parse_fn = image_parse.make_image_parse_fn(is_training=True, num_classes=3,
                                       family='cifarnet', image_size=32)
  base = input_lib.make_input_fn(record_files, is_training=True, batch_size=4,
                                 parse_fn=parse_fn)
  stacked = speed.with_data_threads(speed.stack_batches(base, 3), 2)()
  features, labels = next(iter(stacked))
  assert features['image'].shape == (3, 4, 32, 32, 3)
  assert labels.shape == (3, 4)
  assert stacked.options().threading.private_threadpool_size == 2
  assert speed.stack_batches(base, 1) is base
  assert speed.with_data_threads(base, 0) is base
  assert estimator_lib.session_config(0, 0) is None
  session_config = estimator_lib.session_config(2, 1)
  assert session_config.inter_op_parallelism_threads == 2
  assert session_config.intra_op_parallelism_threads == 1
  assert session_config.allow_soft_placement  # The Estimator's default is kept.


@pytest.mark.parametrize('flag', ['steps_per_loop=0', 'data_threads=-1',
                                  'inter_op_threads=-2'])
def test_bad_speed_flags(flag, tmp_path):
  name, value = flag.split('=')
  with pytest.raises(UserError, match='--%s' % name):
    config.Config(model_dir=str(tmp_path), train_record_path='x',
                  **{name: int(value)}).validate()


def test_bad_steps_per_loop_on_the_command_line(image_data, tmp_path):
  result = run_cli(['train.py', '--model_dir=%s' % (tmp_path / 'run'),
                    '--train_record_path=%s' % (image_data / 'train-*.tfrecord'),
                    '--model_name=cifarnet', '--steps_per_loop=0'])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith('error: --steps_per_loop=0')
  assert not (tmp_path / 'run').exists()
