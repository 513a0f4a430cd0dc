r"""Windows -> records: a window's bases and targets, .tfr files, the worker processes.

A record is one window of the genome: `sequence`, its bases as indices (N past a
chromosome's end), and `target`, its tracks binned as basenji_data_read.py does, over
the window less crop_bp bases at each end (the target region):

1. the track's per-base values; bases without a value (a bigWig's gaps, a bedGraph's
   uncovered bases, beyond the chromosome) are NaN;
2. blacklisted bases are clipped to [-b, b], b the median of the target region when
   it has no NaN and at least 8 bins, else 0;
3. NaN becomes b (which is 0 whenever there was a NaN);
4. everything is multiplied by `scale`;
5. each bin of pool_width bases is summarised by `sum_stat`: sum, mean (avg), max,
   median, sum_sqrt (-1 + sqrt(1 + sum)), mean_sqrt / avg_sqrt (the same of the
   mean), peak (min(1, sqrt(4 mean))); a negative value under a square root counts 0;
6. bins above `clip_soft` become clip_soft - 1 + sqrt(bin - clip_soft + 1);
7. bins are clipped to [-clip, clip], then to float16's range (those are counted);
8. with --umap and umap_clip < 1, unmappable bins are lowered to the window's
   umap_clip quantile per track (basenji_data_write.py).

Each .tfr file is one job. Jobs run here, or in worker processes started with
'spawn' (never fork: TensorFlow must not be forked once started) that do not import
TensorFlow at all (worker_bootstrap.py); a job's bytes do not depend on where it
ran, so the output is the same for any --processes.

  python -c "
  from estimator_pipeline.records import genome_windows
  print(genome_windows.bin_track.__doc__)"
"""

import concurrent.futures
import dataclasses
import multiprocessing
import pickle
import queue as queue_lib
import runpy
import sys
import time
from typing import Optional, Tuple

import numpy as np

from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import interval_store
from estimator_pipeline.records import record_file
from estimator_pipeline.records import tracks as tracks_lib
from estimator_pipeline.records import worker_bootstrap

_FLOAT16_MAX = float(np.finfo(np.float16).max)

# Seconds between looks at finished jobs and progress messages.
_POLL_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class WindowSpec:
  """Everything a worker needs to make records (picklable).

  Attributes:
    genome: fasta_index.Genome.
    tracks: targets_table.TrackSpec per target, kind (and store) set.
    seq_length, pool_width, crop_bp: The window and its bins.
    keys: The records' (sequence, target) keys (sequence_format's).
    blacklist: interval_store.IntervalStore of blacklisted bases, or None.
    umap: interval_store.IntervalStore of unmappable bases, or None.
    umap_clip: Quantile unmappable bins are lowered to; 1 leaves them.
  """

  genome: fasta_index.Genome
  tracks: Tuple[object, ...]
  seq_length: int
  pool_width: int
  crop_bp: int
  keys: Tuple[str, str]
  blacklist: Optional[interval_store.IntervalStore] = None
  umap: Optional[interval_store.IntervalStore] = None
  umap_clip: float = 1.0

  @property
  def target_length(self):
    return (self.seq_length - 2 * self.crop_bp) // self.pool_width


def _pool(stat, bins):
  if stat == 'sum':
    return bins.sum(axis=1, dtype=np.float32)
  if stat in ('mean', 'avg'):
    return bins.mean(axis=1, dtype=np.float32)
  if stat == 'sum_sqrt':
    return np.sqrt(np.maximum(1 + bins.sum(axis=1, dtype=np.float32), 0)) - 1
  if stat in ('mean_sqrt', 'avg_sqrt'):
    return np.sqrt(np.maximum(1 + bins.mean(axis=1, dtype=np.float32), 0)) - 1
  if stat == 'median':
    return np.median(bins, axis=1).astype(np.float32)
  if stat == 'max':
    return bins.max(axis=1)
  if stat == 'peak':
    return np.minimum(np.sqrt(np.maximum(4 * bins.mean(axis=1, dtype=np.float32), 0)),
                      1)
  raise ValueError('unknown sum_stat %r' % stat)


