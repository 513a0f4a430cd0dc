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
import numbers
import os
import shutil
import tempfile
from typing import Dict, List, Tuple


from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import sequence_output

# Defaults of convert_sequences (basenji_data.py's own); flags/records.py reads them.
DEFAULT_SEQ_LENGTH = 131072
DEFAULT_POOL_WIDTH = 128
DEFAULT_CROP_BP = 0
DEFAULT_SUM_STAT = 'sum'
DEFAULT_SEQS_PER_TFR = 256

SPLITS = genome_files.SPLITS
SUM_STATS = genome_files.SUM_STATS
TFRECORDS_DIR = sequence_output.TFRECORDS_DIR
STATISTICS_FILE = sequence_format.STATISTICS_FILE
TARGETS_FILE = sequence_format.TARGETS_FILE
SEQUENCES_FILE = sequence_output.SEQUENCES_FILE
# The summary names this many skipped regions; the result object holds all of them.
MAX_NAMED_SKIPS = 10



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
    A SequenceConversionResult. Raises UserError for bad arguments, missing or
    malformed files, or output that exists.
  """
  coverage = genome_files.as_list(coverage)
  target_length = _check_arguments(fasta, bed, coverage, output_dir, seq_length,
                                   pool_width, crop_bp, seqs_per_tfr)
  identifiers, sum_stats, clips = genome_files.track_options(coverage, identifiers, sum_stat, clip)
  regions, split_of = _regions_and_split(bed, valid_chroms, test_chroms)
  bed_chroms = {r.chrom for r in regions}
  tracks = [genome_files.read_bedgraph(path, identifiers[i], sum_stats[i], clips[i],
                                       bed_chroms)
            for i, path in enumerate(coverage)]
  sequence_output.prepare_output_dir(output_dir, overwrite)
  temp_dir = tempfile.mkdtemp(prefix=sequence_output.TMP_PREFIX, dir=output_dir)
  try:
    writer = sequence_output.SplitWriter(
        os.path.join(temp_dir, sequence_output.TFRECORDS_DIR), seqs_per_tfr)
    try:
      placed, skipped, fasta_chroms = _write_regions(
          fasta, regions, tracks, writer, split_of, seq_length, crop_bp, target_length,
          pool_width, progress)
    finally:
      writer.close()
    _check_written(tracks, fasta_chroms, fasta, placed, skipped, writer.counts, bed)
    statistics = {'num_targets': len(tracks), 'seq_length': seq_length,
                  'seq_1hot': True, 'pool_width': pool_width, 'crop_bp': crop_bp,
                  'target_length': target_length}
    statistics.update({'%s_seqs' % split: writer.counts[split] for split in SPLITS})
    sequence_output.write_side_files(temp_dir, statistics, tracks, placed)
    files = sequence_output.commit(temp_dir, output_dir, writer.names)
  finally:
    shutil.rmtree(temp_dir, ignore_errors=True)
  return SequenceConversionResult(output_dir=output_dir, files=files,
                                  counts=dict(writer.counts), statistics=statistics,
                                  skipped=tuple(skipped))


def _regions_and_split(bed, valid_chroms, test_chroms):
  """(the BED's regions, region -> split), by the fold column or by chromosome."""
  valid_chroms, test_chroms = set(genome_files.as_list(valid_chroms)), set(genome_files.as_list(test_chroms))
  both = sorted(valid_chroms & test_chroms)
  if both:
    raise UserError('chromosome %s is in both --valid_chroms and --test_chroms; name '
                    'it in one of them' % both[0])
  by_chrom = bool(valid_chroms or test_chroms)
  regions = genome_files.read_bed(bed, by_fold=not by_chrom)
  bed_chroms = {r.chrom for r in regions}
  for flag, chroms in (('valid_chroms', valid_chroms), ('test_chroms', test_chroms)):
    unknown = sorted(chroms - bed_chroms)
    if unknown:
      raise UserError('--%s names %s, which no region of --bed=%s is on (its '
                      'chromosomes: %s)' % (flag, unknown[0], bed,
                                            _name_some(sorted(bed_chroms))))

  def split_of(region):
    if not by_chrom:
      return region.fold
    if region.chrom in test_chroms:
      return 'test'
    return 'valid' if region.chrom in valid_chroms else 'train'

  return regions, split_of


def _write_regions(fasta, regions, tracks, writer, split_of, seq_length, crop_bp,
                   target_length, pool_width, progress):
  """Writes a record per region, reading the FASTA once.

  Returns (placed [(chrom, start, end, split)] in record order, skipped regions in BED
  order, {FASTA chromosome: length}).
  """
  by_chrom = collections.defaultdict(list)
  for region in regions:
    by_chrom[region.chrom].append(region)
  skipped, placed, fasta_chroms = [], [], {}
  meter = console.Progress(len(regions), 'writing sequences', unit='seq',
                           enabled=progress)
  try:
    for name, length, codes in genome_files.read_fasta(fasta, wanted=set(by_chrom)):
      fasta_chroms[name] = length
      for region in by_chrom.get(name, ()):
        window = genome_files.window_of(region, seq_length)
        if region.end > length or window[0] < 0 or window[1] > length:
          skipped.append(Skipped(region.line, region.chrom, region.start, region.end,
                                 'out of range: window %d-%d, %s has %d bp' % (
                                     window[0], window[1], name, length)))
        else:
          targets = genome_files.window_targets(tracks, name, window[0] + crop_bp, target_length,
                             pool_width, region)
          split = split_of(region)
          record = sequence_format.make_example(codes[window[0]:window[1]], targets)
          writer.write(split, record.SerializeToString(deterministic=True))
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
  skipped.sort(key=lambda s: s.line)
  return placed, skipped, fasta_chroms


def _check_written(tracks, fasta_chroms, fasta, placed, skipped, counts, bed):
  """Refuses a conversion that wrote nothing usable (before anything is moved in)."""
  _check_track_chroms(tracks, fasta_chroms, fasta)
  if not placed:
    raise UserError('no sequence written: all %d regions of --bed=%s were skipped '
                    '(e.g. line %d: %s)' % (len(skipped), bed, skipped[0].line,
                                            skipped[0].reason))
  if not counts['train']:
    raise UserError('no train sequences: every region written went to valid or test; '
                    'give some regions the fold train in --bed, or name fewer '
                    'chromosomes in --valid_chroms/--test_chroms')


def _check_track_chroms(tracks, fasta_chroms, fasta):
  for track in tracks:
    for chrom, number in sorted(track.first_line.items(), key=lambda kv: kv[1]):
      if chrom not in fasta_chroms:
        raise UserError('--coverage file %s line %d: chromosome %s is not in --fasta=%s '
                        '(its chromosomes: %s); is it for another genome?' % (
                            track.path, number, chrom, fasta,
                            _name_some(list(fasta_chroms))))


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


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _plural(count, word):
  if not isinstance(count, int):
    count = len(count)
  return word if count == 1 else word + 's'


def _name_some(names, limit=5):
  names = list(names)
  shown = ', '.join(str(n) for n in names[:limit])
  return shown + (', ...' if len(names) > limit else '')
