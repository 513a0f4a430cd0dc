r"""A genome, regions and coverage tracks -> basenji TFRecords with their statistics.

  python -m estimator_pipeline.records sequences --fasta=genome.fa --bed=regions.bed \
      --coverage=track1.bedGraph,track2.bedGraph.gz --seq_length=131072 --pool_width=128 \
      --output_dir=data/

writes, in basenji's layout (what basenji_data.py makes and basenji's dataset.py reads):

  data/tfrecords/train-0.tfr, train-1.tfr, ...   --seqs_per_tfr records per file
  data/tfrecords/valid-0.tfr ..., data/tfrecords/test-0.tfr ...
  data/statistics.json   num_targets, seq_length, seq_1hot, pool_width, crop_bp,
                         target_length, train_seqs, valid_seqs, test_seqs
  data/targets.txt       index, identifier, file, clip, sum_stat, description (tabs)
  data/sequences.bed     chrom, start, end, split of every record, in record order

Every file is a ZLIB-compressed TFRecord of tf.train.Examples with two bytes features:
`sequence`, the seq_length base indices as uint8 (A0 C1 G2 T3, anything else N4), and
`target`, float16 [target_length, num_targets] in row-major order, where target_length =
(seq_length - 2 * crop_bp) / pool_width.

Each BED region is centred in a window of seq_length bases (a region of another length
is re-centred, as basenji does for peaks); bin i of a track is the sum (or mean, with
--sum_stat=mean) of the bedGraph's per-base values over the i-th pool_width bases of the
window after crop_bp bases are cut from both ends, then clipped to [-clip, clip]. Bases a
bedGraph does not cover count as 0.

The split comes from the BED's 4th column (train, valid or test), or, with
--valid_chroms/--test_chroms, from the chromosome (the rest is train). Regions on a
chromosome the FASTA does not have, or whose window runs past a chromosome's end, are
skipped and named by line number in the closing summary. FASTA and bedGraph files may be
gzipped. The FASTA is read once, front to back, holding one chromosome at a time;
records are written in FASTA chromosome order, then BED order. Everything is written
under a temporary folder inside --output_dir and moved into place at the end, so a
failed run leaves earlier output as it was. From Python:

  from estimator_pipeline.records import sequences
  print(sequences.convert_sequences('genome.fa', 'regions.bed', ['t1.bedGraph'],
                                    'data', seq_length=1024, pool_width=32).summary())
"""

import collections
import dataclasses
import gzip
import json
import math
import numbers
import os
import re
import shutil
import tempfile
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf

from estimator_pipeline import console
from estimator_pipeline.errors import UserError

# Defaults of convert_sequences (basenji_data.py's own); flags/records.py reads them.
DEFAULT_SEQ_LENGTH = 131072
DEFAULT_POOL_WIDTH = 128
DEFAULT_CROP_BP = 0
DEFAULT_SUM_STAT = 'sum'
DEFAULT_SEQS_PER_TFR = 256

SPLITS = ('train', 'valid', 'test')
SUM_STATS = ('sum', 'mean')
TFRECORDS_DIR = 'tfrecords'
STATISTICS_FILE = 'statistics.json'
TARGETS_FILE = 'targets.txt'
SEQUENCES_FILE = 'sequences.bed'
TARGETS_COLUMNS = ('index', 'identifier', 'file', 'clip', 'sum_stat', 'description')
SEQUENCE_KEY = 'sequence'
TARGET_KEY = 'target'
COMPRESSION = 'ZLIB'
# Base index of anything that is not A, C, G or T (basenji's dna_1hot_index).
N_INDEX = 4
# The summary names this many skipped regions; the result object holds all of them.
MAX_NAMED_SKIPS = 10

_FLOAT16_MAX = float(np.finfo(np.float16).max)
_TMP_PREFIX = '.sequences-tmp-'
_TRACK_DESCRIPTION = re.compile(r'\bdescription=(?:"([^"]*)"|(\S+))')
_TRACK_NAME = re.compile(r'\bname=(?:"([^"]*)"|(\S+))')
_BASE_INDEX = np.full(256, N_INDEX, dtype=np.uint8)
for _i, _b in enumerate(b'ACGT'):
  _BASE_INDEX[_b] = _i
  _BASE_INDEX[ord(chr(_b).lower())] = _i