def bin_track(values, track, pool_width, blacklisted=None):
  """Steps 2-7 of the module docstring: per-base float32 values [T * pool_width] of
  the target region (changed in place) -> (float32 bins [T], bins clipped to float16).
  """
  nan = np.isnan(values)
  if blacklisted is not None and blacklisted.any():
    baseline = 0.0
    if len(values) // pool_width >= 8 and not nan.any():
      baseline = float(np.percentile(values, 50))
    values[blacklisted] = np.clip(values[blacklisted], -baseline, baseline)
  values[nan] = 0.0
  if track.scale != 1:
    values *= np.float32(track.scale)
  bins = _pool(track.sum_stat, values.reshape(-1, pool_width))
  if track.clip_soft is not None:
    over = bins > track.clip_soft
    bins[over] = track.clip_soft - 1 + np.sqrt(bins[over] - track.clip_soft + 1)
  if track.clip is not None:
    bins = np.clip(bins, -track.clip, track.clip)
  beyond = np.abs(bins) > _FLOAT16_MAX
  if beyond.any():
    bins = np.clip(bins, -_FLOAT16_MAX, _FLOAT16_MAX)
  return bins, int(beyond.sum())


def unmappable_bins(store, chrom, start, target_length, pool_width):
  """bool [T]: bins basenji_data.py calls unmappable (an overlap under a tenth of a
  bin at either end of an unmappable stretch does not count)."""
  mask = np.zeros(target_length, bool)
  for lo, hi in store.overlaps(chrom, start, start + target_length * pool_width):
    first = (lo - start) // pool_width
    last = -((start - hi) // pool_width)  # ceil
    if start + (first + 1) * pool_width - lo < 0.1 * pool_width:
      first += 1
    if hi - (start + (last - 1) * pool_width) < 0.1 * pool_width:
      last -= 1
    mask[first:last] = True
  return mask


class WindowReader:
  """Makes the records of one WindowSpec: opens the genome and the tracks once."""

  def __init__(self, spec):
    self.spec = spec
    self._genome = spec.genome.reader()
    self._tracks = [tracks_lib.TrackReader(t) for t in spec.tracks]

  def read(self, chrom, start, end):
    """(uint8 bases [L], float16 targets [T, num_targets], bins clipped to float16)."""
    spec = self.spec
    codes = self._genome.codes(chrom, start, end)
    lo, hi = start + spec.crop_bp, end - spec.crop_bp
    black = spec.blacklist.covered(chrom, lo, hi) if spec.blacklist else None
    targets = np.empty((spec.target_length, len(spec.tracks)), np.float32)
    clipped = 0
    for t, (reader, track) in enumerate(zip(self._tracks, spec.tracks)):
      targets[:, t], beyond = bin_track(reader.values(chrom, lo, hi), track,
                                        spec.pool_width, black)
      clipped += beyond
    targets = targets.astype(np.float16)
    if spec.umap is not None and spec.umap_clip < 1:
      unmap = unmappable_bins(spec.umap, chrom, lo, spec.target_length,
                              spec.pool_width)
      if unmap.any():
        null = np.percentile(targets, 100 * spec.umap_clip, axis=0).astype(np.float16)
        targets[unmap] = np.minimum(targets[unmap], null)
    return codes, targets, clipped

  def record(self, chrom, start, end):
    """(serialized tf.Example, bins clipped to float16)."""
    codes, targets, clipped = self.read(chrom, start, end)
    sequence_key, target_key = self.spec.keys
    return record_file.example_bytes(((sequence_key, codes.tobytes()),
                                      (target_key, targets.tobytes()))), clipped

  def close(self):
    self._genome.close()
    for reader in self._tracks:
      reader.close()


# The worker's reader and where it reports each window done (a queue or a callable).
_READER = None
_PROGRESS = None


def start_worker(spec, progress):
  """Opens this process's WindowReader; spec may be pickled (see worker_bootstrap)."""
  global _READER, _PROGRESS  # pylint: disable=global-statement
  if isinstance(spec, bytes):
    spec = pickle.loads(spec)
  _READER = WindowReader(spec)
  _PROGRESS = progress


def write_file(job):
  """Writes one .tfr file, job = (path, ((chrom, start, end), ...)); returns stats."""
  path, windows = job
  clipped = 0
  started = time.time()  # Wall clock: comparable between processes.
  unreported, reported_at = 0, time.monotonic()
  with record_file.RecordFile(path) as out:
    for chrom, start, end in windows:
      record, beyond = _READER.record(chrom, start, end)
      out.write(record)
      clipped += beyond
      unreported += 1
      # A queue message a window costs a worker a pickle and its feeder thread's
      # turn at the GIL; one every _POLL_SECONDS is as often as anyone looks.
      if time.monotonic() - reported_at >= _POLL_SECONDS:
        _report(unreported)
        unreported, reported_at = 0, time.monotonic()
  if unreported:
    _report(unreported)
  return {'count': len(windows), 'clipped': clipped, 'started': started,
          'finished': time.time(), 'tensorflow': 'tensorflow' in sys.modules,
          'peak_rss_kb': _peak_rss_kb()}


def _report(windows):
  if callable(_PROGRESS):
    _PROGRESS(windows)
  else:
    _PROGRESS.put(windows)


def _peak_rss_kb():
  """This process's own peak RSS (VmHWM), or 0 off Linux.

  Not getrusage: Linux carries a process's peak-RSS mark across fork and exec, so a
  worker spawned by a parent that holds TensorFlow would report the parent's size.
  """
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1])
  except OSError:
    pass
  return 0


