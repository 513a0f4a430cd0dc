r"""Starts a whole TF_CONFIG cluster as processes on this machine, and stops all of it.

The library behind `python -m estimator_pipeline.launch_local` (launch_local.py maps
its flags onto `launch`):

  python -m estimator_pipeline.launch_local --num_workers=2 --num_ps=1 --evaluator -- \
      --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet \
      --distribution=parameter_server --num_steps=200

Everything after `--` goes to every task's `python train.py`. Each task gets a free
127.0.0.1 port and its own TF_CONFIG (the first worker is the `chief` task, as
TensorFlow's convention has it; the evaluator is listed as `evaluator`), runs in its
own process group, and prints through here with a `[worker:0]` prefix; a copy of each
task's output goes to `<model_dir>/logs/<task>.log` (or --log_dir).

It is the way to try a cluster before renting one: the same train.py, the same
TF_CONFIG a real cluster gets (see BUILD.md, "Several machines"), only the hosts differ.

The launcher ends the cluster itself: once the chief, the workers and the evaluator
have finished, it stops the ps tasks and exits 0. If any task dies first, or on Ctrl-C
or SIGTERM, it stops every task and exits non-zero, naming the task. Stopping is
bounded however loaded the machine is: SIGINT to each task's process group, SIGTERM to
what is left after --grace_secs, SIGKILL after as long again (naming the tasks that
needed it). A launcher that is itself killed takes its tasks with it: each task gets
SIGKILL from the kernel when the launcher dies (prctl PR_SET_PDEATHSIG; a watchdog
thread on the launcher's pid where that does not exist).
"""

import dataclasses
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import lock as lock_lib
from estimator_pipeline.train import processes

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SCRIPT = os.path.join(REPO, 'train.py')
DEFAULT_GRACE_SECS = 10.0
HOST = '127.0.0.1'
_POLL_SECS = 0.2
_KILL_WAIT_SECS = 10.0  # For the kernel to end what SIGKILL hit.


@dataclasses.dataclass
class TaskProcess:
  type: str
  index: int
  tf_config: str
  process: Optional[subprocess.Popen] = None
  log_path: Optional[str] = None
  pump: Optional[threading.Thread] = None
  last_error: str = ''

  @property
  def name(self):
    return '%s:%d' % (self.type, self.index)