def base_indices(dna):
  """basenji's dna_1hot_index: 'ACGTN' (str or bytes, any case) -> uint8 [0 1 2 3 4]."""
  if isinstance(dna, str):
    dna = dna.encode('ascii', 'replace')
  return _BASE_INDEX[np.frombuffer(dna, dtype=np.uint8)]


@dataclasses.dataclass(frozen=True)
class Region:
  """One BED line: 1-based line number, chromosome, 0-based half-open coordinates."""

  line: int
  chrom: str
  start: int
  end: int
  fold: str = ''


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A region that was not written, and why."""

  line: int
  chrom: str
  start: int
  end: int
  reason: str


@dataclasses.dataclass(frozen=True)
class SequenceConversionResult:
  """What convert_sequences wrote and what it skipped.

  Attributes:
    output_dir: The folder holding tfrecords/, statistics.json, targets.txt and
      sequences.bed.
    files: {split: paths of its .tfr files, in order}.
    counts: {split: records written}.
    statistics: The contents of statistics.json.
    skipped: The regions not written, in BED order.
  """

  output_dir: str
  files: Dict[str, Tuple[str, ...]]
  counts: Dict[str, int]
  statistics: Dict[str, object]
  skipped: Tuple[Skipped, ...]

  @property
  def num_written(self):
    return sum(self.counts.values())

  def summary_lines(self) -> List[str]:
    """The closing summary of the command, one fact per line."""
    num_files = sum(len(f) for f in self.files.values())
    lines = ['wrote %d %s (%s) of %d bp with %d %s x %d %s in %d .tfr %s to %s' % (
        self.num_written, _plural(self.num_written, 'sequence'),
        ', '.join('%s %d' % (s, self.counts[s]) for s in SPLITS),
        self.statistics['seq_length'], self.statistics['target_length'],
        _plural(self.statistics['target_length'], 'bin'), self.statistics['num_targets'],
        _plural(self.statistics['num_targets'], 'track'), num_files,
        _plural(num_files, 'file'), os.path.join(self.output_dir, TFRECORDS_DIR))]
    for split in ('valid', 'test'):
      if not self.counts[split]:
        lines.append('no %s sequences: give some regions the fold %r in --bed, or name '
                     'chromosomes with --%s_chroms' % (split, split, split))
    reasons = collections.Counter(s.reason.split(':')[0] for s in self.skipped)
    if self.skipped:
      lines.append('skipped %d %s (%s):' % (
          len(self.skipped), _plural(self.skipped, 'region'),
          ', '.join('%d %s' % (n, r) for r, n in sorted(reasons.items()))))
      for s in self.skipped[:MAX_NAMED_SKIPS]:
        lines.append('  line %d (%s:%d-%d): %s' % (s.line, s.chrom, s.start, s.end,
                                                   s.reason))
      if len(self.skipped) > MAX_NAMED_SKIPS:
        lines.append('  ... and %d more' % (len(self.skipped) - MAX_NAMED_SKIPS))
    else:
      lines.append('skipped 0 regions')
    return lines

  def summary(self) -> str:
    return '\n'.join(self.summary_lines())


@dataclasses.dataclass
class _Track:
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


def convert_sequences(fasta,
                      bed,
                      coverage,
                      output_dir,
                      seq_length=DEFAULT_SEQ_LENGTH,
                      pool_width=DEFAULT_POOL_WIDTH,
                      crop_bp=DEFAULT_CROP_BP,
                      sum_stat=DEFAULT_SUM_STAT,
                      clip=None,
                      identifiers=None,
                      valid_chroms=(),
                      test_chroms=(),
                      seqs_per_tfr=DEFAULT_SEQS_PER_TFR,
                      overwrite=False,
                      progress=True) -> SequenceConversionResult:
  """Writes basenji-layout records for bed's regions of fasta, with coverage as targets.

  Args:
    fasta: FASTA file of the genome (plain or .gz).
    bed: BED file of regions; a 4th column train/valid/test splits them unless
      valid_chroms or test_chroms are given.
    coverage: bedGraph files (plain or .gz), one per target track, in target order.
    output_dir: Folder for tfrecords/, statistics.json, targets.txt, sequences.bed.
    seq_length: Bases per sequence; regions are centred in windows this long.
    pool_width: Bases per target bin.
    crop_bp: Bases cut from each end of the window before binning the targets.
    sum_stat: 'sum' or 'mean' of the per-base values in a bin: one for every track,
      or a sequence with one per track.
    clip: None, a float, or one (float or None) per track: bins are clipped to
      [-clip, clip].
    identifiers: One name per track for targets.txt; default: the file names.
    valid_chroms: Chromosomes whose regions go to the valid split.
    test_chroms: Chromosomes whose regions go to the test split.
    seqs_per_tfr: Records per .tfr file.
    overwrite: Replace what an earlier run wrote into output_dir instead of refusing.
    progress: Show progress on stderr (a bar on a terminal, a line now and then
      elsewhere).

  Returns:
    A SequenceConversionResult.

  Raises:
    UserError: bad arguments, missing or malformed files, or output that exists.
  """
  coverage = _as_list(coverage)
  target_length = _check_arguments(fasta, bed, coverage, output_dir, seq_length,
                                   pool_width, crop_bp, seqs_per_tfr)
  sum_stats = _per_track('sum_stat', sum_stat, len(coverage), str)
  clips = _per_track('clip', clip, len(coverage), float)
  for stat in sum_stats:
    if stat not in SUM_STATS:
      raise UserError('--sum_stat=%s is not one of %s' % (stat, ', '.join(SUM_STATS)))
  for value in clips:
    if value is not None and not value > 0:
      raise UserError('--clip=%s must be positive' % value)
  if identifiers:
    identifiers = _as_list(identifiers)
    if len(identifiers) != len(coverage):
      raise UserError('--identifiers names %d tracks but --coverage has %d files' % (
          len(identifiers), len(coverage)))
  else:
    identifiers = _identifiers(coverage)
  valid_chroms, test_chroms = set(_as_list(valid_chroms)), set(_as_list(test_chroms))
  both = sorted(valid_chroms & test_chroms)
  if both:
    raise UserError('chromosome %s is in both --valid_chroms and --test_chroms; name '
                    'it in one of them' % both[0])

  regions = read_bed(bed, by_fold=not (valid_chroms or test_chroms))
  bed_chroms = {r.chrom for r in regions}
  for flag, chroms in (('valid_chroms', valid_chroms), ('test_chroms', test_chroms)):
    unknown = sorted(chroms - bed_chroms)
    if unknown:
      raise UserError('--%s names %s, which no region of --bed=%s is on (its '
                      'chromosomes: %s)' % (flag, unknown[0], bed,
                                            _name_some(sorted(bed_chroms))))

  def split_of(region):
    if valid_chroms or test_chroms:
      if region.chrom in test_chroms:
        return 'test'
      return 'valid' if region.chrom in valid_chroms else 'train'
    return region.fold

  tracks = [read_bedgraph(path, identifiers[i], sum_stats[i], clips[i], bed_chroms)
            for i, path in enumerate(coverage)]
  _prepare_output_dir(output_dir, overwrite)

  by_chrom = collections.defaultdict(list)
  for region in regions:
    by_chrom[region.chrom].append(region)
  temp_dir = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=output_dir)
  try:
    writer = _SplitWriter(os.path.join(temp_dir, TFRECORDS_DIR), seqs_per_tfr)
    skipped = []
    placed = []  # (chrom, start, end, split), in record order per split.
    meter = console.Progress(len(regions), 'writing sequences', unit='seq',
                             enabled=progress)
    fasta_chroms = {}
    try:
      for name, length, codes in read_fasta(fasta, wanted=bed_chroms):
        fasta_chroms[name] = length
        for region in by_chrom.get(name, ()):
          window = window_of(region, seq_length)
          if region.end > length or window[0] < 0 or window[1] > length:
            skipped.append(Skipped(region.line, region.chrom, region.start, region.end,
                                   'out of range: window %d-%d, %s has %d bp' % (
                                       window[0], window[1], name, length)))
          else:
            targets = _targets(tracks, name, window[0] + crop_bp, target_length,
                               pool_width, region)
            split = split_of(region)
            writer.write(split, _example(codes[window[0]:window[1]], targets))
            placed.append((name, window[0], window[1], split))
          meter.update()
      for region in regions:
        if region.chrom not in fasta_chroms:
          skipped.append(Skipped(region.line, region.chrom, region.start, region.end,
                                 'unknown chromosome: %s is not in --fasta'
                                 % region.chrom))
          meter.update()
    finally:
      meter.close()
      writer.close()
    skipped.sort(key=lambda s: s.line)
    _check_track_chroms(tracks, fasta_chroms, fasta)
    if not placed:
      raise UserError('no sequence written: all %d regions of --bed=%s were skipped '
                      '(e.g. line %d: %s)' % (len(regions), bed, skipped[0].line,
                                              skipped[0].reason))
    if not writer.counts['train']:
      raise UserError('no train sequences: every region written went to valid or test; '
                      'give some regions the fold train in --bed, or name fewer '
                      'chromosomes in --valid_chroms/--test_chroms')

    statistics = {
        'num_targets': len(tracks),
        'seq_length': seq_length,
        'seq_1hot': True,
        'pool_width': pool_width,
        'crop_bp': crop_bp,
        'target_length': target_length,
    }
    for split in SPLITS:
      statistics['%s_seqs' % split] = writer.counts[split]
    with open(os.path.join(temp_dir, STATISTICS_FILE), 'w') as f:
      json.dump(statistics, f, indent=4)
      f.write('\n')
    _write_targets(os.path.join(temp_dir, TARGETS_FILE), tracks)
    with open(os.path.join(temp_dir, SEQUENCES_FILE), 'w') as f:
      for split in SPLITS:
        f.writelines('%s\t%d\t%d\t%s\n' % p for p in placed if p[3] == split)
    files = _commit(temp_dir, output_dir, writer.names)
  finally:
    shutil.rmtree(temp_dir, ignore_errors=True)
  return SequenceConversionResult(
      output_dir=output_dir,
      files=files,
      counts=dict(writer.counts),
      statistics=statistics,
      skipped=tuple(skipped))


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
  """Reads a bedGraph (plain or .gz) into a _Track; keeps only chromosomes in keep.

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
  return _Track(path, identifier, sum_stat, clip, intervals, first_line,
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
      codes = base_indices(b''.join(chunks))
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


def _targets(tracks, chrom, start, target_length, pool_width, region):
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


def _example(codes, targets):
  feature = {
      SEQUENCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[np.ascontiguousarray(codes, dtype=np.uint8).tobytes()])),
      TARGET_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[np.ascontiguousarray(targets, dtype=np.float16).tobytes()])),
  }
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  return example.SerializeToString(deterministic=True)


