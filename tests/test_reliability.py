"""Reliability: bad input as one line and exit 2 with model_dir untouched; Ctrl-C and
kill -TERM save a checkpoint; one trainer per model_dir; SIGKILL at random moments
loses nothing; NaN never replaces a good checkpoint; bad records are found, named,
skipped; untrusted files stay data.

  .venv/bin/python -m pytest -q tests/test_reliability.py
"""

import concurrent.futures
import fcntl
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from conftest import image_example
from conftest import tree_digest
from conftest import run_cli
from conftest import write_image_records
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline import lock as lock_lib
from estimator_pipeline import safety
from estimator_pipeline import train_lib
from estimator_pipeline.errors import UserError
from estimator_pipeline.records import images as images_lib
from estimator_pipeline.records import inspect as inspect_lib


def _write_records(path, examples, options=None):
  with tf.io.TFRecordWriter(str(path), options=options) as writer:
    for example in examples:
      writer.write(example if isinstance(example, bytes) else
                   example.SerializeToString())
  return str(path)


def _good_records(path):
  return [r.numpy() for r in tf.data.TFRecordDataset(str(path))]


def _corrupt_middle(good_path, bad_path):
  """A copy of good_path whose third record has a flipped byte (bad CRC)."""
  records = _good_records(good_path)
  offset = sum(16 + len(r) for r in records[:2]) + 12 + len(records[2]) // 2
  data = bytearray(open(good_path, 'rb').read())
  data[offset] ^= 0xFF
  open(bad_path, 'wb').write(bytes(data))
  return str(bad_path)


def _mount(args, target):
  proc = subprocess.run(['mount'] + args + [str(target)], capture_output=True,
                        text=True)
  return proc.returncode == 0


def _umount(target):
  subprocess.run(['umount', str(target)], capture_output=True)


@pytest.fixture(scope='module')
def bad_data(tmp_path_factory):
  """Good image records plus one file per kind of bad data, and a foreign checkpoint."""
  root = tmp_path_factory.mktemp('bad_data')
  data = root / 'data'
  data.mkdir()
  for shard in range(2):
    write_image_records(str(data / ('train-%05d-of-00002.tfrecord' % shard)),
                        [i % 3 for i in range(24)], seed=shard)
  write_image_records(str(data / 'validation-00000-of-00001.tfrecord'),
                      [i % 3 for i in range(12)], seed=7)
  (data / 'labels.txt').write_text('0:red\n1:green\n2:blue\n')
  good = data / 'train-00000-of-00002.tfrecord'
  bad = root / 'bad'
  bad.mkdir()
  (bad / 'labels.txt').write_text('0:red\n1:green\n2:blue\n')
  (bad / 'random.tfrecord').write_bytes(np.random.RandomState(0).bytes(3000))
  _write_records(bad / 'zlib.tfrecord', _good_records(good), options='ZLIB')
  _write_records(bad / 'empty.tfrecord', [])
  _write_records(bad / 'textjpeg.tfrecord',
                 [image_example(b'<html>not a picture</html>', i % 3, 32, 32, b'jpeg')
                  for i in range(6)])
  as_string = []
  for i, raw in enumerate(_good_records(good)[:6]):
    example = tf.train.Example.FromString(raw)
    label = example.features.feature['image/class/label']
    label.Clear()
    label.bytes_list.value.append(['red', 'green', 'blue'][i % 3].encode())
    as_string.append(example)
  _write_records(bad / 'labelstr.tfrecord', as_string)
  write_image_records(str(bad / 'label7.tfrecord'), [0, 1, 2, 7, 0, 1], seed=3)
  _corrupt_middle(str(good), bad / 'corrupt.tfrecord')
  (bad / 'labels_bad.txt').write_text('red\ngreen\nblue\n')
  with tf.Graph().as_default():
    tf.compat.v1.get_variable('LeNet/conv1/weights', [5, 5, 1, 32])
    tf.compat.v1.get_variable('LeNet/fc3/weights', [3136, 1024])
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      tf.compat.v1.train.Saver().save(sess, str(root / 'lenet.ckpt'))
  return root


