"""What every benchmark shares: interleaved repeats, statistics, synthetic data, machine.

Figures are ratios measured side by side in one run: the machines this runs on are
shared, so an absolute images/sec says more about the neighbours than about the code.
`interleave` runs the variants A, B, C, A, B, C, ... so a load change hits all of them,
and a ratio is taken per repeat (A_r / B_r) before its median.

  python -m bench --toy
"""

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stats(values):
  """{'min', 'median', 'max', 'n'} of a list of numbers (rounded for reading)."""
  values = [float(v) for v in values]
  return {'min': _round(min(values)), 'median': _round(statistics.median(values)),
          'max': _round(max(values)), 'n': len(values)}


def _round(x):
  if x == 0 or not math.isfinite(x):
    return x
  digits = max(0, 3 - int(math.floor(math.log10(abs(x)))))
  return round(x, digits)


def interleave(variants, repeats, log=None):
  """Runs each callable of {name: fn() -> float} once per repeat, round-robin.

  Returns {name: [value per repeat]}, index r of every list from the same round.
  """
  results = {name: [] for name in variants}
  for r in range(repeats):
    for name, fn in variants.items():
      value = fn()
      results[name].append(value)
      if log:
        log('  repeat %d/%d %-28s %10.2f' % (r + 1, repeats, name, value))
  return results


def ratios(numerator, denominator):
  """Per-repeat ratios of two lists measured in the same rounds."""
  return [a / b for a, b in zip(numerator, denominator)]


def log(message):
  sys.stderr.write(message + '\n')
  sys.stderr.flush()


def timed_iterations(iterator, count, warmup, items_per_step):
  """items/sec over `count` steps of `iterator` after `warmup` steps (excluded)."""
  for _ in range(warmup):
    next(iterator)
  start = time.perf_counter()
  for _ in range(count):
    next(iterator)
  return count * items_per_step / (time.perf_counter() - start)


def synthetic_images(count, height, width, seed=0, num_classes=4):
  """Yields (uint8 [h, w, 3], label): smooth colour fields plus grain, photo-like.

  Pure noise would make JPEGs several times larger (and slower to decode) than photos;
  a flat colour would make them trivially small.
  """
  rng = np.random.RandomState(seed)
  for i in range(count):
    coarse = rng.uniform(0, 255, (4, 6, 3)).astype(np.float32)
    ys = np.linspace(0, 3, height)[:, None]
    xs = np.linspace(0, 5, width)[None, :]
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, 3), np.minimum(x0 + 1, 5)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    image = (coarse[y0, x0] * (1 - fy) * (1 - fx) + coarse[y1, x0] * fy * (1 - fx) +
             coarse[y0, x1] * (1 - fy) * fx + coarse[y1, x1] * fy * fx)
    image += rng.normal(0, 12, (height, width, 3))
    yield np.clip(image, 0, 255).astype(np.uint8), i % num_classes


def machine():
  """What the figures were taken on."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  info = {
      'python': platform.python_version(),
      'platform': platform.platform(),
      'cpu_count': os.cpu_count(),
      'tensorflow': tf.__version__,
  }
  try:
    with open('/proc/cpuinfo') as f:
      for raw in f:
        if raw.startswith('model name'):
          info['cpu'] = raw.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  try:
    info['load_average_at_start'] = [round(x, 2) for x in os.getloadavg()]
  except OSError:
    pass
  busy = cpu_busy_fraction()
  if busy is not None:
    info['cpu_busy_before_start'] = round(busy, 2)
  for key, dist in (('tensorflow_estimator', 'tensorflow-estimator'),
                    ('tf_slim', 'tf-slim'), ('tf_keras', 'tf-keras'),
                    ('numpy', 'numpy')):
    try:
      info[key] = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
      info[key] = 'not installed'
  try:
    info['commit'] = subprocess.run(
        ['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
        text=True, check=False).stdout.strip() or '?'
  except OSError:
    info['commit'] = '?'
  return info


def _cpu_times():
  with open('/proc/stat') as f:
    fields = [int(x) for x in f.readline().split()[1:]]
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
  return sum(fields), idle


def cpu_busy_fraction(seconds=2.0):
  """Share of all cores busy over `seconds`, before any benchmark runs; None off Linux.

  The load average trails by a minute, so right after another job it still says
  "busy"; a sample of /proc/stat says what runs now.
  """
  try:
    total0, idle0 = _cpu_times()
    time.sleep(seconds)
    total1, idle1 = _cpu_times()
  except (OSError, ValueError, IndexError):
    return None
  elapsed = total1 - total0
  return 1.0 - (idle1 - idle0) / elapsed if elapsed > 0 else None


def write_json(path, data):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(data, f, indent=2, sort_keys=True)
    f.write('\n')
  os.replace(tmp, path)


def python_env():
  """Environment for child processes: quiet TF, the repository importable."""
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  return env