class _SplitWriter:
  """ZLIB TFRecord writers per split, a new file every seqs_per_tfr records."""

  def __init__(self, folder, seqs_per_tfr):
    os.makedirs(folder)
    self._folder = folder
    self._seqs_per_tfr = seqs_per_tfr
    self._writers = {}
    self.counts = {split: 0 for split in SPLITS}
    self.names = {split: [] for split in SPLITS}
    self._options = tf.io.TFRecordOptions(compression_type=COMPRESSION)

  def write(self, split, record):
    if self.counts[split] % self._seqs_per_tfr == 0:
      if split in self._writers:
        self._writers.pop(split).close()
      name = '%s-%d.tfr' % (split, len(self.names[split]))
      self.names[split].append(name)
      self._writers[split] = tf.io.TFRecordWriter(os.path.join(self._folder, name),
                                                  self._options)
    self._writers[split].write(record)
    self.counts[split] += 1

  def close(self):
    for writer in self._writers.values():
      writer.close()
    self._writers = {}


def _write_targets(path, tracks):
  with open(path, 'w') as f:
    f.write('\t'.join(TARGETS_COLUMNS) + '\n')
    for index, track in enumerate(tracks):
      clip = '' if track.clip is None else '%g' % track.clip
      f.write('%d\t%s\t%s\t%s\t%s\t%s\n' % (index, track.identifier, track.path, clip,
                                            track.sum_stat,
                                            track.description or track.identifier))


