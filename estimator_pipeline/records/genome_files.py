"""The genome-side files of the sequence converter: BED regions, bedGraph tracks, FASTA.

Each reader names the file and line of the first thing wrong with its input (one
UserError, one line), reads plain or gzipped files, and holds no more than it must:
read_fasta yields one chromosome at a time, read_bedgraph keeps only the chromosomes
asked for:

  python -c "
  from estimator_pipeline.records import genome_files
  print(genome_files.read_bed('regions.bed')[:2])"
"""

import collections
import dataclasses
import gzip
import math
import numbers
import os
import re
import zlib
from typing import Dict, Optional, Tuple

import numpy as np

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

SPLITS = ('train', 'valid', 'test')
SUM_STATS = ('sum', 'mean')
_FLOAT16_MAX = float(np.finfo(np.float16).max)
_TRACK_DESCRIPTION = re.compile(r'\bdescription=(?:"([^"]*)"|(\S+))')
_TRACK_NAME = re.compile(r'\bname=(?:"([^"]*)"|(\S+))')


@dataclasses.dataclass(frozen=True)
class Region:
  """One BED line: 1-based line number, chromosome, 0-based half-open coordinates."""

  line: int
  chrom: str
  start: int
  end: int
  fold: str = ''


@dataclasses.dataclass
class Track:
  """One bedGraph, kept as sorted intervals per chromosome with a running integral."""

  path: str
  identifier: str
  sum_stat: str
  clip: Optional[float]
  # chrom -> (starts, ends, values, cumulative sum of value * length before each).
  intervals: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
  # chrom -> first line naming it, for every chromosome of the file (kept or not).
  first_line: Dict[str, int]
  # From the bedGraph's `track ... description="..."` line, if it has one.
  description: str = ''

  def bin_sums(self, chrom, edges):
    """Sums of the per-base values between consecutive edges (int array, sorted)."""
    if chrom not in self.intervals:
      return np.zeros(len(edges) - 1)
    starts, ends, values, cumulative = self.intervals[chrom]
    # Intervals are sorted and disjoint: the integral up to x is every interval that
    # starts before x in full, except the last one, which counts up to x only.
    k = np.searchsorted(starts, edges, side='left')
    last = np.maximum(k - 1, 0)
    partial = values[last] * np.clip(edges - starts[last], 0, ends[last] - starts[last])
    integral = np.where(k > 0, cumulative[last] + partial, 0.0)
    return np.diff(integral)


def window_of(region, seq_length):
  """The [start, end) window of seq_length bases centred on region (basenji's rule)."""
  mid = (region.start + region.end) // 2
  start = mid - seq_length // 2
  return start, start + seq_length


def read_bed(path, by_fold=True):
  """Reads a BED file of regions; by_fold requires a train/valid/test 4th column.

  Blank lines and `#`, `track` and `browser` lines are ignored.

  Raises:
    UserError: a missing file, or a malformed line (named by number).
  """
  regions = []
  with _open_text(path, 'bed') as f:
    for number, line in enumerate(f, 1):
      fields = line.rstrip('\r\n').split('\t')
      if len(fields) < 3:
        fields = line.split()
      if not line.strip() or fields[0].startswith(('#', 'track', 'browser')):
        continue
      where = '--bed=%s line %d' % (path, number)
      if len(fields) < 3:
        raise UserError('%s: expected chrom, start, end (tab-separated), got %r' % (
            where, line.strip()[:80]))
      chrom = fields[0].strip()
      start, end = _int(fields[1], where, 'start'), _int(fields[2], where, 'end')
      if start < 0 or end <= start:
        raise UserError('%s: start %d and end %d must have 0 <= start < end' % (
            where, start, end))
      fold = fields[3].strip() if len(fields) > 3 else ''
      if by_fold and fold not in SPLITS:
        if not fold:
          raise UserError('%s has no 4th (fold) column: give every region one of %s, '
                          'or split by chromosome with --valid_chroms/--test_chroms'
                          % (where, '/'.join(SPLITS)))
        raise UserError('%s: fold %r is not one of %s; or split by chromosome with '
                        '--valid_chroms/--test_chroms' % (where, fold[:40],
                                                         '/'.join(SPLITS)))
      regions.append(Region(number, chrom, start, end, fold if by_fold else ''))
  if not regions:
    raise UserError('--bed=%s has no regions' % path)
  return regions


