"""The tests' one set-up: tiny learnable image records, a small run's Config, events.

  image records   write_image_data(folder) / the image_data fixture: train shards,
                  validation, labels.txt
  a run's Config  small_config(model_dir, train glob, ...), image_config(data, ...)
  events          read_events(folder), scalars(folder)
"""

import glob
import hashlib
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
import tensorflow as tf

from estimator_pipeline import config


def pytest_configure(config):
  # tf_slim builds its layers through TF's bundled legacy Keras layers, which warn on
  # every call; the warnings say nothing about this project.
  config.addinivalue_line('filterwarnings',
                          r'ignore::UserWarning:tensorflow\.python\.keras.*')
  config.addinivalue_line('filterwarnings', 'ignore::FutureWarning:google.*')
  config.addinivalue_line(
      'markers', 'under_load: a cluster or signal test that must hold on a busy '
      'machine; it runs with two busy-looping processes beside it (cpu_hogs).')
  config.addinivalue_line(
      'markers', 'both_kernels: trains, evaluates, exports or serves a SeqNN with '
      'dilated convolutions; make test runs it again with oneDNN off '
      '(TF_ENABLE_ONEDNN_OPTS=0), as TensorFlow runs on a CPU without AVX-512.')


def _alive(pid):
  """Whether pid is a live process (a zombie is not), read from /proc."""
  try:
    with open('/proc/%d/stat' % pid) as f:
      return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
  except OSError:
    return False


@pytest.fixture
def cpu_hogs():
  """Two busy-looping processes beside the test, for all of it; yields their pids.

  Stopped by pid when the test ends, and checked gone: a hog must not outlive it.
  """
  hogs = [subprocess.Popen([sys.executable, '-c', 'while True: pass'],
                           stdin=subprocess.DEVNULL) for _ in range(2)]
  try:
    yield [h.pid for h in hogs]
  finally:
    for hog in hogs:
      hog.kill()
      hog.wait()
  assert not [h.pid for h in hogs if _alive(h.pid)]


@pytest.fixture(autouse=True)
def _load_for_marked_tests(request):
  # Every test marked under_load gets the hogs, without naming the fixture itself.
  if request.node.get_closest_marker('under_load'):
    request.getfixturevalue('cpu_hogs')


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLORS = ((220, 40, 40), (40, 200, 40), (40, 40, 220), (220, 220, 40))


def class_image(label, size, rng):
  """A noisy image whose dominant colour is its class: learnable in a few steps."""
  base = np.array(COLORS[label % len(COLORS)], np.float32)
  noise = rng.normal(0, 25, (size, size, 3))
  return np.clip(base + noise, 0, 255).astype(np.uint8)