def _check_track_chroms(tracks, fasta_chroms, fasta):
  for track in tracks:
    for chrom, number in sorted(track.first_line.items(), key=lambda kv: kv[1]):
      if chrom not in fasta_chroms:
        raise UserError('--coverage file %s line %d: chromosome %s is not in --fasta=%s '
                        '(its chromosomes: %s); is it for another genome?' % (
                            track.path, number, chrom, fasta,
                            _name_some(list(fasta_chroms))))


def _prepare_output_dir(output_dir, overwrite):
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UserError('--output_dir=%s is a file; pass a folder' % output_dir)
  ours = [name for name in (TFRECORDS_DIR, STATISTICS_FILE, TARGETS_FILE, SEQUENCES_FILE)
          if os.path.exists(os.path.join(output_dir, name))]
  if ours and not overwrite:
    raise UserError('--output_dir=%s already holds %s; pass --overwrite to replace them '
                    'or pick another --output_dir' % (output_dir, ', '.join(ours)))
  try:
    os.makedirs(output_dir, exist_ok=True)
  except OSError as e:
    raise UserError('cannot create --output_dir=%s: %s' % (output_dir, e.strerror or e))
  if not os.access(output_dir, os.W_OK):
    raise UserError('cannot write to --output_dir=%s: permission denied' % output_dir)
  # Temporary folders of a killed run.
  for name in os.listdir(output_dir):
    if name.startswith(_TMP_PREFIX):
      shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def _commit(temp_dir, output_dir, names):
  """Moves temp_dir's output into output_dir; returns {split: final .tfr paths}."""
  final_records = os.path.join(output_dir, TFRECORDS_DIR)
  old = None
  if os.path.exists(final_records):
    old = os.path.join(temp_dir, 'old-' + TFRECORDS_DIR)
    os.replace(final_records, old)
  os.replace(os.path.join(temp_dir, TFRECORDS_DIR), final_records)
  for name in (STATISTICS_FILE, TARGETS_FILE, SEQUENCES_FILE):
    os.replace(os.path.join(temp_dir, name), os.path.join(output_dir, name))
  return {split: tuple(os.path.join(final_records, n) for n in names[split])
          for split in SPLITS}