_TRAIN = 'train.py'
_INSPECT = '-m estimator_pipeline.records inspect'

# (id, command, arguments ({data}, {bad}, {root} filled in), words the error names,
#  set-up). Each runs in its own copy of an existing model_dir holding a user file.
CATALOGUE = [
    ('glob_matches_nothing', _TRAIN, ['--train_record_path={data}/nothing-*.tfrecord'],
     'matches no file', None),
    ('glob_empty', _TRAIN, ['--train_record_path='], '--train_record_path is empty',
     None),
    ('glob_of_empty_files', _TRAIN, ['--train_record_path={bad}/empty.tfrecord'],
     'holds no record', None),
    ('directory_as_records', _TRAIN, ['--train_record_path={data}'],
     'is a directory', None),
    ('random_bytes', _TRAIN, ['--train_record_path={bad}/random.tfrecord'],
     'random.tfrecord is not a TFRecord file', None),
    ('zlib_read_uncompressed', _TRAIN, ['--train_record_path={bad}/zlib.tfrecord'],
     'zlib.tfrecord is ZLIB-compressed', None),
    ('uncompressed_read_as_zlib', _INSPECT,
     ['--compression=ZLIB', '{data}/train-00000-of-00002.tfrecord'],
     'is uncompressed TFRecords, but it is read as ZLIB', None),
    ('jpeg_that_is_text', _TRAIN, ['--train_record_path={bad}/textjpeg.tfrecord'],
     'textjpeg.tfrecord record 0: image/encoded is not an image', None),
    ('label_as_string', _TRAIN, ['--train_record_path={bad}/labelstr.tfrecord'],
     'image/class/label is a string', None),
    ('label_out_of_range_mid_file', _TRAIN,
     ['--train_record_path={bad}/label7.tfrecord', '--num_classes=3',
      '--validate_data'], 'label7.tfrecord record 3: label 7 is outside [0, 3)', None),
    ('corrupt_record_mid_file', _TRAIN,
     ['--train_record_path={bad}/corrupt.tfrecord', '--validate_data'],
     'corrupt.tfrecord record 2: bad CRC', None),
    ('num_classes_too_small', _TRAIN, ['--num_classes=2'], 'pass --num_classes=3',
     None),
    ('labels_file_malformed', _TRAIN, ['--labels_file={bad}/labels_bad.txt'],
     "labels_bad.txt line 1 is 'red'", None),
    ('unknown_model', _TRAIN, ['--model_name=resnet_v9'], 'known: alexnet_v2', None),
    ('missing_warm_start_checkpoint', _TRAIN, ['--checkpoint_path={root}/no.ckpt'],
     '--checkpoint_path=', None),
    ('warm_start_of_other_architecture', _TRAIN,
     ['--checkpoint_path={root}/lenet.ckpt'],
     'holds none of the 10 variables of this model (its variables are under LeNet)',
     None),
    ('scope_of_no_variable', _TRAIN, ['--scopes_to_freeze=CifarNet/conv9'],
     'CifarNet/conv9', None),
    ('unknown_flag', _TRAIN, ['--num_stepz=3'], 'num_stepz', None),
    ('negative_batch_size', _TRAIN, ['--batch_size=-4'], '--batch_size=-4', None),
    ('positional_argument', _TRAIN, ['runs/x'], "unexpected argument 'runs/x'", None),
    ('model_dir_of_other_model', _TRAIN, [], 'holds a model with model_name=resnet_v1_50',
     'other_model'),
    ('model_dir_config_not_json', _TRAIN, [],
     'config.json is not valid JSON (line 1, column 2', 'bad_config'),
    ('model_dir_being_trained', _TRAIN, [], 'is being trained by pid', 'locked'),
    ('read_only_model_dir', _TRAIN, [], 'read-only file system', 'read_only'),
    ('disk_too_small_for_a_checkpoint', _TRAIN, [], 'MB free', 'tiny_disk'),
]


