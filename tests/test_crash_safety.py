"""A run's model_dir stays whole whatever happens to the run: Ctrl-C and kill -TERM save
a checkpoint; SIGKILL at random moments loses nothing; one trainer per model_dir; the
half-written files of a killed run are removed; a disk that fills up keeps the last
checkpoint; a run killed before its final export finishes it.

  .venv/bin/python -m pytest -q tests/test_crash_safety.py
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO
from conftest import run_cli
from conftest import write_image_records
from estimator_pipeline import train
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import lock as lock_lib
from estimator_pipeline.train import safety
from reliability_support import PROGRESS
from reliability_support import mount
from reliability_support import popen
from reliability_support import read
from reliability_support import small_run
from reliability_support import train_cmd
from reliability_support import umount
from reliability_support import wait_until
import tensorflow as tf


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_signal_saves_a_checkpoint_at_the_current_step(bad_data, tmp_path, signum):
  data = bad_data / 'data'
  model_dir = tmp_path / 'run'
  log = tmp_path / 'train.log'
  # No periodic checkpoint but the first: the one after the signal must be its own.
  # A low learning rate: this run has no end, and must not diverge before the signal.
  proc = popen(train_cmd(model_dir, data, '--num_steps=100000',
                           '--save_checkpoints_steps=100000', '--learning_rate=0.002'),
                log)
  try:
    assert wait_until(lambda: [int(s) for s in PROGRESS.findall(read(log))
                                if int(s) >= 10], proc), read(log)[-3000:]
    assert proc.poll() is None, read(log)[-3000:]
    if signum == signal.SIGINT:
      # One model_dir, one trainer: the second is refused and names the first.
      # Few steps: if the first run had died, this one must not train for hours.
      second = run_cli(train_cmd(model_dir, data, '--num_steps=20')[1:], timeout=300)
      assert second.returncode == 2, (second.stderr[-2000:], read(log)[-2000:])
      assert 'is being trained by pid %d' % proc.pid in second.stderr
      assert 'Traceback' not in second.stderr
    proc.send_signal(signum)
    proc.wait(timeout=600)
  finally:
    if proc.poll() is None:
      proc.kill()
  text = read(log)
  assert proc.returncode == 128 + signum, text[-3000:]
  assert 'Traceback' not in text
  last = text.strip().splitlines()[-1]
  name = 'SIGINT' if signum == signal.SIGINT else 'SIGTERM'
  match = re.match(r'interrupted by %s at step (\d+): saved (\S+); run the same '
                   r'command to resume\.$' % name, last)
  assert match, last
  step, path = int(match.group(1)), match.group(2)
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert latest == path and latest.endswith('model.ckpt-%d' % step)
  assert step >= 10 and max(int(s) for s in PROGRESS.findall(text)) <= step
  assert tf.train.load_checkpoint(latest).get_tensor('global_step') == step
  # The lock was released on the way out: an empty file marks a clean exit.
  assert read(model_dir / lock_lib.LOCK_FILE) == ''


def _export_versions(model_dir):
  return sorted(glob.glob(os.path.join(str(model_dir), 'export', '*', '*')))


def _assert_exports_complete(model_dir):
  """Every integer version directory is a whole SavedModel (what TF Serving loads)."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  for version in _export_versions(model_dir):
    if not os.path.basename(version).isdigit():
      continue  # temp-* directories: TF Serving ignores non-integer names.
    with open(os.path.join(version, 'saved_model.pb'), 'rb') as f:
      saved = saved_model_pb2.SavedModel.FromString(f.read())
    assert saved.meta_graphs, version
    reader = tf.train.load_checkpoint(os.path.join(version, 'variables', 'variables'))
    assert 'CifarNet/logits/weights' in reader.get_variable_to_shape_map(), version