def free_ports(count, host=HOST):
  """`count` distinct ports that were free a moment ago (all held open at once)."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind((host, 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def make_cluster(num_workers, num_ps, evaluator, ports=None, host=HOST):
  """The TF_CONFIG cluster: {'chief': [...], 'worker': [...], 'ps': [...], ...}."""
  if num_workers < 1:
    raise UserError('--num_workers=%d must be at least 1 (the chief).' % num_workers)
  if num_ps < 0:
    raise UserError('--num_ps=%d must be >= 0.' % num_ps)
  count = num_workers + num_ps + int(evaluator)
  ports = list(ports) if ports is not None else free_ports(count, host)
  addresses = ['%s:%d' % (host, p) for p in ports]
  cluster = {'chief': [addresses.pop(0)]}
  if num_workers > 1:
    cluster['worker'] = [addresses.pop(0) for _ in range(num_workers - 1)]
  if num_ps:
    cluster['ps'] = [addresses.pop(0) for _ in range(num_ps)]
  if evaluator:
    # Not part of the training cluster for TensorFlow; listed so the chief knows an
    # evaluator writes the exports.
    cluster['evaluator'] = [addresses.pop(0)]
  return cluster


def task_configs(cluster):
  """[(type, index, TF_CONFIG json)] for every task, ps first so they listen first."""
  tasks = []
  for job in ('ps', 'chief', 'worker', 'evaluator'):
    for index in range(len(cluster.get(job, []))):
      tasks.append((job, index, json.dumps(
          {'cluster': cluster, 'task': {'type': job, 'index': index}})))
  return tasks


def _flag_value(args, name):
  value = None
  for i, arg in enumerate(args):
    if arg.startswith('--%s=' % name):
      value = arg.split('=', 1)[1]
    elif arg == '--%s' % name and i + 1 < len(args):
      value = args[i + 1]
  return value


def default_log_dir(train_args):
  model_dir = _flag_value(train_args, 'model_dir')
  if not model_dir or '://' in model_dir:
    return None  # Remote storage: the console copy is all there is.
  return os.path.join(model_dir, 'logs')


def _describe_status(code):
  if code is None:
    return 'is still running'
  if code < 0:
    try:
      return 'was killed by %s' % signal.Signals(-code).name
    except ValueError:
      return 'was killed by signal %d' % -code
  return 'exited with status %d' % code


class Cluster:
  """Local processes of one cluster; `run()` returns the launcher's exit status."""

  def __init__(self, command, cluster, log_dir=None, grace_secs=DEFAULT_GRACE_SECS,
               out=None, env=None):
    self._command = list(command)
    self._cluster = cluster
    self._log_dir = log_dir
    self._grace = grace_secs
    self._out = out or sys.stderr
    self._env = dict(os.environ if env is None else env)
    self._lock = threading.Lock()
    self._requests = processes.StopRequests()
    self.tasks = [TaskProcess(t, i, c) for t, i, c in task_configs(cluster)]

  def say(self, line):
    with self._lock:
      try:
        self._out.write(line + '\n')
        self._out.flush()
      except (OSError, ValueError):
        pass  # Nobody reads the console any more; the log files still get it.

  def _pump(self, task):
    log = open(task.log_path, 'a') if task.log_path else None
    try:
      for line in task.process.stdout:
        line = line.rstrip('\n')
        if line.startswith('error:'):
          task.last_error = line
        self.say('[%s] %s' % (task.name, line))
        if log:
          log.write(line + '\n')
          log.flush()
    finally:
      if log:
        log.close()

  def start(self):
    if self._log_dir:
      os.makedirs(self._log_dir, exist_ok=True)
    preexec = processes.dies_with(os.getpid())
    for task in self.tasks:
      if self._requests.signals:
        break  # Ctrl-C while starting: start no more.
      env = dict(self._env, TF_CONFIG=task.tf_config, PYTHONUNBUFFERED='1')
      env[processes.LAUNCHER_PID_ENV] = str(os.getpid())
      if self._log_dir:
        task.log_path = os.path.join(self._log_dir, '%s-%d.log' % (task.type, task.index))
      # A process group per task: stopping it stops whatever the task started too,
      # and a Ctrl-C in the terminal reaches only the launcher, which stops the rest.
      task.process = subprocess.Popen(
          self._command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
          stdin=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True,
          preexec_fn=preexec)
    # The pumps start after every fork: preexec_fn runs in the child of a fork, which
    # is only safe while this process has no other thread.
    for task in self.tasks:
      if task.process:
        task.pump = threading.Thread(target=self._pump, args=(task,), daemon=True)
        task.pump.start()
    self.say('launch_local: started %s; cluster %s' % (
        ', '.join('%s (pid %d)' % (t.name, t.process.pid) for t in self.tasks
                  if t.process), json.dumps(self._cluster)))

  @property
  def pids(self):
    return [t.process.pid for t in self.tasks if t.process]

  def wait(self):
    """Waits until the job is done, a task fails or a stop signal comes.

    Returns the failed task, or None (done, or asked to stop: see self._requests).
    A ps task that ends by itself with status 0 has seen the job finish (strategies
    .serve) and is no failure.
    """
    finishing = [t for t in self.tasks if t.type != 'ps']
    while not self._requests.signals:
      for task in self.tasks:
        code = task.process.poll()
        if code is not None and code != 0:
          return task
      if all(t.process.poll() == 0 for t in finishing):
        return None
      time.sleep(_POLL_SECS)
    return None

  def stop(self):
    """Stops every task's process group and returns the tasks that needed SIGKILL.

    SIGINT to the chief, workers and evaluator first (the ps tasks they talk to keep
    serving, so a step in flight ends cleanly); after the grace time SIGTERM to what
    is left of them and SIGINT to the ps tasks; after as long again SIGKILL to all. A
    signal that arrives meanwhile skips the waiting.
    """
    started = [t for t in self.tasks if t.process]
    asked = len(self._requests.signals)
    needed_kill = []
    for others, ps, wait in ((signal.SIGINT, None, self._grace),
                             (signal.SIGTERM, signal.SIGINT, self._grace),
                             (signal.SIGKILL, signal.SIGKILL, _KILL_WAIT_SECS)):
      targets = [(t, ps if t.type == 'ps' else others) for t in started
                 if processes.group_alive(t.process)]
      targets = [(t, sig) for t, sig in targets if sig is not None]
      if not targets:
        continue
      if others == signal.SIGKILL:
        needed_kill = [t for t, _ in targets]
      for task, sig in targets:
        processes.signal_group(task.process, sig)
      deadline = time.monotonic() + wait
      while (time.monotonic() < deadline and len(self._requests.signals) <= asked and
             any(processes.group_alive(t.process) for t, _ in targets)):
        time.sleep(_POLL_SECS)
    for task in started:
      if task.pump:
        task.pump.join(timeout=5)
    if needed_kill:
      self.say('launch_local: %s did not stop within %gs of SIGINT and SIGTERM; '
               'killed with SIGKILL.' % (', '.join(t.name for t in needed_kill),
                                         2 * self._grace))
    return needed_kill

  def run(self):
    """Starts, waits and stops; returns the exit status for the launcher."""
    with self._requests:
      self.start()
      failed = self.wait()
      if self._requests.signals:
        signum = self._requests.signals[0]
        self.say('launch_local: interrupted; stopping every task (%s received: '
                 'SIGINT to each task, SIGTERM after %gs, SIGKILL after %gs; %s again '
                 'skips the wait).' % (signal.Signals(signum).name, self._grace,
                                       2 * self._grace, signal.Signals(signum).name))
        self.stop()
        return 128 + int(signum)
      if failed is None:
        self.stop()  # The ps tasks, which serve until told otherwise.
        self.say('launch_local: done: %s finished%s.%s' % (
            ', '.join(t.name for t in self.tasks if t.type != 'ps'),
            '; stopped %s' % ', '.join(t.name for t in self.tasks if t.type == 'ps')
            if any(t.type == 'ps' for t in self.tasks) else '',
            ' Logs in %s.' % self._log_dir if self._log_dir else ''))
        return 0
      code = failed.process.returncode
      self.stop()
    detail = (': %s' % failed.last_error[len('error:'):].strip()
              if failed.last_error else '')
    self.say('error: task %s %s; stopped the cluster (%s).%s' % (
        failed.name, _describe_status(code),
        ', '.join(t.name for t in self.tasks if t is not failed),
        (' Its log: %s.' % failed.log_path if failed.log_path else '') +
        (' Last error%s' % detail if detail else '')))
    # A task's own usage error (status 2) stays a usage error.
    return 2 if code == 2 else 1


def launch(train_args, *, num_workers, num_ps=0, evaluator=False, log_dir=None,
           script=DEFAULT_SCRIPT, grace_secs=DEFAULT_GRACE_SECS, python=None, out=None,
           env=None):
  """Runs the cluster to its end; returns the exit status (0 when every task finished)."""
  if not os.path.exists(script):
    raise UserError('--script=%s does not exist: point it at train.py.' % script)
  if not (math.isfinite(grace_secs) and grace_secs > 0):
    raise UserError('--grace_secs=%s must be a positive number of seconds.'
                    % grace_secs)
  model_dir = _flag_value(train_args, 'model_dir')
  if model_dir and '://' not in model_dir:
    # Another trainer (a train.py, or a cluster's chief) holds it: start nothing.
    lock_lib.check_free(model_dir)
  cluster = make_cluster(num_workers, num_ps, evaluator)
  command = [python or sys.executable, script] + list(train_args)
  runner = Cluster(command, cluster,
                   log_dir=log_dir if log_dir is not None else default_log_dir(
                       train_args),
                   grace_secs=grace_secs, out=out, env=env)
  return runner.run()
