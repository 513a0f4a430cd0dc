r"""Intervals of a bedGraph or BED on disk, sorted by chromosome, read by random access.

A genome's bedGraph holds tens of millions of intervals: more than should sit in
memory. The builder streams them into one binary file per chromosome (start, end,
value, line), checking their order as they come; what stays in memory is a sparse
index, the start of every BLOCK-th interval. A query reads only the blocks its range
touches:

  builder = interval_store.Builder('index/', 'dnase', source='dnase.bedGraph')
  builder.add('chr1', 100, 200, 1.5, line=1)
  store = builder.finish()
  store.values('chr1', 150, 250)   # float32 [100]: 1.5 then NaN where no interval

Coverage intervals must not overlap (a bedGraph gives each base one value); mask
intervals (blacklist, umap) may, and are merged. A chromosome whose lines are not
sorted by start is sorted at the end in memory, one chromosome at a time: sorted
input (bedtools' output, `sort -k1,1 -k2,2n`) costs no memory at all.
"""

import dataclasses
import os
from typing import Dict, Tuple

import numpy as np

from estimator_pipeline.core.errors import UserError

ROW = np.dtype([('start', '<i8'), ('end', '<i8'), ('value', '<f4'), ('line', '<i8')])
# Intervals per block of the sparse index: a query reads whole blocks.
BLOCK = 4096
# Rows held in memory, over all chromosomes, before they are appended to their files.
_FLUSH_ROWS = 1 << 16


@dataclasses.dataclass
class IntervalStore:
  """Sorted, disjoint intervals per chromosome, in files under folder (picklable).

  Attributes:
    folder: Where the per-chromosome files are.
    name: Their name prefix.
    index: {chrom: (interval count, start of every BLOCK-th interval)}.
  """

  folder: str
  name: str
  index: Dict[str, Tuple[int, np.ndarray]]

  def path(self, chrom):
    return _chrom_path(self.folder, self.name, list(self.index).index(chrom))

  def rows(self, chrom, start, end):
    """The intervals that overlap [start, end), in order (ROW records)."""
    if chrom not in self.index or end <= start:
      return np.zeros(0, ROW)
    count, block_starts = self.index[chrom]
    # Intervals are sorted and disjoint, so ends are sorted too: every interval before
    # the block whose first start is <= start ends at or before start.
    first = max(0, int(np.searchsorted(block_starts, start, 'right')) - 1) * BLOCK
    last = min(count, int(np.searchsorted(block_starts, end, 'left')) * BLOCK)
    if last <= first:
      return np.zeros(0, ROW)
    with open(self.path(chrom), 'rb') as f:
      f.seek(first * ROW.itemsize)
      rows = np.fromfile(f, ROW, count=last - first)
    return rows[(rows['end'] > start) & (rows['start'] < end)]

  def values(self, chrom, start, end):
    """float32 [end - start]: each base's value, NaN where no interval covers it."""
    out = np.full(end - start, np.nan, np.float32)
    rows = self.rows(chrom, start, end)
    if len(rows):
      offsets, lengths = _clipped(rows, start, end)
      out[_positions(offsets, lengths)] = np.repeat(rows['value'], lengths)
    return out

  def covered(self, chrom, start, end):
    """bool [end - start]: which bases an interval covers."""
    out = np.zeros(end - start, bool)
    for offset, length in zip(*_clipped(self.rows(chrom, start, end), start, end)):
      out[offset:offset + length] = True
    return out

  def overlaps(self, chrom, start, end):
    """[(start, end)] of the intervals that overlap [start, end), clipped to it."""
    rows = self.rows(chrom, start, end)
    return [(max(int(a), start), min(int(b), end))
            for a, b in zip(rows['start'], rows['end'])]


def _clipped(rows, start, end):
  lo = np.maximum(rows['start'], start)
  hi = np.minimum(rows['end'], end)
  return lo - start, hi - lo


def _positions(offsets, lengths):
  """Every position of the runs [offset, offset + length), concatenated."""
  total = int(lengths.sum())
  run_starts = np.cumsum(lengths) - lengths
  return np.repeat(offsets - run_starts, lengths) + np.arange(total)


def _chrom_path(folder, name, number):
  return os.path.join(folder, '%s.%d.rows' % (name, number))