def test_sigkill_at_random_moments_loses_nothing(bad_data, tmp_path):
  data = bad_data / 'data'
  model_dir = tmp_path / 'run'
  num_steps = 80
  cmd = train_cmd(model_dir, data, '--num_steps=%d' % num_steps,
                   '--save_checkpoints_steps=10', '--exports_to_keep=2',
                   '--learning_rate=0.01',
                   '--eval_record_path=%s' % (data / 'validation-*.tfrecord'))
  rng = random.Random(8)
  phases = ['training', 'evaluation', 'checkpoint', 'export'] * 3
  rng.shuffle(phases)
  ckpt_temp = os.path.join(str(model_dir), '*.ckpt-*_temp')
  export_temp = os.path.join(str(model_dir), 'export', '*', 'temp-*')
  history = []  # (phase, latest step after the kill, what was half-written)
  resumed_from = []
  last_step = 0
  for attempt, phase in enumerate(phases[:10]):
    log = tmp_path / ('run%d.log' % attempt)
    start_text = None
    proc = popen(cmd, log)
    try:
      # Past the clean-up of the previous run's leftovers, which would otherwise
      # look like this run's half-written files.
      wait_until(lambda: re.search('Resuming from|Training', read(log)), proc)
      if phase == 'training':
        triggered = wait_until(lambda: PROGRESS.search(read(log)), proc)
        time.sleep(rng.uniform(0, 0.5))
      elif phase == 'evaluation':
        before = tf.train.latest_checkpoint(str(model_dir))
        triggered = wait_until(
            lambda: tf.train.latest_checkpoint(str(model_dir)) not in (None, before),
            proc, poll=0.05)
        time.sleep(rng.uniform(0.1, 1.0))
      elif phase == 'checkpoint':
        triggered = wait_until(lambda: glob.glob(ckpt_temp), proc, poll=0.002)
      else:
        triggered = wait_until(lambda: glob.glob(export_temp), proc, poll=0.002)
      proc.kill()  # SIGKILL: no handler runs, no file is closed.
      proc.wait()
    finally:
      if proc.poll() is None:
        proc.kill()
    start_text = read(log)
    assert 'Traceback' not in start_text, start_text[-3000:]
    resumed = re.search(r'Resuming from \S+ \(step (\d+)\)', start_text)
    if resumed:
      resumed_from.append((last_step, int(resumed.group(1))))
    if attempt:
      assert 'Took over the lock of a run that is gone' in start_text, start_text
    assert proc.returncode == -signal.SIGKILL, (phase, start_text[-2000:])
    latest = tf.train.latest_checkpoint(str(model_dir))
    step = files.checkpoint_step(latest) if latest else 0
    assert step >= last_step, (phase, step, last_step)  # Never backwards.
    half = ('checkpoint' if glob.glob(ckpt_temp) else '') + (
        ' export' if glob.glob(export_temp) else '')
    history.append((phase, bool(triggered), step, half.strip()))
    last_step = step
    _assert_exports_complete(model_dir)
    if step >= num_steps:
      break
  print('kills (phase, triggered, step, half-written):', history)
  assert len(history) == 10, history
  # Every re-run started from the last complete checkpoint the previous one left.
  assert resumed_from and all(a == b for a, b in resumed_from), resumed_from

  final = run_cli(cmd[1:])
  assert final.returncode == 0, final.stderr[-3000:]
  assert 'Took over the lock' in final.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith('-%d' % num_steps)
  history_eval = files.eval_history(str(model_dir))
  assert history_eval[num_steps]['accuracy'] >= 0.8, history_eval
  _assert_exports_complete(model_dir)
  assert not glob.glob(export_temp) and not glob.glob(ckpt_temp)
  finals = [v for v in _export_versions(model_dir) if '/final/' in v]
  assert finals and files.export_step(max(finals)) == num_steps
  assert read(model_dir / lock_lib.LOCK_FILE) == ''


def test_stale_lock_is_taken_over_and_live_one_named(tmp_path):
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  (model_dir / lock_lib.LOCK_FILE).write_text(json.dumps(
      {'pid': 999999, 'host': 'gone', 'started': 'yesterday'}))
  lock_lib.check_free(str(model_dir))  # Nobody holds it: free.
  held = lock_lib.ModelDirLock(str(model_dir)).acquire()
  try:
    assert 'pid 999999 on host gone' in held.took_over
    with pytest.raises(UserError, match='is being trained by pid %d' % os.getpid()):
      lock_lib.check_free(str(model_dir))
    with pytest.raises(UserError, match='is being trained by pid %d' % os.getpid()):
      lock_lib.ModelDirLock(str(model_dir)).acquire()
  finally:
    held.release()
  lock_lib.check_free(str(model_dir))
  again = lock_lib.ModelDirLock(str(model_dir)).acquire()
  assert again.took_over is None  # A clean release is not a stale lock.
  again.release()


