"""The real TensorBoard and a real headless Chromium, started and stopped by tests.

TensorBoard runs as its own process (the venv's `tensorboard` script) on 127.0.0.1 and
a free port; Chromium is driven through Debian's chromedriver with the W3C WebDriver
protocol (plain HTTP and JSON, so no browser-automation package is needed). Both are
always stopped by their process id.
"""

import base64
import contextlib
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

# Debian's packages `chromium` and `chromium-driver`; `make test` installs them.
CHROMIUM_CANDIDATES = ('/usr/bin/chromium', 'chromium', 'chromium-browser')
CHROMEDRIVER_CANDIDATES = ('/usr/bin/chromedriver', 'chromedriver')
# The network is closed and the machine shared: no GPU, no sandbox (root in CI), no
# background traffic, and a fresh profile per session.
CHROMIUM_ARGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage', '--window-size=1280,900')
# Generous: the machine is shared with other test runs. Polling ends as soon as the
# condition holds, so these only bound a failing run.
STARTUP_SECONDS = 180
WAIT_SECONDS = 180


def free_port():
  with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def find_program(candidates, what):
  for name in candidates:
    path = shutil.which(name)
    if path:
      return path
  raise RuntimeError('%s is not installed: run `make test` (its set-up installs it) or '
                     '`apt-get install -y chromium chromium-driver`.' % what)


def _stop(proc):
  """Stops one process we started, by its pid: SIGTERM, then SIGKILL if it lingers."""
  if proc.poll() is None:
    proc.terminate()
    try:
      proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
      proc.kill()
      proc.wait(timeout=30)


def http_get(url, timeout=60):
  """(status, body bytes) of a GET; HTTP errors are returned, not raised.

  The profile plugin gzips its answers whatever the request says; a browser unpacks
  them, and so does this.
  """
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
      status, body, encoding = (response.status, response.read(),
                                response.headers.get('Content-Encoding'))
  except urllib.error.HTTPError as e:
    status, body, encoding = e.code, e.read(), e.headers.get('Content-Encoding')
  if encoding == 'gzip':
    body = gzip.decompress(body)
  return status, body


def http_json(url):
  status, body = http_get(url)
  if status != 200:
    raise AssertionError('GET %s -> %d: %s' % (url, status, body[:500]))
  return json.loads(body)


class TensorBoard:
  """`tensorboard --logdir=... --host=127.0.0.1 --port=<free>` until stop().

  It runs in the logdir's parent with a relative --logdir, so the page names the run
  folder and not the temporary path it lies in.
  """

  def __init__(self, logdir, log_path):
    self.logdir = os.path.abspath(logdir)
    self.log_path = log_path
    self.proc = None
    self.url = None

  def start(self):
    program = os.path.join(os.path.dirname(sys.executable), 'tensorboard')
    command = ([program] if os.path.exists(program)
               else [sys.executable, '-m', 'tensorboard.main'])
    for _ in range(3):  # Another process may take the free port first.
      port = free_port()
      self.url = 'http://127.0.0.1:%d' % port
      with open(self.log_path, 'ab') as log:
        self.proc = subprocess.Popen(
            command + ['--logdir', os.path.basename(self.logdir), '--host',
                       '127.0.0.1', '--port', str(port)],
            cwd=os.path.dirname(self.logdir), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
      deadline = time.time() + STARTUP_SECONDS
      while time.time() < deadline and self.proc.poll() is None:
        try:
          if http_get(self.url + '/data/runs', timeout=5)[0] == 200:
            return self
        except OSError:
          pass
        time.sleep(0.5)
      _stop(self.proc)
    raise RuntimeError('tensorboard did not start; its log:\n' + self.log())

  def log(self):
    with open(self.log_path, errors='replace') as f:
      return f.read()[-4000:]

  def json(self, path):
    return http_json(self.url + path)

  def wait_for(self, path, condition, what):
    """Polls GET path until condition(json) holds (TensorBoard loads in background)."""
    deadline = time.time() + WAIT_SECONDS
    value = None
    while time.time() < deadline:
      value = self.json(path)
      if condition(value):
        return value
      time.sleep(1)
    raise AssertionError('TensorBoard never served %s at %s; last answer: %r'
                         % (what, path, value))

  def stop(self):
    if self.proc is not None:
      _stop(self.proc)


class Chromium:
  """Headless Chromium through chromedriver's W3C WebDriver endpoint."""

  def __init__(self, profile_dir, log_path):
    self.profile_dir = profile_dir
    self.log_path = log_path
    self.driver = None
    self.session = None
    self.base = None

  def start(self):
    chromium = find_program(CHROMIUM_CANDIDATES, 'Chromium (Debian package chromium)')
    chromedriver = find_program(CHROMEDRIVER_CANDIDATES,
                                'chromedriver (Debian package chromium-driver)')
    port = free_port()
    self.base = 'http://127.0.0.1:%d' % port
    with open(self.log_path, 'ab') as log:
      self.driver = subprocess.Popen([chromedriver, '--port=%d' % port],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
    deadline = time.time() + STARTUP_SECONDS
    while True:
      try:
        if self._call('GET', '/status').get('ready'):
          break
      except OSError:
        pass
      if time.time() > deadline or self.driver.poll() is not None:
        raise RuntimeError('chromedriver did not start (see %s)' % self.log_path)
      time.sleep(0.2)
    args = list(CHROMIUM_ARGS) + ['--user-data-dir=%s' % self.profile_dir]
    value = self._call('POST', '/session', {'capabilities': {'alwaysMatch': {
        'browserName': 'chrome',
        'goog:chromeOptions': {'binary': chromium, 'args': args}}}})
    self.session = '/session/' + value['sessionId']
    return self

  def _call(self, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={'Content-Type': 'application/json'})
    try:
      with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
        return json.loads(response.read())['value']
    except urllib.error.HTTPError as e:
      raise AssertionError('WebDriver %s %s -> %d: %s'
                           % (method, path, e.code, e.read()[:1000])) from None

  def open(self, url):
    self._call('POST', self.session + '/url', {'url': url})

  def run_script(self, script, *args):
    return self._call('POST', self.session + '/execute/sync',
                      {'script': script, 'args': list(args)})

  def screenshot(self, path):
    with open(path, 'wb') as f:
      f.write(base64.b64decode(self._call('GET', self.session + '/screenshot')))
    return path

  def stop(self):
    try:
      if self.session:
        self._call('DELETE', self.session)  # Ends the browser it started.
    except (OSError, AssertionError):
      pass
    finally:
      if self.driver is not None:
        _stop(self.driver)
