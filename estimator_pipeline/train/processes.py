r"""Process groups, parent death and stop signals: what the launcher and its tasks use
to end together.

launch_local (launcher.py) starts each task in its own process group with
`dies_with(launcher_pid)` as its preexec_fn, counts SIGINT/SIGTERM with `StopRequests`
instead of dying of them, and stops the groups with `signal_group`/`group_alive`; each
task calls `watch_launcher()` where the kernel cannot send it a parent-death signal:

  python -c "
  from estimator_pipeline.train import processes
  print(processes.dies_with(1) is not None)"   # True on Linux
"""

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

# Tells a task which process launched it (watch_launcher).
LAUNCHER_PID_ENV = 'PIPELINE_LAUNCHER_PID'
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _libc_prctl():
  """libc's prctl, or None where there is none (not Linux)."""
  if not sys.platform.startswith('linux'):
    return None
  try:
    return ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True).prctl
  except (OSError, AttributeError):
    return None


def dies_with(parent_pid):
  """A preexec_fn: the kernel sends the task SIGKILL when its launcher dies, however
  the launcher dies. None where prctl does not exist (watch_launcher covers that)."""
  prctl = _libc_prctl()
  if prctl is None:
    return None

  def preexec():
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
      os._exit(1)  # The launcher died before prctl took effect.

  return preexec


def watch_launcher(environ=None):
  """In a task launch_local started: exits when the launcher is gone.

  Where prctl already arranged that, a thread watching the parent's pid costs a
  getppid() a second; elsewhere it is the only guard. Does nothing outside launch_local.
  """
  raw = (os.environ if environ is None else environ).get(LAUNCHER_PID_ENV, '')
  if not raw.isdigit():
    return None
  launcher_pid = int(raw)

  def watch():
    while os.getppid() == launcher_pid:
      time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)

  thread = threading.Thread(target=watch, name='launcher-watchdog', daemon=True)
  thread.start()
  return thread


class StopRequests:
  """While active (main thread only), SIGINT and SIGTERM are counted, not raised."""

  def __init__(self):
    self.signals = []
    self._previous = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGINT, signal.SIGTERM):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def _handle(self, signum, frame):
    del frame
    self.signals.append(signum)


def signal_group(process, sig):
  if process is None:  # Interrupted before this task was started.
    return
  try:
    os.killpg(process.pid, sig)
  except (ProcessLookupError, PermissionError):
    pass


def group_alive(process):
  """Whether anything of a task's process group still runs (the task, or what it
  started); reaps the task itself once it has ended."""
  if process.poll() is None:
    return True
  try:
    os.killpg(process.pid, 0)
  except (ProcessLookupError, PermissionError):
    return False
  if not os.path.isdir('/proc'):
    return True
  for stat in os.listdir('/proc'):
    if not stat.isdigit():
      continue
    try:
      with open('/proc/%s/stat' % stat) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    except OSError:
      continue
    # A zombie is dead; its parent reaps it.
    if int(fields[2]) == process.pid and fields[0] != 'Z':
      return True
  return False