def read_bedgraph(path, identifier='', sum_stat='sum', clip=None, keep=None):
  """Reads a bedGraph (plain or .gz) into a Track; keeps only chromosomes in keep.

  Raises:
    UserError: a missing file, a malformed line, or overlapping intervals.
  """
  rows = collections.defaultdict(list)
  first_line = {}
  description = ''
  with _open_text(path, 'coverage') as f:
    for number, line in enumerate(f, 1):
      if line.startswith('track') and not description:
        found = _TRACK_DESCRIPTION.search(line) or _TRACK_NAME.search(line)
        description = (found.group(1) or found.group(2) or '') if found else ''
      if not line.strip() or line.startswith(('#', 'track', 'browser')):
        continue
      fields = line.split()
      where = '--coverage file %s line %d' % (path, number)
      if len(fields) < 4:
        raise UserError('%s: expected chrom, start, end, value, got %r' % (
            where, line.strip()[:80]))
      chrom = fields[0]
      if chrom not in first_line:
        first_line[chrom] = number
      start, end = _int(fields[1], where, 'start'), _int(fields[2], where, 'end')
      try:
        value = float(fields[3])
      except ValueError:
        value = float('nan')
      if not math.isfinite(value):
        raise UserError('%s: value %r is not a finite number' % (where, fields[3][:40]))
      if start < 0 or end <= start:
        raise UserError('%s: start %d and end %d must have 0 <= start < end' % (
            where, start, end))
      if keep is None or chrom in keep:
        rows[chrom].append((start, end, value, number))
  intervals = {}
  for chrom, chrom_rows in rows.items():
    chrom_rows.sort()
    for a, b in zip(chrom_rows, chrom_rows[1:]):
      if b[0] < a[1]:
        raise UserError('--coverage file %s lines %d and %d overlap on %s (%d-%d and '
                        '%d-%d); a bedGraph gives each base one value' % (
                            path, min(a[3], b[3]), max(a[3], b[3]), chrom, a[0], a[1],
                            b[0], b[1]))
    table = np.array([r[:3] for r in chrom_rows], dtype=np.float64)
    starts, ends = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
    values = table[:, 2]
    areas = values * (ends - starts)
    cumulative = np.concatenate([[0.0], np.cumsum(areas)[:-1]])
    intervals[chrom] = (starts, ends, values, cumulative)
  return Track(path, identifier, sum_stat, clip, intervals, first_line,
                description.replace('\t', ' ').strip())


def read_fasta(path, wanted=None):
  """Yields (name, length, uint8 base indices or None) per FASTA record, in file order.

  Only one record is in memory at a time, and only records whose name is in wanted
  (all when None) are decoded; the others are counted and dropped line by line. The
  name is the header's first word.

  Raises:
    UserError: a missing file, text before the first header, an empty or repeated name.
  """
  seen = set()
  name, chunks, length = None, [], 0

  def finish():
    codes = None
    if name is not None and (wanted is None or name in wanted):
      codes = dna.indices(b''.join(chunks))
    return name, length, codes

  with _open_binary(path, 'fasta') as f:
    for number, line in enumerate(f, 1):
      if line.startswith(b'>'):
        if name is not None:
          yield finish()
        words = line[1:].split()
        if not words:
          raise UserError('--fasta=%s line %d: a header without a name' % (path, number))
        name = words[0].decode('utf-8', 'replace')
        if name in seen:
          raise UserError('--fasta=%s line %d: sequence %s appears twice (first at an '
                          'earlier header); names must be unique' % (path, number, name))
        seen.add(name)
        chunks, length = [], 0
        continue
      bases = line.strip()
      if not bases:
        continue
      if name is None:
        raise UserError('--fasta=%s line %d: sequence before the first >header; is it '
                        'a FASTA file?' % (path, number))
      length += len(bases)
      if wanted is None or name in wanted:
        chunks.append(bases)
  if name is None:
    raise UserError('--fasta=%s has no sequences (no line starts with >)' % path)
  yield finish()


def _open_text(path, flag):
  return _Lines(path, flag, binary=False)


def _open_binary(path, flag):
  return _Lines(path, flag, binary=True)


