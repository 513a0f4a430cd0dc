"""Genome-scale data preparation: peak memory at 16x the genome, processes, ceiling.

`python -m estimator_pipeline.records sequences` tiles a synthetic genome (random
bases, a run of N in every chromosome) with two bigWig tracks, at basenji's defaults
(131072 bp windows, 128 bp bins):

- memory: the conversion of 1x (8 Mb) and 16x (128 Mb) genomes with --processes=2,
  each in a child process launched by bench/rusage.py: the peak RSS of its largest
  process (the main one, which holds TensorFlow) and of its worker processes (which
  fetch, bin, compress and write everything). Both must stay flat.
- throughput, on the 1x genome with overlapping windows (stride 1/64, about 3,400
  windows; toy: 1/4): records written
  per second from the first to the last (worker start-up is excluded, and shown as
  the wall-clock rate beside it) with --processes=2 against 1; and 1 process against a
  read-only ceiling that fetches the same windows and bins the same tracks but
  encodes, compresses and writes nothing.

  python -m bench --only=genome

This module's top level imports no TensorFlow: `python -m bench.genome` is its own
child process, and the converter's spawned workers import the main module again.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

from bench import common

# (chromosomes, bases each) of the 1x and 16x genomes; toy sizes for tests.
SIZES = {1: (4, 2_000_000), 16: (16, 8_000_000)}
TOY_SIZES = {1: (2, 400_000), 16: (8, 1_600_000)}
GAP = 10_000          # N in the middle of every chromosome: a contig break.
_LINE = 60


def make_genome(folder, num_chroms, length, seed=0):
  """genome.fa (indexed) and two bigWigs of 200-bp runs with gaps; returns paths."""
  import pyBigWig  # pylint: disable=g-import-not-at-top
  import pysam  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  rng = np.random.RandomState(seed)
  fasta = os.path.join(folder, 'genome.fa')
  letters = np.frombuffer(b'ACGTN', np.uint8)
  chroms = [('chr%d' % (i + 1), length) for i in range(num_chroms)]
  with open(fasta, 'wb') as f:
    for name, _ in chroms:
      codes = rng.randint(0, 4, length).astype(np.uint8)
      codes[length // 2:length // 2 + GAP] = 4
      f.write(b'>%s\n' % name.encode())
      full = length // _LINE * _LINE
      lines = letters[codes[:full]].reshape(-1, _LINE)
      f.write(np.hstack([lines, np.full((len(lines), 1), 10, np.uint8)]).tobytes())
      if full < length:
        f.write(letters[codes[full:]].tobytes() + b'\n')
  pysam.faidx(fasta)
  bigwigs = []
  for t in range(2):
    path = os.path.join(folder, 'track%d.bw' % t)
    bigwig = pyBigWig.open(path, 'w')
    bigwig.addHeader(chroms)
    for name, _ in chroms:
      starts = np.arange(0, length - 200, 200, dtype=np.int64)
      starts = starts[rng.rand(len(starts)) < 0.8]
      bigwig.addEntries([name] * len(starts), starts.tolist(),
                        ends=(starts + 200).tolist(),
                        values=rng.gamma(1.0, 2.0, len(starts)).tolist())
    bigwig.close()
    bigwigs.append(path)
  return {'fasta': fasta, 'bigwigs': bigwigs, 'bases': num_chroms * length}


def _convert(fasta, bigwigs, out, processes, **kwargs):
  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.records import sequences
  shutil.rmtree(out, ignore_errors=True)
  start = time.perf_counter()
  result = sequences.convert_sequences(fasta, None, bigwigs, out, processes=processes,
                                       progress=False, **kwargs)
  return result, time.perf_counter() - start


def child_memory(fasta, bigwigs, out):
  """Converts the genome with 2 processes; prints its own and its workers' peak RSS."""
  # Files of 2 records: enough of them for both workers, even at toy size.
  result, seconds = _convert(fasta, bigwigs.split(','), out, processes=2,
                             seqs_per_tfr=2)
  print(json.dumps({
      'windows': result.num_written, 'seconds': seconds,
      'main_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      'workers_rss_mb': result.worker_peak_rss_mb}))


def child_throughput(fasta, bigwigs, work, repeats, toy):
  """Interleaves 1 process, 2 processes and the read-only ceiling; prints rates."""
  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.records import fasta_index
  from estimator_pipeline.records import genome_windows
  from estimator_pipeline.records import sequences
  from estimator_pipeline.records import targets_table
  bigwigs = bigwigs.split(',')
  # Small files: the last one a worker writes while the other has none left costs
  # less of a short run. Stride 1/64: at 1/4 (216 windows) one process wrote the genome
  # in 0.3 s and at 1/16 (848) in 1.2 s, runs short enough for the two workers'
  # start-up stagger and the machine's hiccups to move the 2-vs-1 ratio by a tenth
  # (bench/CHANGES.md, 15 and 17).
  options = {'stride': 0.25 if toy else 0.015625, 'seqs_per_tfr': 4 if toy else 16}
  spec = sequences.window_spec(
      fasta_index.open_genome(fasta, work), targets_table.tracks_from_flags(bigwigs),
      work, sequences.DEFAULT_SEQ_LENGTH, sequences.DEFAULT_POOL_WIDTH,
      sequences.DEFAULT_CROP_BP, progress=False)
  rates = {'p1': [], 'p2': [], 'p1_wall': [], 'p2_wall': [], 'read_only': []}
  for r in range(int(repeats)):
    for processes in (1, 2):
      out = os.path.join(work, 'p%d' % processes)
      result, seconds = _convert(fasta, bigwigs, out, processes, **options)
      rates['p%d' % processes].append(result.windows_per_second)
      rates['p%d_wall' % processes].append(result.num_written / seconds)
    with open(os.path.join(work, 'p1', 'sequences.bed')) as f:
      windows = [(c, int(s), int(e)) for c, s, e, _ in (line.split() for line in f)]
    rates['read_only'].append(len(windows) / genome_windows.read_only(spec, windows))
    common.log('  repeat %d/%d  windows/s: 1 process %.1f, 2 processes %.1f, '
               'read-only %.1f (%d windows)' % (r + 1, repeats, rates['p1'][-1],
                                                rates['p2'][-1], rates['read_only'][-1],
                                                len(windows)))
  rates['windows'] = len(windows)
  print(json.dumps(rates))


def _child(args):
  """`python -m bench.genome ARGS` through bench.rusage -> (its JSON, peak RSS MB)."""
  launcher = subprocess.run(
      [sys.executable, '-m', 'bench.rusage', '--', sys.executable, '-m', 'bench.genome']
      + [str(a) for a in args], cwd=common.REPO, env=common.python_env(),
      capture_output=True, text=True, check=True)
  result = json.loads(launcher.stdout)
  if result['returncode']:
    raise RuntimeError('bench.genome %s failed (exit %d): %s' % (
        args[0], result['returncode'], launcher.stderr[-2000:]))
  return json.loads(result['stdout'].strip().splitlines()[-1]), \
      result['peak_rss_kb'] / 1024.0


def run(work_dir, toy=False, repeats=3):
  sizes = TOY_SIZES if toy else SIZES
  genomes = {k: make_genome(os.path.join(work_dir, '%dx' % k), *sizes[k], seed=k)
             for k in sizes}
  out = {}
  for k, genome in genomes.items():
    report, peak = _child(['memory', genome['fasta'], ','.join(genome['bigwigs']),
                           os.path.join(work_dir, 'out%d' % k)])
    out['peak_rss_mb_%dx' % k] = common.stats([peak])
    out['worker_peak_rss_mb_%dx' % k] = common.stats([report['workers_rss_mb']])
    out['windows_%dx' % k] = report['windows']
    common.log('  %2dx: %d Mb, %d windows in %.1f s; peak RSS %.0f MB, workers %.0f MB'
               % (k, genome['bases'] // 10**6, report['windows'], report['seconds'],
                  peak, report['workers_rss_mb']))
  out['peak_rss_16x_vs_1x_ratio'] = common.stats(
      [out['peak_rss_mb_16x']['median'] / out['peak_rss_mb_1x']['median']])
  workers = [out['worker_peak_rss_mb_%dx' % k]['median'] for k in (16, 1)]
  out['worker_peak_rss_16x_vs_1x_ratio'] = common.stats([workers[0] / workers[1]])
  work = os.path.join(work_dir, 'throughput')
  os.makedirs(work, exist_ok=True)
  rates, _ = _child(['throughput', genomes[1]['fasta'],
                     ','.join(genomes[1]['bigwigs']), work, repeats, int(toy)])
  for name in ('p1', 'p2', 'p1_wall', 'p2_wall', 'read_only'):
    out['windows_per_sec_%s' % name] = common.stats(rates[name])
  out['processes_2_vs_1_ratio'] = common.stats(common.ratios(rates['p2'], rates['p1']))
  out['processes_2_vs_1_wall_ratio'] = common.stats(
      common.ratios(rates['p2_wall'], rates['p1_wall']))
  out['pipeline_vs_read_only_ratio'] = common.stats(
      common.ratios(rates['p1'], rates['read_only']))
  out['setup'] = {'genome_1x_mb': genomes[1]['bases'] / 1e6,
                  'genome_16x_mb': genomes[16]['bases'] / 1e6, 'tracks': '2 bigWig',
                  'seq_length': 131072, 'pool_width': 128,
                  'throughput_windows': rates['windows'], 'memory_repeats': 1}
  return {'genome': out}


if __name__ == '__main__':
  if sys.argv[1] == 'memory':
    child_memory(*sys.argv[2:5])
  else:
    child_throughput(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
                     bool(int(sys.argv[6])))
