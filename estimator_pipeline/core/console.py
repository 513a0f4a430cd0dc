"""What a person sees on the console: TensorFlow's noise off, the pipeline's lines on.

  python train.py ... --v=1    # keep TensorFlow's own INFO logs as well
"""

import collections
import logging
import shutil
import sys
import threading
import time
import warnings

# Seconds between plain progress lines when stderr is not a terminal (CI logs, pipes).
PLAIN_EVERY_SECONDS = 10.0
# Seconds between redraws of a live progress line: often enough to look alive, rarely
# enough that a fast loop does not spend its time writing to the terminal.
LIVE_EVERY_SECONDS = 0.2
_BAR_WIDTH = 24

# The Progress that owns the terminal's last line, if any: line() clears it first and
# redraws it after, so an evaluation line never lands in the middle of a live bar.
_live = None
_lock = threading.RLock()


def quiet_imports():
  """Hides the warnings that importing the pinned set prints (call before importing).

  google-api-core (pulled in by tf-models-official) warns about Python versions, and
  TF's bundled Keras warns on every legacy layer slim uses; neither is actionable.
  """
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=UserWarning, module=r'(tf_)?keras')
  warnings.filterwarnings('ignore', category=UserWarning,
                          module=r'tensorflow\.python\.keras')
  # Printed whenever a distribution strategy builds its input in graph mode.
  warnings.filterwarnings('ignore', category=UserWarning,
                          message='To make it possible to preserve tf.data options')