def run_jobs(spec, jobs, processes, on_window):
  """Runs write_file on every job; on_window(n) counts windows done.

  processes <= 1 runs here; more start that many 'spawn' workers (fewer if there are
  fewer jobs), which never import TensorFlow. Returns (stats of each job, processes).
  """
  processes = min(processes, len(jobs))
  if processes <= 1:
    start_worker(spec, on_window)
    try:
      return [write_file(job) for job in jobs], 1
    finally:
      _READER.close()
  context = multiprocessing.get_context('spawn')
  progress = context.Queue()
  # The spec travels pickled, so that the worker unpickles it only after
  # worker_bootstrap has made the package importable without TensorFlow.
  init = {'SPEC': pickle.dumps(spec), 'PROGRESS': progress}
  counted = [0]

  def drain():
    count = 0
    while True:
      try:
        count += progress.get_nowait()
      except queue_lib.Empty:
        break
    if count:
      counted[0] += count
      on_window(count)

  with concurrent.futures.ProcessPoolExecutor(
      processes, mp_context=context, initializer=runpy.run_path,
      initargs=(worker_bootstrap.__file__, init, worker_bootstrap.RUN_NAME)) as pool:
    futures = [pool.submit(write_file, job) for job in jobs]
    try:
      pending = set(futures)
      while pending:
        done, pending = concurrent.futures.wait(pending, timeout=_POLL_SECONDS)
        for future in done:
          future.result()  # A worker's error stops the run here.
        drain()
    except BaseException:
      for future in futures:
        future.cancel()
      raise
  stats = [f.result() for f in futures]
  # A worker's last messages may still be in its queue's pipe: the files say it all.
  drain()
  missing = sum(s['count'] for s in stats) - counted[0]
  if missing > 0:
    on_window(missing)
  return stats, processes


def read_only(spec, windows):
  """Fetches and bins every window, writing nothing (the benchmark's ceiling).

  Returns the seconds it took.
  """
  reader = WindowReader(spec)
  start = time.perf_counter()
  try:
    for chrom, lo, hi in windows:
      reader.read(chrom, lo, hi)
  finally:
    reader.close()
  return time.perf_counter() - start