def test_partial_files_of_a_killed_run_are_removed(tmp_path):
  model_dir = tmp_path / 'run'
  keep = ['model.ckpt-10.index', 'checkpoint', 'config.json', 'export/best/1700000000/x',
          'export/best/notes.txt', 'eval/events.out.tfevents.1']
  partial = ['model.ckpt-20_temp/part-00000-of-00001.index',
             'checkpoint.tmp0123456789abcdef0123456789abcdef', 'config.json.tmp',
             'export/best/temp-1700000100/saved_model.pb',
             'export/final/temp-pruning-1700000000/variables/x']
  for name in keep + partial:
    path = model_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('x')
  removed = safety.clean_partial_files(str(model_dir))
  assert removed == sorted(['model.ckpt-20_temp', 'checkpoint.tmp0123456789abcdef'
                            '0123456789abcdef', 'config.json.tmp',
                            'export/best/temp-1700000100',
                            'export/final/temp-pruning-1700000000'])
  for name in keep:
    assert (model_dir / name).exists(), name


def test_export_pruning_renames_before_deleting(tmp_path):
  from estimator_pipeline.serving import exporters  # pylint: disable=g-import-not-at-top
  base = tmp_path / 'final'
  for version in ('1700000001', '1700000002', '1700000003'):
    (base / version / 'variables').mkdir(parents=True)
    (base / version / 'saved_model.pb').write_text('x')
  exporter = exporters.FinalExporter('final', lambda: None, exports_to_keep=1)
  exporter._garbage_collect_exports(str(base))  # pylint: disable=protected-access
  assert sorted(os.listdir(base)) == ['1700000003']




def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(bad_data, tmp_path):
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  # Room for one cifarnet checkpoint (weights + momentum, ~14 MB) and what preflight
  # asks for (~21 MB), not for two checkpoints at once.
  if not mount(['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs'], model_dir):
    pytest.skip('cannot mount a tmpfs here (needs root)')
  try:
    (model_dir / 'keep.txt').write_text('a user file')
    proc = run_cli(train_cmd(model_dir, bad_data / 'data', '--num_steps=6',
                              '--save_checkpoints_steps=2', '--num_classes=3')[1:])
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    error_lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
    assert len(error_lines) == 1, proc.stderr[-3000:]
    assert 'No space left on device' in error_lines[0], error_lines[0]
    latest = tf.train.latest_checkpoint(str(model_dir))
    assert ('the last complete checkpoint %s is kept' % latest) in error_lines[0]
    tf.train.load_checkpoint(latest).get_tensor('global_step')  # Whole and readable.
    assert not glob.glob(str(model_dir / '*_temp'))
    assert (model_dir / 'keep.txt').read_text() == 'a user file'
  finally:
    umount(model_dir)


def test_run_killed_before_its_final_export_finishes_it(bad_data, tmp_path, capfd):
  data = bad_data / 'data'
  cfg = small_run(data, tmp_path / 'run',
                eval_record_path=str(data / 'validation-*.tfrecord'))
  train.run(cfg)
  final_dir = tmp_path / 'run' / 'export' / 'final'
  # What a SIGKILL between the last checkpoint and the final export leaves behind.
  for version in os.listdir(final_dir):
    os.rename(final_dir / version, final_dir / ('temp-%s' % version))
  capfd.readouterr()
  result = train.run(cfg)
  err = capfd.readouterr().err
  assert 'stopped before the final evaluation and export: doing those now' in err
  assert 'Removed what a killed run left half-written: export/final/temp-' in err
  assert os.listdir(final_dir) == [os.path.basename(result.exports['final'])]
  assert files.export_step(result.exports['final']) == cfg.num_steps
  assert result.eval_metrics['global_step'] == cfg.num_steps
  # A third run has nothing left to do: one line, success (see test_train's resume).
  assert 'already holds step 10' in train.run(cfg).finished



@pytest.mark.under_load
def test_ctrl_c_during_evaluation_stops_at_once_and_the_next_run_resumes(bad_data,
                                                                        tmp_path):
  data = bad_data / 'data'
  # Enough evaluation batches that the evaluation cannot end before the signal lands.
  validation = write_image_records(str(tmp_path / 'validation.tfrecord'),
                                   [i % 3 for i in range(600)], seed=5)
  model_dir = tmp_path / 'run'
  cmd = train_cmd(model_dir, data, '--num_steps=20', '--save_checkpoints_steps=10',
                  '--eval_record_path=%s' % validation, '--eval_batch_size=1')
  log = tmp_path / 'train.log'
  proc = popen(cmd, log)
  try:
    assert wait_until(lambda: 'Evaluating the checkpoint of step 10' in read(log),
                      proc), read(log)[-3000:]
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=600)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  text = read(log)
  assert proc.returncode == 130, text[-3000:]
  assert 'Traceback' not in text
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert latest.endswith('model.ckpt-10'), latest
  assert text.strip().splitlines()[-1] == (
      'interrupted by SIGINT during evaluation; the last checkpoint is %s: run the '
      'same command to resume.' % latest)
  # It stopped inside the evaluation: no result of it was written.
  assert 10 not in files.eval_history(str(model_dir))
  assert read(model_dir / lock_lib.LOCK_FILE) == ''

  again = run_cli(cmd[1:])
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resuming from %s (step 10)' % latest in again.stderr
  assert tf.train.latest_checkpoint(str(model_dir)).endswith('model.ckpt-20')
  assert 20 in files.eval_history(str(model_dir))


