"""What the cluster tests share: launch_local and single tasks as real processes, their
pids and process groups, and waits that name what they wait for.

  .venv/bin/python -m pytest -q tests/test_cluster.py tests/test_cluster_stop.py
"""

import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO


# A job that runs until the test stops it: a rate that cannot diverge in the minutes a
# busy machine may give it (at 0.02 cifarnet's loss turns NaN after ~80 steps, which
# would end the job before the test does).
UNTIL_STOPPED = dict(num_steps=100000, learning_rate=0.002)


def train_flags(data, model_dir, **kw):
  values = dict(model_dir=model_dir, train_record_path=str(data / 'train-*.tfrecord'),
                eval_record_path=str(data / 'validation-*.tfrecord'),
                model_name='cifarnet', num_steps=30, batch_size=16,
                save_checkpoints_steps=15, log_every_steps=10, learning_rate=0.02,
                random_flip='false')
  values.update(kw)
  return ['--%s=%s' % kv for kv in values.items()]


def launcher(launch_flags, train_flags):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('TF_CONFIG', None)
  return subprocess.Popen(
      [sys.executable, '-m', 'estimator_pipeline.launch_local'] + launch_flags +
      ['--'] + train_flags, cwd=REPO, env=env, stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True, start_new_session=True)


def task_pids(line):
  return {name: int(pid) for name, pid in re.findall(r'(\w+:\d+) \(pid (\d+)\)', line)}


def alive_in_groups(pgids):
  """Processes still alive in any of these process groups (the tasks and children)."""
  alive = []
  for stat in glob.glob('/proc/[0-9]*/stat'):
    try:
      with open(stat) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
      continue
    state, pgrp = fields[0], int(fields[2])
    if pgrp in pgids and state != 'Z':
      alive.append(int(stat.split('/')[2]))
  return alive


def assert_no_process_left(pids):
  for pid in pids.values():
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)
  assert not alive_in_groups(set(pids.values()))


def kill_groups(pids):
  """Clean-up after a failed test: nothing it started may outlive it."""
  for pid in pids:
    try:
      os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
      pass


def stop_all(procs):
  """Kills the process groups of these Popens (what is left of them) and reaps them."""
  kill_groups([p.pid for p in procs])
  for proc in procs:
    proc.wait()


def wait_for(predicate, what, timeout=600, poll=0.1):
  """predicate()'s first true value; gives up after a generous ceiling, naming what it
  waited for."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = predicate()
    if value:
      return value
    time.sleep(poll)
  raise AssertionError('gave up after %d s waiting for %s' % (timeout, what))


def read_until(proc, pattern, lines, timeout=600):
  deadline = time.time() + timeout
  for line in proc.stdout:
    lines.append(line)
    if re.search(pattern, line):
      return line
    if time.time() > deadline:
      break
  raise AssertionError('no %r in:\n%s' % (pattern, ''.join(lines[-50:])))


def answers(address):
  host, port = address.rsplit(':', 1)
  try:
    with socket.create_connection((host, int(port)), timeout=2):
      return True
  except OSError:
    return False


def start_task(cluster, job, train_flags, log_path, index=0):
  """One task of a cluster as a real host would run it: train.py and TF_CONFIG, no
  launcher."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_CONFIG=json.dumps(
      {'cluster': cluster, 'task': {'type': job, 'index': index}}))
  env.pop('PIPELINE_LAUNCHER_PID', None)  # This test is no task of a launcher.
  with open(log_path, 'w') as log:
    return subprocess.Popen([sys.executable, 'train.py'] + train_flags, cwd=REPO,
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def read(path):
  with open(path) as f:
    return f.read()
