"""The tests' runner of project commands: each one a fresh process, forked from one
that imported TensorFlow and the project's library once.

A command-line test runs `python train.py ...` or `python -m export ...` as a user
does: in a process of its own, with its own flags, exit status, stdout and stderr.
Most of such a process's life on a small machine is importing TensorFlow (seconds),
the same in every one. So a server process (this file, run as a program) imports the
heavy modules once and waits; for each command it forks, and the fork runs the
program as `python` would (`runpy`, `__main__`, sys.argv, atexit, a non-zero status
on an uncaught exception), in its own process group, with the environment, working
directory and output files it is given:

  runner = cli_runner.Runner.start(repo, env)
  done = runner.run(['train.py', '--model_dir=runs/x', ...], repo, env, timeout=600)
  process = runner.start_command(['train.py', ...], repo, env, 'run.log')  # Popen-like
  runner.stop()

Only library modules are imported ahead: flags/ and the programs are imported by each
fork itself, so every command defines its own flags, as in a new interpreter. The
server forks from a single thread before any TensorFlow op has run. A command whose
environment changes what TensorFlow reads at import (TF_ENABLE_ONEDNN_OPTS, ...)
cannot be served and runs as a plain subprocess (conftest.run_cli decides).
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Read by TensorFlow once, when it is imported: a command that sets one of these to
# another value than the server started with needs a process of its own.
IMPORT_TIME_VARIABLES = ('TF_ENABLE_ONEDNN_OPTS', 'TF_CPP_MIN_LOG_LEVEL',
                         'CUDA_VISIBLE_DEVICES', 'TF_XLA_FLAGS', 'OMP_NUM_THREADS',
                         'PYTHONPATH', 'PYTHONHASHSEED')

# What every command imports anyway, so each fork starts with it in memory.
PRELOAD = ('numpy', 'tensorflow', 'tensorflow_estimator', 'tf_slim', 'h5py',
           'absl.app', 'absl.flags', 'absl.logging', 'estimator_pipeline',
           'estimator_pipeline.train.driver', 'estimator_pipeline.train.exporting',
           'estimator_pipeline.analysis.evaluation', 'estimator_pipeline.records.inspect',
           'tensorflow_serving.apis.prediction_log_pb2')


def _read_message(conn):
  """The server side's read of one request line."""
  data = b''
  while not data.endswith(b'\n'):
    chunk = conn.recv(65536)
    if not chunk:
      return None
    data += chunk
  return json.loads(data)


def _send(conn, message):
  conn.sendall(json.dumps(message).encode() + b'\n')


class Process:
  """A command running as a fork of the server, with Popen's way of being watched:
  pid, poll(), wait(timeout), send_signal(), terminate(), kill(), returncode."""

  def __init__(self, conn, args):
    self.args = [sys.executable] + list(args)
    self.returncode = None
    self._conn = conn
    self._buffer = b''
    self.pid = self._message(None)['pid']

  def _message(self, timeout):
    """The server's next line, or None when none came within timeout (seconds)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while b'\n' not in self._buffer:
      left = None if deadline is None else max(0.0, deadline - time.monotonic())
      ready, _, _ = select.select([self._conn], [], [], left)
      if not ready:
        return None
      chunk = self._conn.recv(65536)
      if not chunk:
        raise RuntimeError('the command runner went away while running %s'
                           % ' '.join(self.args))
      self._buffer += chunk
    line, self._buffer = self._buffer.split(b'\n', 1)
    return json.loads(line)

  def poll(self):
    if self.returncode is None:
      done = self._message(0)
      if done is not None:
        self._finish(done['returncode'])
    return self.returncode

  def wait(self, timeout=None):
    if self.returncode is None:
      done = self._message(timeout)
      if done is None:
        raise subprocess.TimeoutExpired(self.args, timeout)
      self._finish(done['returncode'])
    return self.returncode

  def _finish(self, returncode):
    self.returncode = returncode
    self._conn.close()

  def send_signal(self, sig):
    if self.returncode is None:
      os.kill(self.pid, sig)

  def terminate(self):
    self.send_signal(signal.SIGTERM)

  def kill(self):
    self.send_signal(signal.SIGKILL)

  def kill_group(self):
    """Kills the command and every process it started (its own process group)."""
    if self.returncode is None:
      os.killpg(self.pid, signal.SIGKILL)


class Runner:
  """The client side: starts the server, runs commands through it, stops it."""

  def __init__(self, process, address, env):
    self._process = process
    self._address = address
    self.env = env

  @classmethod
  def start(cls, repo, env):
    """A server for commands run from repo with env; None if it cannot start."""
    folder = tempfile.mkdtemp(prefix='cli-runner-')
    address = os.path.join(folder, 'socket')
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), address, repo], env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True)
    # The server prints 'ready' once it imported everything and listens.
    if process.stdout.readline().strip() != b'ready':
      process.kill()
      process.wait()
      return None
    return cls(process, address, env)

  def alive(self):
    return self._process.poll() is None

  def start_command(self, args, cwd, env, out, err=None):
    """Starts `python *args` as a fork of the server, writing its stdout to the file
    out and its stderr to err (None: to out as well) -> Process."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(self._address)
    _send(conn, {'args': list(args), 'cwd': cwd, 'env': env, 'out': out,
                 'err': err})
    return Process(conn, args)

  def run(self, args, cwd, env, timeout):
    """Runs `python *args` as a fork of the server -> subprocess.CompletedProcess."""
    with tempfile.TemporaryDirectory(prefix='cli-') as scratch:
      out, err = os.path.join(scratch, 'out'), os.path.join(scratch, 'err')
      process = self.start_command(args, cwd, env, out, err)
      try:
        process.wait(timeout)
      except subprocess.TimeoutExpired:
        process.kill_group()
        process.wait()
        raise
      with open(out, errors='replace') as f_out, open(err, errors='replace') as f_err:
        return subprocess.CompletedProcess(process.args, process.returncode,
                                           f_out.read(), f_err.read())

  def stop(self):
    if self.alive():
      self._process.terminate()
      try:
        self._process.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    os.unlink(self._address)
    os.rmdir(os.path.dirname(self._address))