_FLOCK_SHIMS = {
    # flock that locks nothing and says it did (what some network file systems do).
    'ignored': 'int flock(int fd, int op) { (void)fd; (void)op; return 0; }\n',
    # flock refused for want of a lock manager (NFS without lockd).
    'refused': ('#include <errno.h>\nint flock(int fd, int op) { (void)fd; (void)op; '
                'errno = ENOLCK; return -1; }\n'),
}
_HOLD = ('import sys, time\n'
         'from estimator_pipeline.train import lock\n'
         'held = lock.ModelDirLock(sys.argv[1]).acquire()\n'
         'print(held.note, flush=True)\n'
         'time.sleep(float(sys.argv[2]))\n')


def _flock_shim(folder, kind):
  """A shared library that replaces libc's flock in the processes it is preloaded in:
  a file system that does not honour flock, as seen by this project's code."""
  compiler = shutil.which('cc') or shutil.which('gcc')
  if not compiler:
    pytest.skip('no C compiler to build a flock shim with')
  source = folder / ('%s.c' % kind)
  source.write_text(_FLOCK_SHIMS[kind])
  library = folder / ('%s.so' % kind)
  subprocess.run([compiler, '-shared', '-fPIC', '-o', str(library), str(source)],
                 check=True, capture_output=True)
  return dict(os.environ, LD_PRELOAD=str(library), TF_CPP_MIN_LOG_LEVEL='3')


def _holder(model_dir, env, log, seconds):
  with open(log, 'w') as out:
    return subprocess.Popen([sys.executable, '-c', _HOLD, str(model_dir), str(seconds)],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_lock_without_flock_falls_back_to_a_heartbeat(bad_data, tmp_path):
  model_dir = tmp_path / 'run'
  refused = _holder(model_dir, _flock_shim(tmp_path, 'refused'), tmp_path / 'r.log', 0)
  assert refused.wait(timeout=600) == 0, read(tmp_path / 'r.log')
  assert 'does not honour flock (flock fails there: No locks available)' in read(
      tmp_path / 'r.log')

  env = _flock_shim(tmp_path, 'ignored')
  log = tmp_path / 'holder.log'
  holder = _holder(model_dir, env, log, 3600)
  try:
    # The second process's probe took the lock it should not have: noticed.
    assert wait_until(lambda: 'does not keep a second process out' in read(log),
                      holder), read(log)
    lock_path = model_dir / lock_lib.LOCK_FILE
    first = json.loads(read(lock_path))['heartbeat']
    assert wait_until(lambda: json.loads(read(lock_path) or '{}').get(
        'heartbeat', first) != first, holder, timeout=120), 'no heartbeat came'
    # Its heartbeat keeps out this process, whose flock works, and a trainer whose
    # does not.
    with pytest.raises(UserError, match='is being trained by pid %d' % holder.pid):
      lock_lib.check_free(str(model_dir))
    with pytest.raises(UserError, match='is being trained by pid %d' % holder.pid):
      lock_lib.ModelDirLock(str(model_dir)).acquire()
  finally:
    holder.kill()  # SIGKILL: the heartbeat stops, the lock file stays.
    holder.wait()
  trainer = subprocess.run(train_cmd(model_dir, bad_data / 'data', '--num_steps=4',
                                     '--num_classes=3'),
                           cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=900)
  assert trainer.returncode == 0, trainer.stderr[-3000:]
  assert re.search(r'Took over the lock of a run that is gone \(pid %d on host \S+ '
                   r'since \S+; its process is gone\)' % holder.pid, trainer.stderr)
  assert read(model_dir / lock_lib.LOCK_FILE) == ''  # Released cleanly.
