"""Scale: records/sec and peak memory of the input pipeline for 1x, 4x and 16x the data.

Each size runs in a child process (`python -m bench.scale RECORDS COUNT BATCH SIZE
READS`) that reads as many records as the largest set holds through the project's
training input_fn and its evaluation input_fn; its peak RSS comes from os.wait4 (getrusage of that child) in the small
launcher bench/rusage.py.
Memory must stay flat: the shuffle buffer and prefetching are bounded, nothing holds
the data set.

  python -m bench --only=scale
"""

import json
import os
import subprocess
import sys
import time

from bench import common
from bench import data as data_lib

SIZES = (1, 4, 16)


def child(records, count, batch, image_size, reads):
  """Reads `reads` records as training and as evaluation does; prints records/sec.

  Every size reads the same number of records (evaluation names a small set's files
  several times, training repeats anyway), so every window is equally long: a short
  one would be served partly from batches prefetched before the clock started.
  """
  import estimator_pipeline  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from estimator_pipeline.core import files as files_lib  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.data import input_fn as input_lib  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.data import image_parse  # pylint: disable=g-import-not-at-top
  files = files_lib.list_files(records)
  rates = {}
  for is_training in (True, False):
    fn = input_lib.make_input_fn(
        files if is_training else files * max(1, reads // count),
        is_training=is_training, batch_size=batch, **image_parse.image_parse_fns(
            is_training=is_training, num_classes=4, family='vgg',
            image_size=image_size))
    iterator = iter(fn())
    # The first batches wait for the pipeline to start (threads, the shuffle buffer):
    # a fixed cost that would make a small data set look slow.
    seen = 0
    for _ in range(2):
      seen += int(next(iterator)[0]['image'].shape[0])
    start = time.perf_counter()
    first = seen
    for features, _ in iterator:
      seen += int(features['image'].shape[0])
      if seen >= reads:
        break
    seen -= first
    rates['train' if is_training else 'eval'] = seen / (time.perf_counter() - start)
  print(json.dumps(rates))


def _run_child(records, count, batch, image_size, reads):
  """(rates, peak RSS in MB) of one child, through bench.rusage (see why there)."""
  launcher = subprocess.run(
      [sys.executable, '-m', 'bench.rusage', '--', sys.executable, '-m', 'bench.scale',
       records, str(count), str(batch), str(image_size), str(reads)],
      cwd=common.REPO, env=common.python_env(), capture_output=True, text=True,
      check=True)
  result = json.loads(launcher.stdout)
  if result['returncode']:
    raise RuntimeError('bench.scale child failed (exit %d): %s'
                       % (result['returncode'], launcher.stderr[-2000:]))
  rates = json.loads(result['stdout'].strip().splitlines()[-1])
  return rates, result['peak_rss_kb'] / 1024.0


def run(work_dir, toy=False, repeats=3):
  base = 32 if toy else 256
  batch = 8 if toy else 32
  image_size = 64
  sets = {}
  for k in SIZES:
    sets[k] = data_lib.make_image_set(os.path.join(work_dir, '%dx' % k), base * k,
                                      96, 128, num_classes=4, num_shards=4 * k,
                                      seed=k, folder=False)
  raw_rate = {k: [] for k in SIZES}
  raw_eval = {k: [] for k in SIZES}
  raw_rss = {k: [] for k in SIZES}
  common.log('scale: %s records of 96x128 JPEG -> %dx%d, batch %d'
             % ('/'.join(str(base * k) for k in SIZES), image_size, image_size, batch))
  for r in range(repeats):
    for k in SIZES:
      rates, rss = _run_child(sets[k]['records'], base * k, batch, image_size,
                              base * max(SIZES))
      raw_rate[k].append(rates['train'])
      raw_eval[k].append(rates['eval'])
      raw_rss[k].append(rss)
      common.log('  repeat %d/%d %3dx  train %.0f rec/s  eval %.0f rec/s  peak RSS %.0f MB'
                 % (r + 1, repeats, k, rates['train'], rates['eval'], rss))
  out = {}
  for k in SIZES:
    out['train_records_per_sec_%dx' % k] = common.stats(raw_rate[k])
    out['eval_records_per_sec_%dx' % k] = common.stats(raw_eval[k])
    out['peak_rss_mb_%dx' % k] = common.stats(raw_rss[k])
  for k in SIZES[1:]:
    out['train_records_per_sec_%dx_vs_1x_ratio' % k] = common.stats(
        common.ratios(raw_rate[k], raw_rate[1]))
    out['eval_records_per_sec_%dx_vs_1x_ratio' % k] = common.stats(
        common.ratios(raw_eval[k], raw_eval[1]))
    out['peak_rss_%dx_vs_1x_ratio' % k] = common.stats(
        common.ratios(raw_rss[k], raw_rss[1]))
  out['setup'] = {'records_1x': base, 'source': '96x128 JPEG', 'output': image_size,
                  'batch': batch, 'records_read_per_size': base * max(SIZES)}
  return {'scale': out}


if __name__ == '__main__':
  child(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
        int(sys.argv[5]))
