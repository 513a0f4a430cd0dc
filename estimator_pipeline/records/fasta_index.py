r"""A genome FASTA read by random access through its .fai index (pysam).

Nothing holds the genome: windows are fetched as they are needed, contigs are found
by reading each chromosome in chunks. The .fai index is written beside the FASTA when
it is missing (into the run's temporary folder when that folder is read-only), and an
index that does not match its FASTA is refused. A plain-gzip FASTA cannot be read by
random access: it is unpacked into the temporary folder first; a bgzip one is read as
it is.

  python -c "
  from estimator_pipeline.records import fasta_index
  genome = fasta_index.open_genome('genome.fa', '/tmp')
  print(genome.lengths, genome.reader().codes('chr1', -2, 8))"
"""

import contextlib
import dataclasses
import gzip
import os
import shutil
import sys
import tempfile
from typing import Dict, Optional

import numpy as np
import pysam

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

_CHUNK = 1 << 22  # Bases per read while scanning for runs of N.
_LETTERS = frozenset(b'ACGTNacgtnRYKMSWBDHVryk msw bdhv-*'.replace(b' ', b''))


@dataclasses.dataclass(frozen=True)
class Genome:
  """An indexed FASTA (picklable: worker processes open their own reader).

  Attributes:
    fasta: The FASTA as the user named it (for messages).
    path: The file read: the FASTA, or its unpacked copy.
    index: Its .fai.
    gzi: The .gzi of a bgzip FASTA, else None.
    lengths: {chromosome: length}, in FASTA order.
  """

  fasta: str
  path: str
  index: str
  gzi: Optional[str]
  lengths: Dict[str, int]

  def reader(self):
    return GenomeReader(self)


class GenomeReader:
  """Fetches windows of one Genome; anything outside a chromosome is N."""

  def __init__(self, genome):
    self.genome = genome
    pysam.set_verbosity(0)  # An index older than its FASTA is checked by content.
    self._fasta = pysam.FastaFile(genome.path, filepath_index=genome.index,
                                  filepath_index_compressed=genome.gzi)

  def text(self, chrom, start, end):
    """The FASTA's own text of [start, end) of chrom (inside the chromosome)."""
    return self._fasta.fetch(chrom, start, end)

  def codes(self, chrom, start, end):
    """uint8 base indices [end - start] (A0 C1 G2 T3 N4), N past either end."""
    length = self.genome.lengths[chrom]
    lo, hi = max(0, start), min(length, end)
    inner = dna.indices(self._fasta.fetch(chrom, lo, hi)) if hi > lo else \
        np.zeros(0, np.uint8)
    if lo == start and hi == end:
      return inner
    out = np.full(end - start, dna.N_INDEX, np.uint8)
    if hi > lo:
      out[lo - start:hi - start] = inner
    return out

  def close(self):
    self._fasta.close()


def open_genome(fasta, work_dir):
  """Checks fasta, indexes it if needed, and returns its Genome.

  Raises:
    UserError: a missing or unreadable file, text that is not FASTA, a layout samtools
      cannot index, a repeated name, or a .fai that does not match the FASTA.
  """
  if not fasta:
    raise UserError('--fasta is required, e.g. --fasta=genome.fa')
  if not os.path.exists(fasta):
    raise UserError('--fasta file %s does not exist' % fasta)
  if os.path.isdir(fasta):
    raise UserError('--fasta=%s is a folder; pass a file' % fasta)
  path, gzi = fasta, None
  try:
    with open(fasta, 'rb') as f:
      head = f.read(18)
  except OSError as e:
    raise UserError('cannot read --fasta file %s: %s' % (fasta, e.strerror or e)) \
        from None
  if head[:2] == b'\x1f\x8b':
    if len(head) >= 16 and head[3] & 4 and head[12:14] == b'BC':  # bgzip's extra field
      gzi = fasta + '.gzi'
    else:
      path = _unpack(fasta, work_dir)
  _check_starts_with_header(fasta, path)
  index = path + '.fai'
  if not os.path.exists(index) or (gzi and not os.path.exists(gzi)):
    if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
      index = os.path.join(work_dir, os.path.basename(path) + '.fai')
      gzi = gzi and os.path.join(work_dir, os.path.basename(path) + '.gzi')
    _build_index(fasta, path, index, gzi)
  entries = _read_index(index)
  if gzi is None:
    _check_index(fasta, path, index, entries)
  genome = Genome(fasta, path, index, gzi, {e[0]: e[1] for e in entries})
  if gzi is not None:
    _check_index_by_fetch(genome, entries)
  return genome


