"""Progress of a converter on stderr: a tqdm bar on a terminal, plain lines elsewhere.

  meter = progress.Progress('writing records', total=len(items), enabled=True, unit='seq')
  for item in items:
    ...
    meter.update()
  meter.close()

On a terminal the bar shows the rate and the time left; in a CI log, where a bar would
be a wall of carriage returns, a line like `writing records: 300/1200 (25%), 41 seq/s,
ETA 22s` appears every few seconds instead.
"""

import sys
import time

import tqdm

from estimator_pipeline import console

# Seconds between plain progress lines when stderr is not a terminal (CI logs).
PLAIN_PROGRESS_EVERY = 10.0


class Progress:
  """A tqdm bar on a terminal; elsewhere (CI logs) a plain line every few seconds."""

  def __init__(self, description, total, enabled, unit='img'):
    self._description = description
    self._total = total
    self._unit = unit
    self._done = 0
    self._start = self._last_line = time.monotonic()
    self._bar = None
    self._plain = False
    if not enabled or not total:
      return
    if isatty(sys.stderr):
      self._bar = tqdm.tqdm(total=total, desc=description, unit=unit, file=sys.stderr,
                            dynamic_ncols=True)
    else:
      self._plain = True

  def update(self, n=1):
    self._done += n
    if self._bar is not None:
      self._bar.update(n)
    elif self._plain:
      now = time.monotonic()
      if now - self._last_line >= PLAIN_PROGRESS_EVERY and self._done < self._total:
        self._last_line = now
        rate = self._done / max(now - self._start, 1e-9)
        console.line('%s: %d/%d (%d%%), %.0f %s/s, ETA %s' % (
            self._description, self._done, self._total, 100 * self._done // self._total,
            rate, self._unit, console.duration((self._total - self._done) / rate)))

  def close(self):
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def isatty(stream):
  try:
    return stream.isatty()
  except (AttributeError, ValueError):
    return False
