"""One model_dir, one trainer: an advisory lock file in model_dir.

Two trainers writing the same checkpoints, events and exports interleave them into
something neither can resume from. `train.py` (and a cluster's chief) holds
`model_dir/train.lock` while it runs; a second `train.py`, a second cluster, or
`launch_local` on the same model_dir stops before writing anything:

  python train.py --model_dir=runs/x ...   # while another train.py trains runs/x
  # error: --model_dir=runs/x is being trained by pid 4242 on host gpu-1 since ...

The lock is fcntl.flock on that file, so the kernel drops it when its process dies,
however it dies (SIGKILL, OOM killer, power loss of a local disk): a lock left by a
killed run is stale by construction and the next run takes it over. The file's text
(pid, host, start time, and the TF_CONFIG cluster of a cluster's chief) names the
holder; the other tasks of that cluster read it to know the lock is their chief's.

Some file systems do not honour flock (NFS without lockd, some FUSE mounts): the call
fails, or succeeds for everyone. The lock finds out when it is taken (a second process
tries to take it too) and then falls back to the file's text alone: a heartbeat the
holder rewrites every few seconds. A lock whose process is gone (same host) or whose
heartbeat stopped (STALE_SECS) is taken over with a message.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

LOCK_FILE = 'train.lock'
HEARTBEAT_SECS = 5.0
STALE_SECS = 60.0  # A heartbeat older than this is a dead holder's.
_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
# flock itself refused: no lock manager (NFS without lockd), or not offered at all.
_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_ACQUIRE_RETRY_SECS = 2.0  # Other tasks' probes hold a shared lock for microseconds.
# Run by a second process: exit 0 if the lock held here stops it, 3 if it does not.
_PROBE = ('import fcntl, os, sys\n'
          'fd = os.open(sys.argv[1], os.O_RDONLY)\n'
          'try:\n'
          '  fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)\n'
          'except OSError:\n'
          '  sys.exit(0)\n'
          'sys.exit(3)\n')


class FlockUnsupported(Exception):
  """flock failed with an error that means it is not offered on this file system."""


def _read(path):
  try:
    with open(path) as f:
      info = json.loads(f.read() or '{}')
  except (OSError, ValueError):
    return {}
  return info if isinstance(info, dict) else {}


def _holder_text(info):
  if 'pid' not in info:
    return 'another process'
  return 'pid %s on host %s since %s' % (info.get('pid'), info.get('host', '?'),
                                         info.get('started', '?'))


def _busy_error(model_dir, path, info):
  return UserError('--model_dir=%s is being trained by %s (lock %s): wait for that run '
                   'to finish or stop it, or pass another --model_dir.'
                   % (model_dir, _holder_text(info), path))


def _flock(fd, operation):
  """True if taken, False if another holds it; FlockUnsupported if not offered."""
  try:
    fcntl.flock(fd, operation | fcntl.LOCK_NB)
    return True
  except OSError as e:
    if e.errno in _BUSY:
      return False
    if e.errno in _UNSUPPORTED:
      raise FlockUnsupported(os.strerror(e.errno)) from None
    raise


def _pid_alive(pid):
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError, TypeError):
    return True
  return True


def stale_reason(info, now=None):
  """Why a heartbeat lock's holder is gone, or None while it may still run."""
  if 'pid' not in info:
    return None
  if info.get('host') == socket.gethostname():
    return None if _pid_alive(info['pid']) else 'its process is gone'
  beat = info.get('heartbeat')
  if not isinstance(beat, (int, float)):
    return 'it has no heartbeat'
  age = (time.time() if now is None else now) - beat
  return 'no heartbeat for %.0f s' % age if age > STALE_SECS else None


def _live_heartbeat(info):
  return 'heartbeat' in info and stale_reason(info) is None


