"""One model_dir, one trainer: an advisory lock file in model_dir.

Two trainers writing the same checkpoints, events and exports interleave them into
something neither can resume from. `train.py` holds `model_dir/train.lock` while it
runs; a second `train.py` on the same model_dir stops before writing anything:

  python train.py --model_dir=runs/x ...   # while another train.py trains runs/x
  # error: --model_dir=runs/x is being trained by pid 4242 on host gpu-1 since ...

The lock is fcntl.flock on that file, so the kernel drops it when its process dies,
however it dies (SIGKILL, OOM killer, power loss of a local disk): a lock left by a
killed run is stale by construction and the next run takes it over. The file's text
(pid, host, start time) only serves the message. flock does not lock across machines
on every network filesystem (NFS without lockd); run one trainer per model_dir there.
"""

import datetime
import errno
import fcntl
import json
import os
import socket

from estimator_pipeline.core.errors import UserError

LOCK_FILE = 'train.lock'


def _holder_text(path):
  try:
    with open(path) as f:
      info = json.loads(f.read() or '{}')
  except (OSError, ValueError):
    info = {}
  if not isinstance(info, dict) or 'pid' not in info:
    return 'another process'
  return 'pid %s on host %s since %s' % (info.get('pid'), info.get('host', '?'),
                                         info.get('started', '?'))


def _busy_error(model_dir, path):
  return UserError('--model_dir=%s is being trained by %s (lock %s): wait for that run '
                   'to finish or stop it, or pass another --model_dir.'
                   % (model_dir, _holder_text(path), path))


def _try_flock(fd):
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return True
  except OSError as e:
    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
      return False
    raise


def check_free(model_dir):
  """Raises UserError if a live process holds model_dir's lock. Writes nothing."""
  path = os.path.join(model_dir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return  # No lock file (or no model_dir): nobody trains here.
  try:
    if not _try_flock(fd):
      raise _busy_error(model_dir, path)
  finally:
    os.close(fd)  # Closing drops the probe's lock too.


class ModelDirLock:
  """Holds model_dir/train.lock from acquire() until release() (or process death)."""

  def __init__(self, model_dir):
    self.model_dir = model_dir
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._fd = None
    self.took_over = None  # The holder text of a stale lock this run replaced.

  def acquire(self):
    try:
      os.makedirs(self.model_dir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise UserError('cannot write to --model_dir=%s (%s): pass a directory you can '
                      'write to.' % (self.model_dir, e.strerror or e))
    if not _try_flock(fd):
      os.close(fd)
      raise _busy_error(self.model_dir, self.path)
    if os.fstat(fd).st_size:
      # The previous holder died without cleaning up: its lock went with it.
      self.took_over = _holder_text(self.path)
    info = {'pid': os.getpid(), 'host': socket.gethostname(),
            'started': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds')}
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps(info) + '\n').encode(), 0)
    except OSError as e:
      os.close(fd)
      raise UserError('cannot write to --model_dir=%s (%s): free some space or pass '
                      'another --model_dir.' % (self.model_dir, e.strerror or e))
    self._fd = fd
    return self

  def release(self):
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

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