def _setup(kind, model_dir, holders):
  """Prepares one case's model_dir; returns False if this machine cannot."""
  if kind == 'other_model':
    config.Config(model_dir=str(model_dir), model_name='resnet_v1_50',
                  num_classes=3, image_size=224).save()
  elif kind == 'bad_config':
    (model_dir / 'config.json').write_text("{'model_name': 'cifarnet'}")
  elif kind == 'locked':
    fd = os.open(str(model_dir / lock_lib.LOCK_FILE), os.O_RDWR | os.O_CREAT)
    os.write(fd, json.dumps({'pid': os.getpid(), 'host': 'here',
                             'started': 'now'}).encode())
    fcntl.flock(fd, fcntl.LOCK_EX)
    holders.append(lambda: os.close(fd))
  elif kind == 'read_only':
    # Tests run as root, whom chmod does not stop: a read-only bind mount does.
    if not _mount(['--bind', str(model_dir)], model_dir):
      return False
    holders.append(lambda: _umount(model_dir))
    if not _mount(['-o', 'remount,ro,bind'], model_dir):
      return False
  elif kind == 'tiny_disk':
    keep = (model_dir / 'keep.txt').read_bytes()
    if not _mount(['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs'], model_dir):
      return False
    holders.append(lambda: _umount(model_dir))
    (model_dir / 'keep.txt').write_bytes(keep)
  return True


@pytest.fixture(scope='module')
def catalogue_results(bad_data, tmp_path_factory):
  """Runs every case at once (they are mostly start-up time); {id: outcome}."""
  root = tmp_path_factory.mktemp('catalogue')
  holders, jobs, results = [], {}, {}
  try:
    for case_id, command, args, _, kind in CATALOGUE:
      model_dir = root / case_id
      model_dir.mkdir()
      (model_dir / 'keep.txt').write_text('a user file')
      if kind and not _setup(kind, model_dir, holders):
        results[case_id] = 'cannot set up %s here (needs mount as root)' % kind
        continue
      base = {'--model_dir': str(model_dir),
              '--train_record_path': str(bad_data / 'data' / 'train-*.tfrecord'),
              '--model_name': 'cifarnet', '--num_steps': '4', '--batch_size': '4'}
      if command == _INSPECT:
        base = {}
      positional = []
      for arg in args:
        arg = arg.format(data=bad_data / 'data', bad=bad_data / 'bad', root=bad_data)
        if arg.startswith('--'):
          key, equals, value = arg.partition('=')
          base[key] = value if equals else None  # None: a bare boolean flag.
        else:
          positional.append(arg)
      argv = command.split() + [k if v is None else '%s=%s' % (k, v)
                                for k, v in base.items()] + positional
      jobs[case_id] = (argv, model_dir, tree_digest(model_dir))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
      futures = {case_id: pool.submit(run_cli, argv)
                 for case_id, (argv, _, _) in jobs.items()}
      for case_id, future in futures.items():
        _, model_dir, before = jobs[case_id]
        results[case_id] = (future.result(), before, tree_digest(model_dir))
  finally:
    for release in reversed(holders):
      release()
  return results


