r"""Runs the benchmarks and writes bench/results.json and bench/RESULTS.md.

  python -m bench                       # everything (make bench), about 90 min on 2 cores
  python -m bench --toy --output_dir=/tmp/b   # each benchmark once at toy size
  python -m bench --only=input_pipeline,training
  python -m bench --only=variants,mutagenesis --update   # keep the other figures

Every figure is a ratio against a peer or a ceiling measured in the same run, with the
repeats interleaved (see bench/common.py).
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from bench import common
from bench import report

SUITES = ('input_pipeline', 'training', 'sequence', 'startup', 'scale', 'genome',
          'variants', 'variant_scores', 'mutagenesis', 'attribution', 'memory',
          'xla', 'seqnn_peer')


def _suite(name):
  # Each suite is imported when it runs, so a failure to import one names it.
  module = __import__('bench.' + name, fromlist=['run'])
  return module.run


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--toy', action='store_true',
                      help='Run each benchmark once at toy size (for tests).')
  parser.add_argument('--output_dir', default=os.path.dirname(os.path.abspath(__file__)),
                      help='Where results.json and RESULTS.md are written.')
  parser.add_argument('--work_dir', default='',
                      help='Scratch directory for data and runs; empty uses a temporary '
                      'directory that is removed at the end.')
  parser.add_argument('--only', default=','.join(SUITES),
                      help='Comma-separated benchmarks to run, of: %s.' % ', '.join(SUITES))
  parser.add_argument('--update', action='store_true',
                      help='Keep the figures of the benchmarks not run from the '
                      'results.json already in --output_dir, and note in RESULTS.md '
                      'when and on what load the re-run ones were taken.')
  parser.add_argument('--repeats', type=int, default=0,
                      help='Interleaved repeats per figure; 0 means 3 (1 with --toy).')
  args = parser.parse_args(argv)
  only = [s.strip() for s in args.only.split(',') if s.strip()]
  unknown = [s for s in only if s not in SUITES]
  if unknown:
    sys.stderr.write('error: --only names unknown benchmark(s) %s; known: %s.\n'
                     % (', '.join(unknown), ', '.join(SUITES)))
    return 2
  repeats = args.repeats or (1 if args.toy else 3)
  console.quiet()
  work_dir = args.work_dir or tempfile.mkdtemp(prefix='bench-')
  os.makedirs(args.output_dir, exist_ok=True)
  results = {
      'meta': {
          'date_utc': datetime.datetime.now(datetime.timezone.utc).strftime(
              '%Y-%m-%d %H:%M UTC'),
          'toy': args.toy, 'repeats': repeats, 'machine': common.machine(),
          'seconds': {},
      }
  }
  try:
    for name in only:
      common.log('== %s' % name)
      start = time.time()
      results.update(_suite(name)(os.path.join(work_dir, name), toy=args.toy,
                                  repeats=repeats))
      results['meta']['seconds'][name] = round(time.time() - start, 1)
  finally:
    if not args.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)
  try:
    results['meta']['load_average_at_end'] = [round(x, 2) for x in os.getloadavg()]
  except OSError:
    pass
  if args.update:
    results = _updated(os.path.join(args.output_dir, 'results.json'), results, only)
  common.write_json(os.path.join(args.output_dir, 'results.json'), results)
  with open(os.path.join(args.output_dir, 'RESULTS.md'), 'w') as f:
    f.write(report.markdown(results))
  common.log('wrote %s' % os.path.join(args.output_dir, 'results.json'))
  return 0


def _updated(path, results, only):
  """The earlier results at path with the suites just run replaced; the earlier
  run's meta stays the header's, and each re-run suite records its own."""
  if not os.path.exists(path):
    return results
  with open(path) as f:
    earlier = json.load(f)
  meta = results.pop('meta')
  for name in only:
    for key in [k for k in earlier if k == name or k.startswith(name + '_')]:
      del earlier[key]
    earlier['meta'].setdefault('reruns', {})[name] = {
        'date_utc': meta['date_utc'], 'seconds': meta['seconds'].get(name),
        'commit': meta['machine'].get('commit'),
        'cpu_busy_before_start': meta['machine'].get('cpu_busy_before_start'),
        'load_average_at_start': meta['machine'].get('load_average_at_start'),
        'load_average_at_end': meta.get('load_average_at_end')}
  earlier.update(results)
  return earlier


if __name__ == '__main__':
  sys.exit(main())
