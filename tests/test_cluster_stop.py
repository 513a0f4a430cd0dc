"""A cluster stops as a whole, however busy the machine: Ctrl-C reaches every task of
launch_local within a bounded time; a launcher killed with SIGKILL takes its tasks
with it; a ps task started by hand ends by itself when its chief is done or gone; the
chief's model_dir lock keeps other clusters and trainers out, and launch_local refuses
a model_dir another run trains. Tests marked under_load run beside two busy loops.

  .venv/bin/python -m pytest -q tests/test_cluster_stop.py
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

import cluster_support as support
from conftest import REPO
from conftest import write_image_data

from estimator_pipeline.train import launcher
from estimator_pipeline.train import lock as lock_lib


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return write_image_data(tmp_path_factory.mktemp('cluster_stop_data'),
                          train_formats=('png',), validation_seed=9)


@pytest.mark.under_load
def test_ctrl_c_stops_every_task(data, tmp_path):
  grace = 5
  proc = support.launcher(
      ['--num_workers=1', '--num_ps=1', '--grace_secs=%d' % grace],
      support.train_flags(data, str(tmp_path / 'run'), **support.UNTIL_STOPPED,
                          distribution='parameter_server'))
  lines, pids = [], {}
  try:
    pids = support.task_pids(support.read_until(proc, r'^launch_local: started', lines))
    support.read_until(proc, r'^\[ps:0\] ps:0: serving variables', lines)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, _ = proc.communicate(timeout=300)
    took = time.monotonic() - sent
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
    support.kill_groups(pids.values())
  assert proc.returncode == 130, (''.join(lines) + out)[-3000:]
  assert 'interrupted; stopping every task' in out
  # Bounded however busy the machine: SIGINT, SIGTERM after the grace, SIGKILL after
  # as long again, then the kernel's part (10 s at most), and the launcher's polling.
  assert took < 2 * grace + 10 + 30, (took, out[-3000:])
  support.assert_no_process_left(pids)


@pytest.mark.under_load
def test_killed_launcher_takes_every_task_with_it(data, tmp_path):
  proc = support.launcher(
      ['--num_workers=1', '--num_ps=1'],
      support.train_flags(data, str(tmp_path / 'run'), **support.UNTIL_STOPPED,
                          distribution='parameter_server'))
  lines, pids = [], {}
  try:
    pids = support.task_pids(support.read_until(proc, r'^launch_local: started', lines))
    support.read_until(proc, r'^\[chief:0\] step \d+', lines)  # Training on the ps.
    os.kill(proc.pid, signal.SIGKILL)  # No handler runs: the launcher just vanishes.
    proc.wait()
    support.wait_for(lambda: not support.alive_in_groups(set(pids.values())),
                     'the tasks of the killed launcher (%s) to exit by themselves'
                     % pids, timeout=120)
    # Orphans: the init process reaps them.
    support.wait_for(lambda: not any(os.path.exists('/proc/%d' % pid)
                                     for pid in pids.values()),
                     'the exited tasks %s to be reaped' % pids, timeout=120)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
    support.kill_groups(pids.values())
  support.assert_no_process_left(pids)


def _ps_flags(data, model_dir, **kw):
  # No evaluation: the chief only trains and writes export/final.
  return support.train_flags(data, model_dir, distribution='parameter_server',
                             eval_record_path='', **kw)


@pytest.mark.under_load
def test_ps_task_ends_when_its_chief_is_done_or_gone(data, tmp_path):
  model_dir = str(tmp_path / 'run')
  logs = {name: str(tmp_path / ('%s.log' % name))
          for name in ('ps-a', 'chief-a', 'ps-b', 'chief-b', 'other', 'single')}
  started = []
  try:
    # Done: the chief trains to --num_steps and exits; its ps sees that and ends.
    cluster = launcher.make_cluster(1, 1, False)
    flags = _ps_flags(data, model_dir, num_steps=10, save_checkpoints_steps=10)
    ps = support.start_task(cluster, 'ps', flags, logs['ps-a'])
    chief = support.start_task(cluster, 'chief', flags, logs['chief-a'])
    started += [ps, chief]
    assert chief.wait(timeout=900) == 0, support.read(logs['chief-a'])[-3000:]
    support.wait_for(lambda: ps.poll() is not None,
                     'ps:0 to stop serving once its chief finished', timeout=120)
    assert ps.returncode == 0, support.read(logs['ps-a'])[-3000:]
    assert re.search(r'ps:0: the chief and the workers have finished \(step 1\d of '
                     r'--num_steps=10\): stopped serving', support.read(logs['ps-a']))

    # Gone: the chief of a longer job is killed; the ps gives up --ps_timeout_secs
    # later. Started once the chief listens, so its wait counts from a live chief.
    cluster = launcher.make_cluster(1, 1, False)
    flags = _ps_flags(data, model_dir, **support.UNTIL_STOPPED,
                      save_checkpoints_steps=100000, ps_timeout_secs=5)
    chief = support.start_task(cluster, 'chief', flags, logs['chief-b'])
    started.append(chief)
    support.wait_for(lambda: (support.answers(cluster['chief'][0]) or
                              chief.poll() is not None),
                     'the resumed chief to listen at %s' % cluster['chief'][0])
    ps = support.start_task(cluster, 'ps', flags, logs['ps-b'])
    started.append(ps)
    support.wait_for(lambda: (re.search(r'step \d+/100000',
                                        support.read(logs['chief-b'])) or
                              chief.poll() is not None),
                     'the resumed chief to train against the ps')
    assert chief.poll() is None, support.read(logs['chief-b'])[-3000:]
    _check_the_chief_holds_the_lock(model_dir, cluster, chief.pid, data, logs)
    os.kill(chief.pid, signal.SIGKILL)
    support.wait_for(lambda: ps.poll() is not None,
                     'ps:0 to stop serving 5 s after its chief was killed',
                     timeout=120)
    assert ps.returncode == 2, support.read(logs['ps-b'])[-3000:]
    assert ('ps:0: no chief or worker of the cluster (%s) has answered for 5 s '
            '(--ps_timeout_secs)' % cluster['chief'][0]) in support.read(logs['ps-b'])
  finally:
    support.stop_all(started)
  support.assert_no_process_left({str(p.pid): p.pid for p in started})


def _check_the_chief_holds_the_lock(model_dir, cluster, chief_pid, data, logs):
  """While the chief trains: its lock names its cluster, and neither a worker of
  another cluster nor a single train.py joins its model_dir."""
  with open(os.path.join(model_dir, lock_lib.LOCK_FILE)) as f:
    held = json.load(f)
  assert held['pid'] == chief_pid and held['cluster'] == cluster, held
  flags = _ps_flags(data, model_dir, **support.UNTIL_STOPPED)
  worker = support.start_task(launcher.make_cluster(2, 1, False), 'worker', flags,
                              logs['other'])
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('TF_CONFIG', None)
  with open(logs['single'], 'w') as log:
    single = subprocess.Popen(
        [sys.executable, 'train.py'] + support.train_flags(data, model_dir,
                                                           **support.UNTIL_STOPPED),
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)
  try:
    for name, proc in (('other', worker), ('single', single)):
      assert proc.wait(timeout=600) == 2, support.read(logs[name])[-3000:]
      assert 'is being trained by pid %d' % chief_pid in support.read(logs[name])
  finally:
    support.stop_all([worker, single])


def test_launch_local_refuses_a_model_dir_another_run_trains(tmp_path):
  model_dir = str(tmp_path / 'run')
  with lock_lib.ModelDirLock(model_dir):
    proc = support.launcher(['--num_workers=1', '--num_ps=1'],
                            ['--model_dir=%s' % model_dir, '--train_record_path=x'])
    out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 2, out[-3000:]
  assert 'is being trained by pid %d' % os.getpid() in out
  assert 'launch_local: started' not in out and 'Traceback' not in out


# A stand-in for train.py (launch_local --script): the chief ignores SIGINT and
# SIGTERM and has started a child that does too; the worker ends on SIGTERM only.
_STUBBORN = '''
import json, os, signal, subprocess, sys, time
task = json.loads(os.environ['TF_CONFIG'])['task']['type']
signal.signal(signal.SIGINT, signal.SIG_IGN)
if task == 'chief':
  signal.signal(signal.SIGTERM, signal.SIG_IGN)
  child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)'])
  print('child', child.pid, flush=True)
print('ready', flush=True)
while True:
  time.sleep(1)
'''


def _seen_or_next(proc, pattern, lines):
  """The line matching pattern: already read (the tasks' output can come before the
  launcher's own 'started' line), or the next one that does."""
  for line in lines:
    if re.search(pattern, line):
      return line
  return support.read_until(proc, pattern, lines)


@pytest.mark.under_load
def test_stop_escalates_to_sigkill_and_names_the_task(tmp_path):
  script = tmp_path / 'stubborn.py'
  script.write_text(_STUBBORN)
  proc = support.launcher(['--num_workers=2', '--grace_secs=1', '--script=%s' % script,
                           '--log_dir=%s' % (tmp_path / 'logs')], ['--unused'])
  lines, pids = [], {}
  try:
    pids = support.task_pids(support.read_until(proc, r'^launch_local: started', lines))
    child = int(_seen_or_next(proc, r'^\[chief:0\] child \d+', lines).split()[-1])
    group = os.getpgid(child)
    _seen_or_next(proc, r'^\[worker:0\] ready', lines)
    _seen_or_next(proc, r'^\[chief:0\] ready', lines)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
    support.kill_groups(pids.values())
  out = ''.join(lines) + out
  assert proc.returncode == 130, out[-3000:]
  # The worker ended on SIGTERM; the chief and its child needed SIGKILL.
  assert ('launch_local: chief:0 did not stop within 2s of SIGINT and SIGTERM; '
          'killed with SIGKILL.') in out, out[-3000:]
  # The chief's child is gone with it: it was in the chief's process group.
  assert group == pids['chief:0']
  support.assert_no_process_left(pids)