@pytest.mark.parametrize('case_id,expected', [(c[0], c[3]) for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_one_line_exit_2_and_model_dir_unchanged(catalogue_results,
                                                              case_id, expected):
  outcome = catalogue_results[case_id]
  if isinstance(outcome, str):
    pytest.skip(outcome)
  proc, before, after = outcome
  assert proc.returncode == 2, (case_id, proc.stdout[-2000:], proc.stderr[-3000:])
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  error_lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(error_lines) == 1, proc.stderr[-3000:]
  assert expected in error_lines[0], error_lines[0]
  assert after == before, 'model_dir changed'


# ---------------------------------------------------------------------------------
# Real processes: signals, the lock, SIGKILL at random moments.

_PROGRESS = re.compile(r'step (\d+)/')


def _train_cmd(model_dir, data, *extra):
  return [sys.executable, 'train.py', '--model_dir=%s' % model_dir,
          '--train_record_path=%s' % (data / 'train-*.tfrecord'),
          '--model_name=cifarnet', '--batch_size=8', '--log_every_steps=5',
          '--learning_rate=0.02', '--norandom_flip'] + list(extra)


def _popen(cmd, log_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  log = open(log_path, 'w')
  return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _read(path):
  with open(path) as f:
    return f.read()


def _wait_until(predicate, proc, timeout=600, poll=0.02):
  """True once predicate() holds; False if proc ended first or time ran out."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return True
    if proc.poll() is not None:
      return predicate()
    time.sleep(poll)
  return False


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM],
                         ids=['SIGINT', 'SIGTERM'])
def test_signal_saves_a_checkpoint_at_the_current_step(bad_data, tmp_path, signum):
  data = bad_data / 'data'
  model_dir = tmp_path / 'run'
  log = tmp_path / 'train.log'
  # No periodic checkpoint but the first: the one after the signal must be its own.
  # A low learning rate: this run has no end, and must not diverge before the signal.
  proc = _popen(_train_cmd(model_dir, data, '--num_steps=100000',
                           '--save_checkpoints_steps=100000', '--learning_rate=0.002'),
                log)
  try:
    assert _wait_until(lambda: [int(s) for s in _PROGRESS.findall(_read(log))
                                if int(s) >= 10], proc), _read(log)[-3000:]
    assert proc.poll() is None, _read(log)[-3000:]
    if signum == signal.SIGINT:
      # One model_dir, one trainer: the second is refused and names the first.
      # Few steps: if the first run had died, this one must not train for hours.
      second = run_cli(_train_cmd(model_dir, data, '--num_steps=20')[1:], timeout=300)
      assert second.returncode == 2, (second.stderr[-2000:], _read(log)[-2000:])
      assert 'is being trained by pid %d' % proc.pid in second.stderr
      assert 'Traceback' not in second.stderr
    proc.send_signal(signum)
    proc.wait(timeout=600)
  finally:
    if proc.poll() is None:
      proc.kill()
  text = _read(log)
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
  assert step >= 10 and max(int(s) for s in _PROGRESS.findall(text)) <= step
  assert tf.train.load_checkpoint(latest).get_tensor('global_step') == step
  # The lock was released on the way out: an empty file marks a clean exit.
  assert _read(model_dir / lock_lib.LOCK_FILE) == ''


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
  cmd = _train_cmd(model_dir, data, '--num_steps=%d' % num_steps,
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
    proc = _popen(cmd, log)
    try:
      # Past the clean-up of the previous run's leftovers, which would otherwise
      # look like this run's half-written files.
      _wait_until(lambda: re.search('Resuming from|Training', _read(log)), proc)
      if phase == 'training':
        triggered = _wait_until(lambda: _PROGRESS.search(_read(log)), proc)
        time.sleep(rng.uniform(0, 0.5))
      elif phase == 'evaluation':
        before = tf.train.latest_checkpoint(str(model_dir))
        triggered = _wait_until(
            lambda: tf.train.latest_checkpoint(str(model_dir)) not in (None, before),
            proc, poll=0.05)
        time.sleep(rng.uniform(0.1, 1.0))
      elif phase == 'checkpoint':
        triggered = _wait_until(lambda: glob.glob(ckpt_temp), proc, poll=0.002)
      else:
        triggered = _wait_until(lambda: glob.glob(export_temp), proc, poll=0.002)
      proc.kill()  # SIGKILL: no handler runs, no file is closed.
      proc.wait()
    finally:
      if proc.poll() is None:
        proc.kill()
    start_text = _read(log)
    assert 'Traceback' not in start_text, start_text[-3000:]
    resumed = re.search(r'Resuming from \S+ \(step (\d+)\)', start_text)
    if resumed:
      resumed_from.append((last_step, int(resumed.group(1))))
    if attempt:
      assert 'Took over the lock of a run that is gone' in start_text, start_text
    assert proc.returncode == -signal.SIGKILL, (phase, start_text[-2000:])
    latest = tf.train.latest_checkpoint(str(model_dir))
    step = safety.checkpoint_step(latest) if latest else 0
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
  history_eval = train_lib.eval_history(str(model_dir))
  assert history_eval[num_steps]['accuracy'] >= 0.8, history_eval
  _assert_exports_complete(model_dir)
  assert not glob.glob(export_temp) and not glob.glob(ckpt_temp)
  finals = [v for v in _export_versions(model_dir) if '/final/' in v]
  assert finals and safety.export_step(max(finals)) == num_steps
  assert _read(model_dir / lock_lib.LOCK_FILE) == ''


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
  from export import exporters  # pylint: disable=g-import-not-at-top
  base = tmp_path / 'final'
  for version in ('1700000001', '1700000002', '1700000003'):
    (base / version / 'variables').mkdir(parents=True)
    (base / version / 'saved_model.pb').write_text('x')
  exporter = exporters.FinalExporter('final', lambda: None, exports_to_keep=1)
  exporter._garbage_collect_exports(str(base))  # pylint: disable=protected-access
  assert sorted(os.listdir(base)) == ['1700000003']


# ---------------------------------------------------------------------------------
# NaN, bad records, validation and inspection (library calls: no start-up cost).


def _config(data, model_dir, **kw):
  values = dict(model_dir=str(model_dir),
                train_record_path=str(data / 'train-*.tfrecord'),
                model_name='cifarnet', num_steps=10, batch_size=8,
                save_checkpoints_steps=5, log_every_steps=5, learning_rate=0.02,
                random_flip=False, num_classes=3)
  values.update(kw)
  return config.Config(**values)


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(bad_data,
                                                                    tmp_path):
  model_dir = tmp_path / 'run'
  train_lib.run(_config(bad_data / 'data', model_dir))
  with pytest.raises(UserError) as raised:
    train_lib.run(_config(bad_data / 'data', model_dir, num_steps=40,
                          learning_rate=1e12, save_checkpoints_steps=1))
  message = str(raised.value)
  assert 'lower --learning_rate' in message and '--clip_gradient_norm' in message
  step = int(re.search(r'NaN or Inf at step (\d+)', message).group(1))
  state = tf.train.get_checkpoint_state(str(model_dir))
  assert safety.checkpoint_step(state.model_checkpoint_path) < step
  assert state.model_checkpoint_path in message
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      value = reader.get_tensor(name)
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), (path, name)


@pytest.fixture(scope='module')
def mixed_data(tmp_path_factory, bad_data):
  """A good shard and one with 2 bad records of 6 (an undecodable image, label 7)."""
  data = tmp_path_factory.mktemp('mixed')
  good = bad_data / 'data' / 'train-00000-of-00002.tfrecord'
  records = _good_records(good)
  _write_records(data / 'train-a.tfrecord', records)
  mixed = records[:6]
  mixed[2] = image_example(b'GIF89a-but-cut-off', 1, 32, 32, b'gif').SerializeToString()
  label7 = tf.train.Example.FromString(records[7])
  label7.features.feature['image/class/label'].int64_list.value[0] = 7
  mixed[4] = label7.SerializeToString()
  _write_records(data / 'train-b.tfrecord', mixed)
  (data / 'labels.txt').write_text('0:red\n1:green\n2:blue\n')
  return data


def test_first_bad_record_stops_training_with_file_and_index(mixed_data, tmp_path):
  with pytest.raises(UserError, match=r'train-b\.tfrecord record 2: the GIF image'):
    train_lib.run(_config(mixed_data, tmp_path / 'run', num_steps=30))


def test_skip_corrupt_records_trains_and_counts(mixed_data, tmp_path, capfd):
  result = train_lib.run(_config(mixed_data, tmp_path / 'run', num_steps=20,
                                 skip_corrupt_records=True, validate_data=True))
  err = capfd.readouterr().err
  assert result.global_step == 20
  # --validate_data's report: counts per label, sizes, formats, each bad record.
  assert 'labels: 0: 10, 1: 9, 2: 9' in err
  assert 'sizes (width x height): 32x32 28' in err and 'formats: png 28' in err
  assert 'train-b.tfrecord record 2: the GIF image' in err
  assert 'train-b.tfrecord record 4: label 7 is outside [0, 3)' in err
  # 2 of every 30 records are bad; each batch of 8 is whole.
  used = 20 * 8
  assert result.records_read - result.skipped_records == used
  assert 2 * (used // 28) <= result.skipped_records <= 2 * (used // 28 + 1)
  assert ('skipped %d of %d training records' % (result.skipped_records,
                                                 result.records_read)) in err


def test_inspect_cli_reports_everything_and_every_bad_record(bad_data, mixed_data):
  proc = run_cli(['-m', 'estimator_pipeline.records', 'inspect',
                  str(mixed_data / 'train-*.tfrecord'),
                  str(bad_data / 'bad' / 'corrupt.tfrecord'),
                  str(bad_data / 'bad' / 'zlib.tfrecord')])
  assert proc.returncode == 2, proc.stderr[-2000:]
  out = proc.stdout
  assert '%s: 24 records, ZLIB' % (bad_data / 'bad' / 'zlib.tfrecord') in out
  assert 'bad: %s record 2: bad CRC' % (bad_data / 'bad' / 'corrupt.tfrecord') in out
  assert 'bad: %s record 2: the GIF image' % (mixed_data / 'train-b.tfrecord') in out
  assert 'bad: %s record 4: label 7 is outside [0, 3)' % (
      mixed_data / 'train-b.tfrecord') in out
  # Records after a bad CRC are still read: 24 - 1 good in corrupt.tfrecord.
  assert '78 records in 4 files (image layout), 3 bad' in out
  assert 'labels: 0: 26, 1: 25, 2: 24' in out and 'formats: png 75' in out
  error_lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(error_lines) == 1 and '3 bad records in 4 files' in error_lines[0]

  clean = inspect_lib.inspect_files(
      sorted(glob.glob(str(bad_data / 'data' / 'train-*'))), num_classes=3)
  assert clean.num_bad == 0 and clean.num_records == 48
  assert clean.checker.labels == {0: 16, 1: 16, 2: 16}


def test_truncated_file_is_named(bad_data, tmp_path):
  good = open(bad_data / 'data' / 'train-00001-of-00002.tfrecord', 'rb').read()
  (tmp_path / 'cut.tfrecord').write_bytes(good[:-500])
  report = inspect_lib.inspect_files([str(tmp_path / 'cut.tfrecord')], num_classes=3)
  assert [(b.index, b.problem) for b in report.bad] == [
      (23, 'truncated: the file ends inside record 23')]


# ---------------------------------------------------------------------------------
# Untrusted input stays data.


def test_flag_file_is_parsed_never_executed(tmp_path):
  marker = tmp_path / 'executed'
  flagfile = tmp_path / 'flags.txt'
  flagfile.write_text("__import__('os').system('touch %s')\n"
                      "--model_name=$(touch %s)\n--num_steps=4\n" % (marker, marker))
  proc = run_cli(['train.py', '--flagfile=%s' % flagfile,
                  '--model_dir=%s' % (tmp_path / 'run'),
                  '--train_record_path=%s' % (tmp_path / 'none-*')])
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert not marker.exists()


def test_config_json_is_parsed_never_executed(tmp_path):
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  (model_dir / 'config.json').write_text("{'model_name': __import__('os').getcwd()}")
  with pytest.raises(UserError, match=r'config.json is not valid JSON \(line 1, '
                                      r'column 2'):
    config.load(str(model_dir))


def _photo_folder(root):
  rng = np.random.RandomState(0)
  for name in ('cats', 'dogs'):
    (root / name).mkdir(parents=True)
    for i in range(3):
      (root / name / ('%d.png' % i)).write_bytes(
          tf.io.encode_png(rng.randint(0, 255, (8, 8, 3)).astype(np.uint8)).numpy())


def test_converter_refuses_symlinks_out_of_the_input_folder(tmp_path):
  photos = tmp_path / 'photos'
  _photo_folder(photos)
  outside = tmp_path / 'elsewhere'
  _photo_folder(outside)
  (photos / 'cats' / 'link.png').symlink_to(photos / 'dogs' / '0.png')  # Inside: fine.
  images_lib.convert_image_folder(str(photos), str(tmp_path / 'ok'), progress=False)

  (photos / 'birds').symlink_to(outside / 'cats')
  with pytest.raises(UserError, match='class folder .*birds is a symlink to .*'
                                      'outside --image_dir'):
    images_lib.convert_image_folder(str(photos), str(tmp_path / 'out1'),
                                    progress=False)
  (photos / 'birds').unlink()
  (photos / 'dogs' / 'secret.png').symlink_to(outside / 'dogs' / '1.png')
  with pytest.raises(UserError, match='image .*secret.png is a symlink to .*outside'):
    images_lib.convert_image_folder(str(photos), str(tmp_path / 'out2'),
                                    progress=False)
  for name in ('../x', '..', 'a/b'):
    with pytest.raises(UserError, match='not a plain folder name'):
      images_lib.check_class_name(name, str(photos))


def test_converter_writes_only_inside_output_dir(tmp_path):
  photos = tmp_path / 'photos'
  _photo_folder(photos)
  victim = tmp_path / 'victim.txt'
  victim.write_text('precious')
  out = tmp_path / 'out'
  out.mkdir()
  # A planted symlink at the name the converter writes first must not be followed.
  (out / 'train-00000-of-00001.tfrecord.tmp').symlink_to(victim)
  (out / 'labels.txt.tmp').symlink_to(victim)
  before = {p for p in tmp_path.rglob('*') if out not in p.parents and p != out}
  images_lib.convert_image_folder(str(photos), str(out), num_shards=1,
                                  validation_fraction=0, progress=False)
  after = {p for p in tmp_path.rglob('*') if out not in p.parents and p != out}
  assert after == before and victim.read_text() == 'precious'
  assert sorted(os.listdir(out)) == ['labels.txt', 'train-00000-of-00001.tfrecord']


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(bad_data, tmp_path):
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  # Room for one cifarnet checkpoint (weights + momentum, ~14 MB) and what preflight
  # asks for (~21 MB), not for two checkpoints at once.
  if not _mount(['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs'], model_dir):
    pytest.skip('cannot mount a tmpfs here (needs root)')
  try:
    (model_dir / 'keep.txt').write_text('a user file')
    proc = run_cli(_train_cmd(model_dir, bad_data / 'data', '--num_steps=6',
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
    _umount(model_dir)


def test_run_killed_before_its_final_export_finishes_it(bad_data, tmp_path, capfd):
  data = bad_data / 'data'
  cfg = _config(data, tmp_path / 'run',
                eval_record_path=str(data / 'validation-*.tfrecord'))
  train_lib.run(cfg)
  final_dir = tmp_path / 'run' / 'export' / 'final'
  # What a SIGKILL between the last checkpoint and the final export leaves behind.
  for version in os.listdir(final_dir):
    os.rename(final_dir / version, final_dir / ('temp-%s' % version))
  capfd.readouterr()
  result = train_lib.run(cfg)
  err = capfd.readouterr().err
  assert 'stopped before the final evaluation and export: doing those now' in err
  assert 'Removed what a killed run left half-written: export/final/temp-' in err
  assert os.listdir(final_dir) == [os.path.basename(result.exports['final'])]
  assert safety.export_step(result.exports['final']) == cfg.num_steps
  assert result.eval_metrics['global_step'] == cfg.num_steps
  # A third run has nothing left to do: one line, success (see test_train's resume).
  assert 'already holds step 10' in train_lib.run(cfg).finished