def _held_by(model_dir):
  """The lock file's text if a live process holds it, else None. Writes nothing."""
  path = os.path.join(model_dir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return None  # No lock file (or no model_dir): nobody trains here.
  try:
    free = _flock(fd, fcntl.LOCK_SH)
  except FlockUnsupported:
    free = True  # The heartbeat below is all there is.
  finally:
    os.close(fd)  # Closing drops the probe's lock too.
  info = _read(path)
  if not free or _live_heartbeat(info):
    return info
  return None


def check_free(model_dir):
  """Raises UserError if a live process holds model_dir's lock. Writes nothing."""
  info = _held_by(model_dir)
  if info is not None:
    raise _busy_error(model_dir, os.path.join(model_dir, LOCK_FILE), info)


def check_cluster(model_dir, cluster):
  """For a cluster's other tasks: refuses a model_dir held by anything but this
  cluster's chief (another train.py, or another cluster's chief)."""
  deadline = time.monotonic() + _ACQUIRE_RETRY_SECS
  info = _held_by(model_dir)
  while info is not None and 'pid' not in info and time.monotonic() < deadline:
    time.sleep(0.05)  # Held, its text not written yet: the holder is starting.
    info = _held_by(model_dir)
  if info is not None and info.get('cluster') != cluster:
    raise _busy_error(model_dir, os.path.join(model_dir, LOCK_FILE), info)


def flock_honoured(path):
  """Whether a second process is kept out of the flock this process holds on path."""
  try:
    code = subprocess.run([sys.executable, '-S', '-c', _PROBE, path],
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60).returncode
  except (OSError, subprocess.TimeoutExpired):
    return True  # No answer is no evidence against it.
  return code != 3


class ModelDirLock:
  """Holds model_dir/train.lock from acquire() until release() (or process death).

  cluster: the TF_CONFIG cluster of a chief, written into the lock so the other
  tasks of that cluster know the lock is their chief's (check_cluster).
  """

  def __init__(self, model_dir, cluster=None):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_FILE)
    self.took_over = None  # The holder text of a stale lock this run replaced.
    self.note = None  # Why the heartbeat lock is used, for the console.
    self._info = {'pid': os.getpid(), 'host': socket.gethostname(),
                  'started': datetime.datetime.now().astimezone().isoformat(
                      timespec='seconds')}
    if cluster:
      self._info['cluster'] = cluster
    self._fd = None
    self._token = None
    self._stop = threading.Event()
    self._beat = None

  def acquire(self):
    try:
      os.makedirs(self.model_dir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserError('cannot write to --model_dir=%s (%s): pass a directory you can '
                      'write to.' % (self.model_dir, e.strerror or e))
    try:
      got = self._take_flock(fd)
    except FlockUnsupported as e:
      os.close(fd)
      return self._acquire_heartbeat('flock fails there: %s' % e)
    info = _read(self.path)
    if not got or _live_heartbeat(info):
      os.close(fd)
      raise _busy_error(self.model_dir, self.path, info)
    if info:
      # The previous holder died without cleaning up: its lock went with it.
      self.took_over = _holder_text(info)
    try:
      # At once: the other tasks of a cluster read it to recognize their chief.
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps(self._info) + '\n').encode(), 0)
    except OSError as e:
      os.close(fd)
      raise UserError('cannot write to --model_dir=%s (%s): free some space or pass '
                      'another --model_dir.' % (self.model_dir, e.strerror or e))
    if not flock_honoured(self.path):
      os.close(fd)
      return self._acquire_heartbeat('flock does not keep a second process out there',
                                     previous=info)
    self._fd = fd
    return self

  @staticmethod
  def _take_flock(fd):
    deadline = time.monotonic() + _ACQUIRE_RETRY_SECS
    while not _flock(fd, fcntl.LOCK_EX):
      if time.monotonic() > deadline:
        return False
      time.sleep(0.05)
    return True

  def _write_heartbeat(self):
    files.atomic_write(self.path, json.dumps(dict(
        self._info, heartbeat=time.time(), token=self._token)) + '\n')

  def _acquire_heartbeat(self, why, previous=None):
    info = _read(self.path) if previous is None else previous
    self.took_over = None
    if 'pid' in info:
      reason = stale_reason(info)
      if reason is None:
        raise _busy_error(self.model_dir, self.path, info)
      self.took_over = '%s; %s' % (_holder_text(info), reason)
    self._token = uuid.uuid4().hex
    self._write_heartbeat()
    # Two runs that took a stale lock at once: the last write wins, and both see it.
    time.sleep(0.5)
    mine = _read(self.path)
    if mine.get('token') != self._token:
      self._token = None
      raise _busy_error(self.model_dir, self.path, mine)
    self.note = ('the file system of --model_dir=%s does not honour flock (%s): '
                 'holding %s with a heartbeat every %.0f s instead; a run that dies '
                 'leaves it to be taken over once its process is gone or %.0f s have '
                 'passed without a heartbeat.' % (self.model_dir, why, self.path,
                                                  HEARTBEAT_SECS, STALE_SECS))
    self._beat = threading.Thread(target=self._heartbeat, name='lock-heartbeat',
                                  daemon=True)
    self._beat.start()
    return self

  def _heartbeat(self):
    while not self._stop.wait(HEARTBEAT_SECS):
      if _read(self.path).get('token') != self._token:
        return  # Taken over (this run looked dead): do not write over the new holder.
      try:
        self._write_heartbeat()
      except OSError:
        pass  # A full disk: the next beat tries again; the run itself will fail.

  def release(self):
    if self._beat is not None:
      self._stop.set()
      self._beat.join(timeout=HEARTBEAT_SECS)
      self._beat = None
      try:
        if _read(self.path).get('token') == self._token:
          files.atomic_write(self.path, '')  # Empty: a clean exit.
      except OSError:
        pass
      self._token = None
    if self._fd is None:
      return
    try:
      # An empty file marks a clean exit; the file stays so no second process can
      # lock a just-unlinked inode while a third creates a new one.
      os.ftruncate(self._fd, 0)
    except OSError:
      pass
    os.close(self._fd)
    self._fd = None

  def announce(self, line):
    """Says on the console (through `line`) what a run should know of its lock."""
    if self.note:
      line('note: ' + self.note)
    if self.took_over:
      line('Took over the lock of a run that is gone (%s).' % self.took_over)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