def image_example(encoded, label, height, width, fmt=b'png'):
  feature = {
      'image/encoded': tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
      'image/format': tf.train.Feature(bytes_list=tf.train.BytesList(value=[fmt])),
      'image/class/label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      'image/height': tf.train.Feature(int64_list=tf.train.Int64List(value=[height])),
      'image/width': tf.train.Feature(int64_list=tf.train.Int64List(value=[width])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_image_records(path, labels, size=32, seed=0, fmt='png'):
  """One TFRecord file with one image per label; returns the path."""
  rng = np.random.RandomState(seed)
  with tf.io.TFRecordWriter(path) as writer:
    for label in labels:
      pixels = class_image(label, size, rng)
      if fmt == 'png':
        encoded = tf.io.encode_png(pixels).numpy()
      else:
        encoded = tf.io.encode_jpeg(pixels, quality=95).numpy()
      writer.write(image_example(encoded, int(label), size, size,
                                 fmt.encode()).SerializeToString())
  return path


LABEL_NAMES = ('red', 'green', 'blue')


def write_image_data(folder, train=(48, 48), validation=30, names=LABEL_NAMES,
                     seed=0, validation_seed=7, train_formats=('png', 'jpeg'),
                     validation_format='png'):
  """train-0000i-of-0000n.tfrecord (one shard per count in `train`, shard i seeded
  seed + i, formats cycling through train_formats), validation-00000-of-00001.tfrecord
  (none when validation is 0) and labels.txt; labels cycle 0..K-1. Returns folder."""
  os.makedirs(str(folder), exist_ok=True)
  num_classes = len(names)
  for shard, count in enumerate(train):
    write_image_records(
        os.path.join(str(folder), 'train-%05d-of-%05d.tfrecord' % (shard, len(train))),
        [i % num_classes for i in range(count)], seed=seed + shard,
        fmt=train_formats[shard % len(train_formats)])
  if validation:
    write_image_records(os.path.join(str(folder), 'validation-00000-of-00001.tfrecord'),
                        [i % num_classes for i in range(validation)],
                        seed=validation_seed, fmt=validation_format)
  with open(os.path.join(str(folder), 'labels.txt'), 'w') as f:
    f.write(''.join('%d:%s\n' % kv for kv in enumerate(names)))
  return folder


@pytest.fixture
def image_data(tmp_path):
  """train-0000{0,1}-of-00002 and validation-00000-of-00001 records + labels.txt."""
  return write_image_data(tmp_path / 'data')


def small_config(model_dir, train_record_path, eval_record_path='', **overrides):
  """The Config of a small, fast run: cifarnet's defaults, every field overridable."""
  values = dict(model_dir=str(model_dir), train_record_path=str(train_record_path),
                eval_record_path=str(eval_record_path), model_name='cifarnet',
                num_steps=30, batch_size=16, save_checkpoints_steps=15,
                log_every_steps=10, learning_rate=0.02, random_flip=False)
  values.update(overrides)
  return config.Config(**values)


def image_config(data, model_dir, evaluate=True, **overrides):
  """small_config over write_image_data's folder (its validation records unless
  evaluate=False or eval_record_path is given)."""
  paths = dict(train_record_path=os.path.join(str(data), 'train-*.tfrecord'),
               eval_record_path=os.path.join(str(data), 'validation-*.tfrecord')
               if evaluate else '')
  paths.update({k: overrides.pop(k) for k in list(paths) if k in overrides})
  return small_config(model_dir, **paths, **overrides)


def read_events(event_dir):
  """[(step, tag, tf.compat.v1.Summary.Value)] of every events file in event_dir."""
  found = []
  for path in sorted(glob.glob(os.path.join(str(event_dir), 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      found.extend((event.step, value.tag, value) for value in event.summary.value)
  return found


def scalars(event_dir):
  """{tag: {step: value}} of the scalar summaries in event_dir."""
  values = {}
  for step, tag, value in read_events(event_dir):
    if value.HasField('simple_value'):
      values.setdefault(tag, {})[step] = value.simple_value
  return values


_RUNNER = []  # The cli_runner.Runner of this session, once started (or None).
# Tests start commands from several threads at once (the bad-input catalogue).
_RUNNER_LOCK = threading.Lock()


def _command_runner(env):
  """The session's command runner, when it can run a command with env; else None.

  TESTS_FORK_COMMANDS=0 runs every command as a plain subprocess instead.
  """
  if os.environ.get('TESTS_FORK_COMMANDS', '1') == '0':
    return None
  with _RUNNER_LOCK:
    if not _RUNNER:
      import cli_runner  # pylint: disable=g-import-not-at-top
      _RUNNER.append(cli_runner.Runner.start(REPO, env))
  runner = _RUNNER[0]
  if runner is None or not runner.alive():
    return None
  import cli_runner  # pylint: disable=g-import-not-at-top
  if any(env.get(name) != runner.env.get(name)
         for name in cli_runner.IMPORT_TIME_VARIABLES):
    return None
  return runner


def pytest_sessionfinish(session, exitstatus):
  del session, exitstatus
  for runner in _RUNNER:
    if runner is not None:
      runner.stop()


def _cli_env():
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')


def run_cli(args, cwd=REPO, timeout=600):
  """Runs a project command-line entry point (`python *args`) in a process of its
  own; returns the CompletedProcess. Forked from the session's cli_runner server,
  which has TensorFlow imported already, where it can be."""
  env = _cli_env()
  runner = _command_runner(env)
  if runner is not None:
    return runner.run(args, cwd, env, timeout)
  return subprocess.run([sys.executable] + list(args), cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=timeout)


def start_cli(args, log_path, cwd=REPO):
  """Starts `python *args` in a process of its own, its stdout and stderr both in
  the file log_path; returns a subprocess.Popen or a cli_runner.Process (the same
  pid, poll, wait, send_signal, kill), for tests that watch or signal a command."""
  env = _cli_env()
  runner = _command_runner(env)
  if runner is not None:
    open(log_path, 'w').close()  # There at once, as with Popen: tests read it.
    return runner.start_command(args, cwd, env, str(log_path))
  with open(log_path, 'w') as log:
    return subprocess.Popen([sys.executable] + list(args), cwd=cwd, env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def tree_digest(directory):
  """Hash of every path and file's bytes under directory (what 'unchanged' means)."""
  digest = hashlib.sha256()
  for root, dirs, files in sorted(os.walk(directory)):
    dirs.sort()
    for name in sorted(files) + ['<dir>%s' % d for d in dirs]:
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, directory).encode())
      if not name.startswith('<dir>'):
        with open(path, 'rb') as f:
          digest.update(f.read())
  return digest.hexdigest()


@pytest.fixture(scope='session')
def bad_data(tmp_path_factory):
  """Good image records (data/), one file per kind of bad data (bad/) and a foreign
  checkpoint (lenet.ckpt): reliability_support.write_bad_data."""
  import reliability_support  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('bad_data')
  reliability_support.write_bad_data(root)
  return root


@pytest.fixture(scope='session')
def serving_run(tmp_path_factory):
  """One tiny cifarnet run and an export per serving input: served_model.py."""
  import served_model  # pylint: disable=g-import-not-at-top
  return served_model.train_and_export(tmp_path_factory.mktemp('serving'))