def _run_program(args):
  """Runs `python *args` in this process -> the exit status, as python reports it."""
  import atexit  # pylint: disable=g-import-not-at-top
  import runpy  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  import traceback  # pylint: disable=g-import-not-at-top
  code = 0
  try:
    if args[0] == '-m':
      sys.argv = [args[1]] + list(args[2:])
      sys.path[0] = os.getcwd()
      runpy.run_module(args[1], run_name='__main__', alter_sys=True)
    elif args[0] == '-c':
      sys.argv = ['-c'] + list(args[2:])
      sys.path[0] = ''
      exec(compile(args[1], '<string>', 'exec'), {'__name__': '__main__'})  # pylint: disable=exec-used
    else:
      sys.argv = list(args)
      sys.path[0] = os.path.dirname(os.path.abspath(args[0]))
      runpy.run_path(args[0], run_name='__main__')
  except SystemExit as e:
    if e.code is None:
      code = 0
    elif isinstance(e.code, int):
      code = e.code
    else:
      print(e.code, file=sys.stderr)
      code = 1
  except BaseException:  # pylint: disable=broad-except
    traceback.print_exc()
    code = 1
  # What the interpreter does at exit: wait for non-daemon threads, run atexit.
  threading._shutdown()  # pylint: disable=protected-access
  atexit._run_exitfuncs()  # pylint: disable=protected-access
  return code


def _child(request):
  """The fork that becomes the command; never returns."""
  code = 1
  try:
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    for fd, path in ((1, request['out']), (2, request['err'])):
      if path is None:  # stderr into stdout's file, as stderr=STDOUT does.
        os.dup2(1, 2)
        continue
      target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
      os.dup2(target, fd)
      os.close(target)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    code = _run_program(request['args'])
  finally:
    try:
      sys.stdout.flush()
      sys.stderr.flush()
    finally:
      os._exit(code)  # pylint: disable=protected-access


def _serve_one(conn):
  """In a fork of the server: forks the command, reports its pid, then its status."""
  signal.signal(signal.SIGCHLD, signal.SIG_DFL)
  request = _read_message(conn)
  pid = os.fork()
  if pid == 0:
    conn.close()
    os.setpgid(0, 0)  # Its own group: a timeout kills the command and its children.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _child(request)
  try:
    os.setpgid(pid, pid)
  except OSError:
    pass  # The child set it first.
  _send(conn, {'pid': pid})
  _, status = os.waitpid(pid, 0)
  _send(conn, {'returncode': os.waitstatus_to_exitcode(status)})
  os._exit(0)  # pylint: disable=protected-access


def serve(address, repo):
  """The server: imports PRELOAD, then forks one helper per connection."""
  import importlib  # pylint: disable=g-import-not-at-top
  sys.path[0] = repo  # Not tests/, where this file is: as a plain `python` has it.
  os.chdir(repo)
  for name in PRELOAD:
    importlib.import_module(name)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  importlib.import_module('matplotlib.pyplot')
  # Forks are reaped by the kernel; each reports its command's status itself.
  signal.signal(signal.SIGCHLD, signal.SIG_IGN)
  listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  listener.bind(address)
  listener.listen(64)
  sys.stdout.write('ready\n')
  sys.stdout.flush()
  while True:
    conn, _ = listener.accept()
    if os.fork() == 0:
      listener.close()
      _serve_one(conn)
    conn.close()


if __name__ == '__main__':
  serve(sys.argv[1], sys.argv[2])