def _unpack(fasta, work_dir):
  path = os.path.join(work_dir, os.path.basename(fasta)[:-3] if fasta.endswith('.gz')
                      else os.path.basename(fasta) + '.fa')
  try:
    with gzip.open(fasta, 'rb') as src, open(path, 'wb') as dst:
      shutil.copyfileobj(src, dst, 1 << 22)
  except (OSError, EOFError) as e:
    raise UserError('cannot read --fasta file %s: %s (a damaged or truncated gzip?)'
                    % (fasta, e)) from None
  return path


def _check_starts_with_header(fasta, path):
  with open(path, 'rb') as f:
    for number, line in enumerate(f, 1):
      if line.strip():
        if not line.startswith(b'>'):
          raise UserError('--fasta=%s line %d: sequence before the first >header; is '
                          'it a FASTA file?' % (fasta, number))
        return
  raise UserError('--fasta=%s has no sequences (no line starts with >)' % fasta)


@contextlib.contextmanager
def stderr_lines():
  """Collects what C libraries write to file descriptor 2 meanwhile."""
  sys.stderr.flush()
  saved = os.dup(2)
  lines = []
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield lines
    finally:
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      lines.extend(captured.read().decode('utf-8', 'replace').splitlines())


def _build_index(fasta, path, index, gzi):
  args = [path, '--fai-idx', index] + (['--gzi-idx', gzi] if gzi else [])
  previous = pysam.set_verbosity(3)
  try:
    with stderr_lines() as lines:
      try:
        pysam.faidx(*args)
        failed = False
      except (pysam.utils.SamtoolsError, OSError):
        failed = True
  finally:
    pysam.set_verbosity(previous)
  for line in lines:
    if 'duplicate sequence' in line:
      name = line.split('"')[1] if '"' in line else line.split()[-1]
      _remove(index, gzi)
      raise UserError('--fasta=%s: sequence %s appears twice; names must be unique'
                      % (fasta, name))
  if failed:
    _remove(index, gzi)
    problem = next((l.split('] ', 1)[-1] for l in lines if l.startswith('[E::')),
                   'samtools faidx failed')
    raise UserError('--fasta=%s cannot be indexed: %s; every line of a sequence must '
                    'be as long as its first, but the last (re-wrap it, e.g. with '
                    '`seqtk seq -l 60`)' % (fasta, problem))


def _remove(*paths):
  for p in paths:
    if p and os.path.exists(p):
      os.remove(p)


def _read_index(index):
  entries = []
  with open(index) as f:
    for number, line in enumerate(f, 1):
      fields = line.rstrip('\n').split('\t')
      try:
        name, numbers = fields[0], [int(x) for x in fields[1:5]]
        if len(numbers) != 4 or not name:
          raise ValueError
      except ValueError:
        raise UserError('%s line %d is not a .fai line (name, length, offset, line '
                        'bases, line width); delete it and it is written again'
                        % (index, number)) from None
      entries.append((name, *numbers))
  if not entries:
    raise UserError('%s lists no sequence; delete it and it is written again' % index)
  return entries