class _Lines:
  """The lines of a plain or gzipped file; read errors become one-line UserErrors."""

  def __init__(self, path, flag, binary):
    _check_file(path, flag)
    self._path = path
    self._flag = flag
    try:
      if _is_gzip(path):
        self._file = gzip.open(path, 'rb' if binary else 'rt', **(
            {} if binary else {'encoding': 'utf-8', 'errors': 'replace'}))
      elif binary:
        self._file = open(path, 'rb')
      else:
        self._file = open(path, encoding='utf-8', errors='replace')
    except OSError as e:
      raise UserError('cannot read --%s file %s: %s' % (flag, path, e.strerror or e)) \
          from None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._file.close()

  def __iter__(self):
    try:
      yield from self._file
    except (OSError, EOFError, zlib.error) as e:
      raise UserError('cannot read --%s file %s: %s (a damaged or truncated file?)' % (
          self._flag, self._path, e)) from None


def _check_file(path, flag):
  if not os.path.exists(path):
    raise UserError('--%s file %s does not exist' % (flag, path))
  if os.path.isdir(path):
    raise UserError('--%s=%s is a folder; pass a file' % (flag, path))


def _is_gzip(path):
  with open(path, 'rb') as f:
    return f.read(2) == b'\x1f\x8b'


def _int(text, where, what):
  try:
    return int(text)
  except ValueError:
    raise UserError('%s: %s %r is not an integer' % (where, what, text.strip()[:40])) \
        from None


def track_options(coverage, identifiers, sum_stat, clip):
  """(identifiers, sum_stats, clips), one of each per track, checked."""
  sum_stats = _per_track('sum_stat', sum_stat, len(coverage), str)
  clips = _per_track('clip', clip, len(coverage), float)
  for stat in sum_stats:
    if stat not in SUM_STATS:
      raise UserError('--sum_stat=%s is not one of %s' % (stat, ', '.join(SUM_STATS)))
  for value in clips:
    if value is not None and not value > 0:
      raise UserError('--clip=%s must be positive' % value)
  if identifiers:
    identifiers = as_list(identifiers)
    if len(identifiers) != len(coverage):
      raise UserError('--identifiers names %d tracks but --coverage has %d files' % (
          len(identifiers), len(coverage)))
  else:
    identifiers = _identifiers(coverage)
  return identifiers, sum_stats, clips


def _per_track(name, value, num_tracks, kind):
  """A flag value for every track: one for all, or a list with one per track."""
  if value is None or isinstance(value, (str, numbers.Real)):
    values = [value] * num_tracks if not isinstance(value, str) or ',' not in value \
        else value.split(',')
  else:
    values = list(value)
  if len(values) == 1:
    values = values * num_tracks
  if len(values) != num_tracks:
    raise UserError('--%s has %d values but --coverage has %d files; give one value or '
                    'one per file' % (name, len(values), num_tracks))
  out = []
  for v in values:
    if isinstance(v, str):
      v = v.strip()
      if v in ('', 'none', 'None'):
        v = None
    if v is not None and kind is float:
      try:
        v = float(v)
      except ValueError:
        raise UserError('--%s=%s is not a number' % (name, v)) from None
    out.append(v)
  return out


def _identifiers(paths):
  names = []
  for path in paths:
    base = os.path.basename(path)
    for ext in ('.gz', '.bedGraph', '.bedgraph', '.bdg', '.bg', '.txt'):
      if base.endswith(ext) and len(base) > len(ext):
        base = base[:-len(ext)]
    names.append(base)
  # Two files called cov.bedGraph in different folders keep apart by their index.
  counts = collections.Counter(names)
  return [n if counts[n] == 1 else '%s_%d' % (n, i) for i, n in enumerate(names)]


def window_targets(tracks, chrom, start, target_length, pool_width, region):
  edges = start + pool_width * np.arange(target_length + 1, dtype=np.int64)
  targets = np.zeros((target_length, len(tracks)), dtype=np.float32)
  for t, track in enumerate(tracks):
    values = track.bin_sums(chrom, edges)
    if track.sum_stat == 'mean':
      values = values / pool_width
    if track.clip is not None:
      values = np.clip(values, -track.clip, track.clip)
    peak = float(np.max(np.abs(values))) if len(values) else 0.0
    if peak > _FLOAT16_MAX:
      raise UserError('--coverage file %s: a bin of --bed line %d (%s:%d-%d) is %g, '
                      'beyond float16 (%g); pass --clip, or --sum_stat=mean' % (
                          track.path, region.line, chrom, region.start, region.end,
                          peak, _FLOAT16_MAX))
    targets[:, t] = values
  return targets.astype(np.float16)


def as_list(value):
  """A comma-separated string or a sequence -> a list of non-empty items."""
  if value is None:
    return []
  if isinstance(value, str):
    return [v.strip() for v in value.split(',') if v.strip()]
  return list(value)