def quiet(keep_tf_info=False):
  """Silences TF deprecation warnings and INFO chatter (the C++ side: see compat.py)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import deprecation  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  deprecation._PRINT_DEPRECATION_WARNINGS = False  # pylint: disable=protected-access
  level = logging.INFO if keep_tf_info else logging.ERROR
  tf.get_logger().setLevel(level)
  if not keep_tf_info:
    # Some TF modules (SavedModel loading) log through absl directly.
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  tf.compat.v1.logging.set_verbosity(level)
  if keep_tf_info:
    warnings.resetwarnings()
  else:
    quiet_imports()


def line(message):
  """One console line on stderr, flushed at once (stdout stays for results)."""
  with _lock:
    live = _live
    if live is not None:
      live._clear()  # pylint: disable=protected-access
    sys.stderr.write(message + '\n')
    if live is not None:
      live._draw()  # pylint: disable=protected-access
    sys.stderr.flush()


def is_terminal(stream=None):
  """True when stream (stderr by default) is an interactive terminal."""
  stream = sys.stderr if stream is None else stream
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False


class Progress:
  """Progress of a known amount of work: a live bar on a terminal, plain lines elsewhere.

  The one progress display of the project: the trainer's step line and every records
  converter use it, so they look and behave alike.

    progress = console.Progress(1000, 'writing records', unit='img')
    for item in items:
      ...
      progress.update()
    progress.close()

  On a terminal one line is redrawn in place (with \\r), at most every
  LIVE_EVERY_SECONDS; anywhere else (CI logs, pipes, files) a plain line is printed every
  `plain_every_seconds` or, with `plain_every_n`, whenever the count crosses a multiple
  of it, so logs stay short and readable.

  Args:
    total: The amount of work, e.g. records or steps; 0 when unknown.
    description: What the work is, e.g. 'writing records'; '' for none.
    unit: The unit of the rate, e.g. 'img' gives 'img/s'.
    rate_scale: Units per counted item, e.g. the batch size when counting steps but
      showing examples/sec.
    start: The count already done (a resumed run), not counted in the rate.
    enabled: False shows nothing (library callers and tests).
    live: Force the live bar (True) or plain lines (False); None asks the stream.
    plain_every_seconds: Seconds between plain lines; None for PLAIN_EVERY_SECONDS.
    plain_every_n: Print a plain line at each multiple of this count instead.
    stream: Where to write; stderr by default.
  """

  def __init__(self, total, description='', *, unit='it', rate_scale=1.0, start=0,
               enabled=True, live=None, plain_every_seconds=None, plain_every_n=0,
               stream=None):
    self.total = int(total or 0)
    self.description = description
    self.unit = unit
    self.done = int(start)
    self.fields = ()
    self._rate_scale = rate_scale
    self._enabled = enabled
    self._stream = stream
    self._live = enabled and (is_terminal(stream) if live is None else live)
    self._plain_every_seconds = (PLAIN_EVERY_SECONDS if plain_every_seconds is None
                                 else plain_every_seconds)
    self._plain_every_n = plain_every_n
    now = time.monotonic()
    self._start_time = self._last_draw = now
    self._start_count = self.done
    # The rate is measured over a recent window, so a slow first step (graph start-up)
    # does not spoil the ETA for the rest of the run.
    self._window = collections.deque([(now, self.done)])
    self._last_text = ''
    self._closed = False

  @property
  def stream(self):
    return sys.stderr if self._stream is None else self._stream

  def rate(self):
    """Units per second over the recent window (0.0 until something was counted)."""
    (t0, n0), (t1, n1) = self._window[0], self._window[-1]
    if n1 <= n0 or t1 <= t0:
      return 0.0
    return (n1 - n0) / (t1 - t0) * self._rate_scale

  def eta_seconds(self):
    """Seconds left at the current rate, or None when not known."""
    rate = self.rate() / self._rate_scale
    if not self.total or rate <= 0:
      return None
    return max(0, self.total - self.done) / rate

  def text(self, with_bar=False):
    """The progress line: '[bar] ' on a terminal, then count, fields, rate and ETA."""
    parts = []
    if self.total:
      count = '%d/%d' % (self.done, self.total)
      if with_bar:
        filled = int(_BAR_WIDTH * min(self.done, self.total) / self.total)
        count = '[%s%s] %s' % ('#' * filled, '.' * (_BAR_WIDTH - filled), count)
      parts.append(count + ' (%d%%)' % (100 * min(self.done, self.total) // self.total))
    else:
      parts.append(str(self.done))
    if self.description:
      # 'step 40/2000' reads as one item; the description of a bar stands before it.
      sep = ': ' if with_bar and self.total else ' '
      parts[0] = self.description + sep + parts[0]
    parts.extend(self.fields)
    rate = self.rate()
    if rate > 0:
      parts.append('%.1f %s/s' % (rate, self.unit))
    eta = self.eta_seconds()
    if eta is not None and self.done < self.total:
      parts.append('ETA %s' % duration(eta))
    return '  '.join(parts)

  def update(self, advance=1, *, done=None, fields=None, force=False):
    """Counts work done and shows it when due.

    Args:
      advance: Units done since the last call (ignored when `done` is given).
      done: The absolute count, e.g. the global step.
      fields: Extra 'name value' strings shown after the count, e.g. ('loss 0.3',).
      force: Show the line now (plain mode: print it), whatever the schedule.
    """
    before = self.done
    self.done = int(done) if done is not None else self.done + advance
    if fields is not None:
      self.fields = tuple(fields)
    now = time.monotonic()
    if len(self._window) > 1 and now - self._window[-2][0] < 0.5:
      self._window[-1] = (now, self.done)  # Keeps the window small in a fast loop.
    else:
      self._window.append((now, self.done))
    while len(self._window) > 2 and now - self._window[1][0] >= 30.0:
      self._window.popleft()
    if not self._enabled or self._closed:
      return
    if self._live:
      global _live  # pylint: disable=global-statement
      with _lock:
        _live = self
        if force or now - self._last_draw >= LIVE_EVERY_SECONDS or (
            self.total and self.done >= self.total):
          self._last_draw = now
          self._clear()
          self._draw()
          self.stream.flush()
      return
    if self._plain_every_n:
      due = self.done // self._plain_every_n > before // self._plain_every_n
    else:
      due = now - self._last_draw >= self._plain_every_seconds
    if force or (due and (not self.total or self.done < self.total)):
      self._last_draw = now
      self._print_plain()

  def _print_plain(self):
    if self.stream is sys.stderr:
      line(self.text())
    else:
      self.stream.write(self.text() + '\n')
      self.stream.flush()

  def _clear(self):
    if self._last_text:
      self.stream.write('\r\x1b[K')
      self._last_text = ''

  def _draw(self):
    # A line longer than the terminal wraps, and \r would then redraw only its end.
    width = shutil.get_terminal_size((100, 20)).columns
    self._last_text = self.text(with_bar=True)[:max(20, width - 1)]
    self.stream.write('\r' + self._last_text)

  def close(self, final=False):
    """Ends the display: the live line stays as the last state, followed by a newline.

    Args:
      final: In plain mode, also print the last state (a live bar always shows it).
    """
    global _live  # pylint: disable=global-statement
    if self._closed:
      return
    self._closed = True
    if not self._enabled:
      return
    with _lock:
      if self._live:
        self._clear()
        self._draw()
        self.stream.write('\n')
        self.stream.flush()
        self._last_text = ''
      elif final:
        self._print_plain()
      if _live is self:
        _live = None

  def elapsed(self):
    return time.monotonic() - self._start_time

  def __enter__(self):
    return self

  def __exit__(self, *exc_info):
    self.close()


def duration(seconds):
  seconds = int(round(max(0, seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  if h:
    return '%dh%02dm%02ds' % (h, m, s)
  if m:
    return '%dm%02ds' % (m, s)
  return '%ds' % s


def metrics_text(metrics):
  """'accuracy 0.9812  loss 0.0612 ...' for a dict of scalar metrics (step left out).

  Values that are not numbers (a serialized Summary, such as the confusion matrix
  image) are for TensorBoard only and left out.
  """
  parts = []
  for name in sorted(metrics):
    if name == 'global_step' or isinstance(metrics[name], (bytes, str)):
      continue
    try:
      parts.append('%s %.4f' % (name, float(metrics[name])))
    except (TypeError, ValueError):
      continue
  return '  '.join(parts)