def _check_index(fasta, path, index, entries):
  """Refuses a .fai whose offsets and lengths do not land where its FASTA's do."""
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    for i, (name, length, offset, line_bases, line_width) in enumerate(entries):
      problem = _entry_problem(f, size, name, length, offset, line_bases, line_width)
      if not problem and i == len(entries) - 1 and f.read(4096).strip():
        problem = 'the file goes on after it, the last sequence the index lists'
      if problem:
        raise UserError('%s does not match --fasta=%s (%s: %s); it is from another '
                        'version of the file: delete it and it is written again'
                        % (index, fasta, name, problem))


def _entry_problem(f, size, name, length, offset, line_bases, line_width):
  if not 0 < offset <= size or (length and not 0 < line_bases < line_width):
    return 'offset or line lengths out of range'
  back = min(offset, len(name) + 4096)
  f.seek(offset - back)
  before = f.read(back)
  header = before[:-1].rsplit(b'\n', 1)[-1].rstrip(b'\r')
  label = b'>' + name.encode()
  if not before.endswith(b'\n') or not (
      header == label or header.startswith(label + b' ') or
      header.startswith(label + b'\t')):
    return 'no >%s header before offset %d' % (name, offset)
  if not length:
    return None
  full, rest = divmod(length, line_bases)
  # Just past the last base: a full last line ends line_width - line_bases earlier.
  end = offset + full * line_width + rest - (0 if rest else line_width - line_bases)
  if end > size:
    return 'the file ends before base %d' % length
  f.seek(end - 1)
  tail = f.read(line_width - line_bases + 2)
  if not tail or tail[0] not in _LETTERS or tail[1:2] not in (b'\n', b'\r', b''):
    return 'the sequence does not end after %d bases' % length
  if tail[1:].lstrip(b'\r\n')[:1] not in (b'', b'>'):
    return 'the sequence goes on past %d bases' % length
  return None


def _check_index_by_fetch(genome, entries):
  """A bgzip FASTA's .fai: each sequence's first and last line must be bases."""
  reader = genome.reader()
  try:
    for name, length, _, line_bases, _ in entries:
      ends = (reader.text(name, 0, min(length, 2 * line_bases)),
              reader.text(name, max(0, length - line_bases), length))
      if any(set(e.encode()) - _LETTERS for e in ends):
        raise UserError('%s does not match --fasta=%s (%s holds text that is not '
                        'bases); delete it and the .gzi, and they are written again'
                        % (genome.index, genome.fasta, name))
  finally:
    reader.close()


def find_contigs(genome, gap_min, progress=None):
  """[(chrom, start, end)] of the stretches between runs of >= gap_min N, in order.

  Each chromosome is read in chunks of _CHUNK bases; progress(bases) is called after
  each.
  """
  reader = genome.reader()
  contigs = []
  try:
    for chrom, length in genome.lengths.items():
      gaps = _n_runs(reader, chrom, length, gap_min, progress)
      edges = [0] + [x for gap in gaps for x in gap] + [length]
      contigs.extend((chrom, a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a)
  finally:
    reader.close()
  return contigs


def _n_runs(reader, chrom, length, gap_min, progress):
  """[(start, end)] of every run of N at least gap_min long on chrom."""
  runs, open_start = [], None  # open_start: a run that reaches the chunk's end
  for lo in range(0, length, _CHUNK):
    hi = min(length, lo + _CHUNK)
    is_n = reader.codes(chrom, lo, hi) == dna.N_INDEX
    if open_start is not None and not is_n[0]:
      if lo - open_start >= gap_min:
        runs.append((open_start, lo))
      open_start = None
    change = np.flatnonzero(np.diff(is_n.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [hi - lo]])
    for a, b in zip(bounds[:-1], bounds[1:]):
      if not is_n[a]:
        continue
      start = open_start if a == 0 and open_start is not None else lo + a
      open_start = None
      if b == hi - lo and hi < length:
        open_start = start
      elif lo + b - start >= gap_min:
        runs.append((start, lo + b))
    if progress:
      progress(hi - lo)
  return runs
