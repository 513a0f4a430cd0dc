"""The genome-side text files: BED regions and masks, bedGraph tracks, FASTA records.

Each reader names the file and line of the first thing wrong with its input (one
UserError, one line), reads plain or gzipped files, and streams: iter_bed and
iter_bedgraph yield one line at a time, read_fasta one chromosome at a time (the
converter itself reads FASTA by random access, see fasta_index.py):

  python -c "
  from estimator_pipeline.records import genome_files
  print(genome_files.read_bed('regions.bed')[:2])"
"""

import dataclasses
import gzip
import math
import os
import re
import zlib

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

SPLITS = ('train', 'valid', 'test')
_TRACK_DESCRIPTION = re.compile(rb'\bdescription=(?:"([^"]*)"|(\S+))')
_TRACK_NAME = re.compile(rb'\bname=(?:"([^"]*)"|(\S+))')
_SKIP = (b'#', b'track', b'browser')
_PROGRESS_LINES = 1 << 16


@dataclasses.dataclass(frozen=True)
class Region:
  """One BED line: 1-based line number, chromosome, 0-based half-open coordinates."""

  line: int
  chrom: str
  start: int
  end: int
  fold: str = ''


def window_of(region, seq_length):
  """The [start, end) window of seq_length bases centred on region (basenji's rule)."""
  mid = (region.start + region.end) // 2
  start = mid - seq_length // 2
  return start, start + seq_length


def iter_bed(path, flag='bed'):
  """Yields (line number, chrom, start, end, fields) of each interval of a BED file.

  Blank lines and `#`, `track` and `browser` lines are skipped.

  Raises:
    UserError: a missing file, or a malformed line (named by number).
  """
  with open_lines(path, flag) as f:
    for number, line in enumerate(f, 1):
      fields = line.rstrip(b'\r\n').split(b'\t')
      if len(fields) < 3:
        fields = line.split()
      if not line.strip() or fields[0].startswith(_SKIP):
        continue
      where = '--%s=%s line %d' % (flag, path, number)
      if len(fields) < 3:
        raise UserError('%s: expected chrom, start, end (tab-separated), got %r' % (
            where, line.strip()[:80].decode('utf-8', 'replace')))
      start, end = _int(fields[1], where, 'start'), _int(fields[2], where, 'end')
      if start < 0 or end <= start:
        raise UserError('%s: start %d and end %d must have 0 <= start < end' % (
            where, start, end))
      yield number, fields[0].strip().decode('utf-8', 'replace'), start, end, fields


def read_bed(path, by_fold=True):
  """Reads a BED file of regions; by_fold requires a train/valid/test 4th column.

  Raises:
    UserError: a missing file, or a malformed line (named by number).
  """
  regions = []
  for number, chrom, start, end, fields in iter_bed(path):
    fold = fields[3].strip().decode('utf-8', 'replace') if len(fields) > 3 else ''
    if by_fold and fold not in SPLITS:
      where = '--bed=%s line %d' % (path, number)
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


def track_line_description(line):
  """The description (or else the name) of a bedGraph `track` line, or ''."""
  found = _TRACK_DESCRIPTION.search(line) or _TRACK_NAME.search(line)
  text = (found.group(1) or found.group(2) or b'') if found else b''
  return text.decode('utf-8', 'replace').replace('\t', ' ').strip()


def iter_bedgraph(path, source, on_track_line=None, on_progress=None):
  """Yields (line number, chrom bytes, start, end, value) of each bedGraph line.

  source names the file in errors, e.g. '--coverage file x.bedGraph'; `track` lines
  go to on_track_line(line) instead; on_progress(bytes read) is called every
  _PROGRESS_LINES lines. Reads bytes: a genome's bedGraph has tens of millions of
  lines.

  Raises:
    UserError: a missing file, or a malformed line (named by number).
  """
  with open_lines(path, 'coverage') as f:
    for number, line in enumerate(f, 1):
      if on_progress and number % _PROGRESS_LINES == 0:
        on_progress(f.position())
      if line.startswith(_SKIP) or not line.strip():
        if on_track_line and line.startswith(b'track'):
          on_track_line(line)
        continue
      fields = line.split()
      if len(fields) < 4:
        raise UserError('%s line %d: expected chrom, start, end, value, got %r' % (
            source, number, line.strip()[:80].decode('utf-8', 'replace')))
      where = '%s line %d' % (source, number)
      start, end = _int(fields[1], where, 'start'), _int(fields[2], where, 'end')
      try:
        value = float(fields[3])
      except ValueError:
        value = math.nan
      if not math.isfinite(value):
        raise UserError('%s: value %r is not a finite number' % (
            where, fields[3][:40].decode('utf-8', 'replace')))
      if start < 0 or end <= start:
        raise UserError('%s: start %d and end %d must have 0 <= start < end' % (
            where, start, end))
      yield number, fields[0], start, end, value


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

  with open_lines(path, 'fasta') as f:
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


def open_lines(path, flag):
  """The byte lines of a plain, gzipped or bgzipped file, for `with ... as lines`;
  flag names the file in errors (e.g. 'vcf' for --vcf)."""
  return _Lines(path, flag)


class _Lines:
  """The byte lines of a plain or gzipped file; read errors become one-line UserErrors.

  position() is how far into the file (compressed bytes) reading has come.
  """

  def __init__(self, path, flag):
    _check_file(path, flag)
    self._path = path
    self._flag = flag
    try:
      self._raw = open(path, 'rb')
    except OSError as e:
      raise UserError('cannot read --%s file %s: %s' % (flag, path, e.strerror or e)) \
          from None
    self._file = gzip.GzipFile(fileobj=self._raw) if _is_gzip(path) else self._raw

  def position(self):
    return self._raw.tell()

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._file.close()
    self._raw.close()

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
    if isinstance(text, bytes):
      text = text.decode('utf-8', 'replace')
    raise UserError('%s: %s %r is not an integer' % (where, what, text.strip()[:40])) \
        from None


def as_list(value):
  """A comma-separated string or a sequence -> a list of non-empty items."""
  if value is None:
    return []
  if isinstance(value, str):
    return [v.strip() for v in value.split(',') if v.strip()]
  return list(value)