class _Chrom:
  """What the builder knows of one chromosome while rows stream in."""

  def __init__(self, number):
    self.number = number
    self.count = 0
    self.block_starts = []
    self.buffer = []
    self.last = None      # (start, end, value, line) of the last row kept
    self.pending = None   # masks: the interval being merged, not yet kept
    self.unsorted = False


class Builder:
  """Streams (chrom, start, end, value, line) rows into an IntervalStore.

  Args:
    folder: Folder for the files (created).
    name: Their name prefix, unique within folder.
    source: What errors call the input, e.g. '--coverage file x.bedGraph'.
    merge: Masks: overlapping or touching intervals are merged. Otherwise
      (coverage) an overlap is a UserError naming both lines.
  """

  def __init__(self, folder, name, source, merge=False):
    os.makedirs(folder, exist_ok=True)
    self._folder = folder
    self._name = name
    self._source = source
    self._merge = merge
    self._chroms = {}
    self._buffered = 0

  def add(self, chrom, start, end, value, line):
    state = self._chroms.get(chrom)
    if state is None:
      state = self._chroms[chrom] = _Chrom(len(self._chroms))
    row = (start, end, value, line)
    if state.unsorted:
      self._keep(state, row)
    elif self._merge:
      self._add_mask(state, row)
    else:
      last = state.last
      if last is not None and start < last[0]:
        state.unsorted = True
      elif last is not None and start < last[1]:
        raise self._overlap(chrom, last, row)
      self._keep(state, row)

  def _add_mask(self, state, row):
    pending = state.pending
    if pending is not None and row[0] < pending[0]:
      state.unsorted = True
      self._keep(state, pending)
      state.pending = None
      self._keep(state, row)
    elif pending is not None and row[0] <= pending[1]:
      state.pending = (pending[0], max(pending[1], row[1]), pending[2], pending[3])
    else:
      if pending is not None:
        self._keep(state, pending)
      state.pending = row

  def _keep(self, state, row):
    if state.count % BLOCK == 0:
      state.block_starts.append(row[0])
    state.count += 1
    state.last = row
    state.buffer.append(row)
    self._buffered += 1
    if self._buffered >= _FLUSH_ROWS:
      self._flush()

  def _flush(self):
    for state in self._chroms.values():
      if state.buffer:
        with open(_chrom_path(self._folder, self._name, state.number), 'ab') as f:
          np.array(state.buffer, ROW).tofile(f)
        state.buffer = []
    self._buffered = 0

  def _overlap(self, chrom, a, b):
    return UserError('%s lines %d and %d overlap on %s (%d-%d and %d-%d); a bedGraph '
                     'gives each base one value' % (self._source, a[3], b[3], chrom,
                                                   a[0], a[1], b[0], b[1]))

  def finish(self):
    """Writes what is buffered, sorts unsorted chromosomes; returns the store."""
    for state in self._chroms.values():
      if state.pending is not None:
        self._keep(state, state.pending)
        state.pending = None
    self._flush()
    index = {}
    for chrom, state in self._chroms.items():
      path = _chrom_path(self._folder, self._name, state.number)
      if state.unsorted:
        self._sort(chrom, path)
        rows = np.fromfile(path, ROW)
        index[chrom] = (len(rows), rows['start'][::BLOCK].copy())
      else:
        index[chrom] = (state.count, np.array(state.block_starts, np.int64))
    return IntervalStore(self._folder, self._name, index)

  def _sort(self, chrom, path):
    """Sorts a chromosome's rows in memory; merges masks, refuses coverage overlaps."""
    rows = np.fromfile(path, ROW)
    rows = rows[np.argsort(rows['start'], kind='stable')]
    if self._merge:
      # A new interval starts where a start passes every end before it.
      reach = np.maximum.accumulate(rows['end'])
      new = np.concatenate([[True], rows['start'][1:] > reach[:-1]])
      merged = rows[new].copy()
      merged['end'] = np.maximum.reduceat(rows['end'], np.flatnonzero(new))
      rows = merged
    else:
      clash = np.flatnonzero(rows['start'][1:] < rows['end'][:-1])
      if len(clash):
        a, b = sorted((rows[clash[0]], rows[clash[0] + 1]), key=lambda r: r['line'])
        raise self._overlap(chrom, tuple(a), tuple(b))
    rows.tofile(path)