def _check_arguments(fasta, bed, coverage, output_dir, seq_length, pool_width, crop_bp,
                     seqs_per_tfr):
  """Raises UserError for bad arguments; returns target_length."""
  for flag, path, example in (('fasta', fasta, 'genome.fa'),
                              ('bed', bed, 'regions.bed')):
    if not path:
      raise UserError('--%s is required, e.g. --%s=%s' % (flag, flag, example))
  if not coverage:
    raise UserError('--coverage is required: one bedGraph per target track, e.g. '
                    '--coverage=track1.bedGraph,track2.bedGraph')
  if not output_dir:
    raise UserError('--output_dir is required: the folder for tfrecords/, '
                    'statistics.json and targets.txt, e.g. --output_dir=data/')
  for name, value in (('seq_length', seq_length), ('pool_width', pool_width),
                      ('seqs_per_tfr', seqs_per_tfr)):
    if not _is_int(value) or value < 1:
      raise UserError('--%s=%s must be a positive integer' % (name, value))
  if not _is_int(crop_bp) or crop_bp < 0:
    raise UserError('--crop_bp=%s must be a non-negative integer' % (crop_bp,))
  cropped = seq_length - 2 * crop_bp
  if cropped <= 0:
    raise UserError('--crop_bp=%d cuts all of --seq_length=%d (2 * crop_bp must be less '
                    'than seq_length)' % (crop_bp, seq_length))
  if cropped % pool_width:
    raise UserError('--seq_length=%d minus 2 * --crop_bp=%d is %d, not a multiple of '
                    '--pool_width=%d; change one so the bins tile it' % (
                        seq_length, crop_bp, cropped, pool_width))
  return cropped // pool_width


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


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_list(value):
  if value is None:
    return []
  if isinstance(value, str):
    return [v.strip() for v in value.split(',') if v.strip()]
  return list(value)


def _plural(count, word):
  if not isinstance(count, int):
    count = len(count)
  return word if count == 1 else word + 's'


def _name_some(names, limit=5):
  names = list(names)
  shown = ', '.join(str(n) for n in names[:limit])
  return shown + (', ...' if len(names) > limit else '')
