"""The console: the shared progress display, the trainer's step line, the closing
summary, and --profile_steps checking.

  .venv/bin/python -m pytest -q tests/test_console.py
"""

import io
import re

import pytest

from conftest import run_cli
import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.core import console
from estimator_pipeline.train import hooks
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline.config import controls
from estimator_pipeline.train import monitoring
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import summary


class _Tty(io.StringIO):

  def isatty(self):
    return True


def test_plain_progress_prints_lines_with_rate_and_eta():
  out = io.StringIO()
  progress = console.Progress(10, 'writing records', unit='img', stream=out,
                              plain_every_n=4)
  for _ in range(10):
    progress.update()
  progress.close(final=True)
  lines = out.getvalue().splitlines()
  # At 4 and 8, then the final state; never a carriage return in a log.
  assert [l.split()[2] for l in lines] == ['4/10', '8/10', '10/10'], lines
  assert '\r' not in out.getvalue()
  assert re.search(r'img/s  ETA \d+s$', lines[0]), lines[0]
  assert '(100%)' in lines[-1] and 'ETA' not in lines[-1]


def test_live_progress_redraws_one_line_and_yields_to_other_lines(monkeypatch):
  out = _Tty()
  monkeypatch.setattr(console.sys, 'stderr', out)
  monkeypatch.setattr(console, 'LIVE_EVERY_SECONDS', 0.0)
  progress = console.Progress(4, 'checking images', unit='img')
  progress.update()
  console.line('a message')
  progress.update(3)
  progress.close()
  text = out.getvalue()
  assert text.count('\n') == 2, repr(text)  # The message and the closed bar.
  # The message clears the bar's line first and the bar is drawn again after it.
  assert '\r\x1b[Ka message\n\r' in text, repr(text)
  assert text.rstrip('\n').split('\r')[-1].startswith(
      'checking images: [########################] 4/4 (100%)'), repr(text)


def test_disabled_progress_prints_nothing():
  out = _Tty()
  progress = console.Progress(3, 'x', enabled=False, stream=out)
  progress.update(3)
  progress.close(final=True)
  assert out.getvalue() == ''


def _train_with_progress(num_steps, every, live):
  with tf.Graph().as_default():
    step = tf.compat.v1.train.get_or_create_global_step()
    loss = tf.identity(0.2, name=model_fn_lib.TOTAL_LOSS_NAME)
    tf.identity(0.01, name=model_fn_lib.LEARNING_RATE_NAME)
    # As model_fn builds it: the update waits for the step read the hooks fetch.
    with tf.control_dependencies([training_util._get_or_create_global_step_read()]):  # pylint: disable=protected-access
      train_op = tf.compat.v1.assign_add(step, 1)
    hook = hooks.ProgressHook(num_steps, batch_size=8, every_n_steps=every, live=live)
    with tf.compat.v1.train.MonitoredSession(hooks=[
        hook, tf.compat.v1.train.StopAtStepHook(last_step=num_steps)]) as session:
      while not session.should_stop():
        session.run([train_op, loss])


def test_step_line_every_n_steps_in_logs(capsys):
  _train_with_progress(12, every=5, live=False)
  lines = capsys.readouterr().err.splitlines()
  assert [l.split()[1] for l in lines] == ['5/12', '10/12', '12/12'], lines
  assert re.match(r'step 5/12 \(41%\)  loss 0\.2000  lr 0\.010000  [\d.]+ ex/s  ETA \d+s$',
                  lines[0]), lines[0]


def test_step_line_is_a_live_bar_on_a_terminal(capsys, monkeypatch):
  monkeypatch.setattr(console, 'LIVE_EVERY_SECONDS', 0.0)
  _train_with_progress(6, every=50, live=True)
  err = capsys.readouterr().err
  assert err.count('\n') == 1 and err.count('\r') > 3, repr(err)
  assert err.rstrip('\n').split('\r')[-1].startswith(
      'step: [########################] 6/6 (100%)  loss 0.2000'), repr(err)


@pytest.mark.parametrize('text,expected', [
    ('', None), ('100,110', (100, 110)), (' 0, 5 ', (0, 5))])
def test_profile_steps_parse(text, expected):
  assert controls.parse_profile_steps(text, num_steps=200) == expected


@pytest.mark.parametrize('text,message', [
    ('100', 'not two steps'), ('a,b', 'not two steps'), ('110,100', 'FIRST < LAST'),
    ('100,300', 'ends past --num_steps=200')])
def test_profile_steps_bad(text, message):
  with pytest.raises(UserError, match=message):
    controls.parse_profile_steps(text, num_steps=200)


def test_bad_profile_steps_flag_is_one_line_and_exit_2(image_data, tmp_path):
  proc = run_cli(['train.py', '--model_dir=%s' % (tmp_path / 'run'),
                  '--train_record_path=%s' % (image_data / 'train-*.tfrecord'),
                  '--model_name=cifarnet', '--num_steps=4', '--profile_steps=5'])
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(
      'error: --profile_steps=5 is not two steps'), proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'run').exists()


def test_metrics_text_leaves_out_summaries():
  text = console.metrics_text({'accuracy': 0.5, 'loss': 1.25, 'global_step': 3,
                               'confusion_matrix': b'\n\x07serialized'})
  assert text == 'accuracy 0.5000  loss 1.2500'


def test_closing_summary(capsys):
  summary.print_summary(summary.Result(
      model_dir='runs/x', global_step=40,
      eval_metrics={'loss': 0.5, 'accuracy': 0.75, 'global_step': 40,
                    'confusion_matrix': b'\x0a\x01'},
      best_metrics={'loss': 0.4, 'accuracy': 0.8, 'global_step': 30},
      exports={'best': 'runs/x/export/best/2', 'final': None}, seconds=125))
  assert capsys.readouterr().err.splitlines() == [
      'Done: step 40 in 2m05s.',
      '  best eval loss 0.4000 at step 30: accuracy 0.8000  loss 0.4000',
      '  final eval at step 40: accuracy 0.7500  loss 0.5000',
      '  export/best: runs/x/export/best/2',
      '  watch it: tensorboard --logdir runs/x']


def test_image_converter_shows_progress_and_counts(tmp_path, capsys, monkeypatch):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.records import images  # pylint: disable=g-import-not-at-top
  for name in ('a', 'b'):
    (tmp_path / 'photos' / name).mkdir(parents=True)
    for i in range(3):
      Image.new('RGB', (8, 8), (40 * i, 0, 0)).save(tmp_path / 'photos' / name /
                                                    ('%d.png' % i))
  (tmp_path / 'photos' / 'a' / 'broken.png').write_bytes(b'not an image')
  monkeypatch.setattr(console, 'PLAIN_EVERY_SECONDS', 0.0)
  result = images.convert_image_folder(str(tmp_path / 'photos'), str(tmp_path / 'out'),
                                       validation_fraction=0.0, num_workers=1)
  lines = capsys.readouterr().err.splitlines()
  checking = [l for l in lines if l.startswith('checking images ')]
  writing = [l for l in lines if l.startswith('writing records ')]
  # A line per file but the last (the closing count follows); rate and ETA in each.
  assert [l.split()[2] for l in checking] == ['%d/7' % i for i in range(1, 7)], lines
  assert [l.split()[2] for l in writing] == ['%d/6' % i for i in range(1, 6)], lines
  assert all(re.search(r'img/s  ETA \d+s$', l) for l in checking + writing), lines
  summary = result.summary()
  assert 'wrote 6 train' in summary and 'skipped 1 file' in summary, summary
