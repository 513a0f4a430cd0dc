r"""A genome and its coverage tracks -> basenji TFRecords, in bounded memory.

  python -m estimator_pipeline.records sequences --fasta=hg38.fa \
      --targets_file=targets.txt --seq_length=131072 --pool_width=128 --crop_bp=8192 \
      --blacklist=hg38-blacklist.v2.bed --output_dir=data/

does what basenji_data.py does and writes, in its layout (what basenji's dataset.py
and this pipeline read):

  data/tfrecords/train-0.tfr, train-1.tfr, ...   --seqs_per_tfr records per file
  data/tfrecords/valid-0.tfr ..., data/tfrecords/test-0.tfr ...
  data/statistics.json   num_targets, seq_length, seq_1hot, pool_width, crop_bp,
                         target_length, train_seqs, valid_seqs, test_seqs
  data/targets.txt       index, identifier, file, clip, clip_soft, scale, sum_stat,
                         description (tabs)
  data/sequences.bed     chrom, start, end, split of every record, in record order
  data/contigs.bed       chrom, start, end, split of every contig (a tiled genome)

Every file is a ZLIB-compressed TFRecord of tf.train.Examples with two bytes features:
`sequence`, the seq_length base indices as uint8 (A0 C1 G2 T3, anything else N4), and
`target`, float16 [target_length, num_targets] in row-major order, where target_length =
(seq_length - 2 * crop_bp) / pool_width.

The tracks are a basenji targets table (targets_table.py) or --coverage files, each a
bigWig or a bedGraph; how a bin is made: genome_windows.py. The windows tile the genome
(genome_tiling.py) or are centred on the regions of --bed. Nothing holds the genome or
a track: the FASTA is read by random access through its .fai, bigWigs through their
index, bedGraphs through an index written first (tracks.py). Every input is checked
before the first record is written; records are written by --processes worker
processes, each .tfr file whole by one of them, so the output does not depend on how
many. Everything is written under a temporary folder inside --output_dir and moved into
place at the end: a failed run leaves earlier output as it was. From Python (under
`if __name__ == '__main__':` in a script, as worker processes re-import it):

  from estimator_pipeline.records import sequences
  print(sequences.convert_sequences('genome.fa', None, ['t1.bw'], 'data',
                                    seq_length=1024, pool_width=32).summary())
"""

import numbers
import os
import shutil
import tempfile

from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import genome_tiling
from estimator_pipeline.records import genome_windows
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import sequence_output
from estimator_pipeline.records import targets_table
from estimator_pipeline.records import tracks as tracks_lib

# Defaults of convert_sequences (basenji_data.py's own); flags/records.py reads them.
DEFAULT_SEQ_LENGTH = 131072
DEFAULT_POOL_WIDTH = 128
DEFAULT_CROP_BP = 0
DEFAULT_SUM_STAT = 'sum'
DEFAULT_SEQS_PER_TFR = 256
DEFAULT_STRIDE = 1.0        # At most 1: a fraction of seq_length; above: bases.
DEFAULT_FRACTION = 0.05     # basenji's -v and -t.
DEFAULT_SEED = 44
DEFAULT_GAP_MIN = 100
DEFAULT_UMAP_T = 0.5
DEFAULT_UMAP_CLIP = 1.0
BLACKLIST_PAD = 20          # basenji_data_read.py widens blacklist regions this much.
# --processes=0 starts a worker per core, but no more than one per this many bases to
# write: starting one (Python, numpy, pysam, pyBigWig) costs about what writing
# that many bases does.
BASES_PER_WORKER = 1 << 24

SPLITS = genome_files.SPLITS
TFRECORDS_DIR = sequence_output.TFRECORDS_DIR
STATISTICS_FILE = sequence_format.STATISTICS_FILE
TARGETS_FILE = sequence_format.TARGETS_FILE
SEQUENCES_FILE = sequence_output.SEQUENCES_FILE
SequenceConversionResult = sequence_output.SequenceConversionResult


def convert_sequences(fasta, bed=None, coverage=(), output_dir=None, *,
                      targets_file=None, seq_length=DEFAULT_SEQ_LENGTH,
                      pool_width=DEFAULT_POOL_WIDTH, crop_bp=DEFAULT_CROP_BP,
                      sum_stat=DEFAULT_SUM_STAT, clip=None, clip_soft=None, scale=None,
                      identifiers=None, valid_chroms=(), test_chroms=(),
                      valid_fraction=DEFAULT_FRACTION, test_fraction=DEFAULT_FRACTION,
                      stride=DEFAULT_STRIDE, stride_test=DEFAULT_STRIDE,
                      gap_min=DEFAULT_GAP_MIN, seed=DEFAULT_SEED, blacklist=None,
                      umap=None, umap_t=DEFAULT_UMAP_T, umap_clip=DEFAULT_UMAP_CLIP,
                      ignore_track_chroms=(), processes=0,
                      seqs_per_tfr=DEFAULT_SEQS_PER_TFR, overwrite=False,
                      progress=True) -> SequenceConversionResult:
  """Writes basenji-layout records of fasta's windows, with the tracks as targets.

  Args:
    fasta: FASTA of the genome: plain, bgzip, or gzip (unpacked to a temporary file).
    bed: BED of regions, each centred in a window; None tiles the genome. A 4th
      column train/valid/test splits them unless valid_chroms or test_chroms are set.
    coverage: bigWig or bedGraph files, one per track (or give targets_file).
    output_dir: Folder for tfrecords/, statistics.json, targets.txt, sequences.bed.
    targets_file: basenji's targets table (targets_table.py) instead of coverage.
    seq_length, pool_width, crop_bp: Bases per window, per bin, cut off each end
      before binning.
    sum_stat, clip, clip_soft, scale: With coverage: one value for every track, or a
      sequence (or comma-separated text) with one per track; genome_windows.py.
    identifiers: With coverage: names of the tracks; default: the file names.
    valid_chroms, test_chroms: Chromosomes of the valid and test splits.
    valid_fraction, test_fraction: Tiling without chromosomes named: the shares of
      the genome's contigs (by bases, seeded) in valid and test.
    stride, stride_test: Tiling: bases between the train windows' starts, and the
      valid and test windows'; at most 1 is a fraction of seq_length.
    gap_min: Tiling: runs of at least this many N split contigs.
    seed: Seed of the split by fraction and of the shuffle of the tiled windows.
    blacklist: BED of regions whose bases are clipped to the window's median.
    umap, umap_t, umap_clip: BED of unmappable regions; windows with at least umap_t
      of their bins unmappable are left out; umap_clip < 1 lowers unmappable bins.
    ignore_track_chroms: Chromosomes the tracks may have that the FASTA lacks.
    processes: Worker processes; 0 uses one per core (fewer when there is little to
      write, see BASES_PER_WORKER).
    seqs_per_tfr: Records per .tfr file.
    overwrite: Replace what an earlier run wrote into output_dir instead of refusing.
    progress: Show progress on stderr.

  Returns:
    A SequenceConversionResult. Raises UserError for bad arguments, missing or
    malformed files, or output that exists.
  """
  _check_arguments(seq_length, pool_width, crop_bp, seqs_per_tfr, gap_min, umap_t,
                   umap_clip, processes)
  strides = [_stride(name, value, seq_length) for name, value in (
      ('stride', stride), ('stride_test', stride_test))]
  split = _split_options(bed, valid_chroms, test_chroms, valid_fraction, test_fraction)
  tracks = _track_specs(coverage, targets_file, identifiers, sum_stat, clip, clip_soft,
                        scale)
  regions = genome_files.read_bed(bed, by_fold=not split['by_chrom']) if bed else None
  created = sequence_output.prepare_output_dir(output_dir, overwrite)
  temp_dir = tempfile.mkdtemp(prefix=sequence_output.TMP_PREFIX, dir=output_dir)
  try:
    genome = fasta_index.open_genome(fasta, temp_dir)
    _check_split_chroms(split, genome, regions, bed)
    spec = window_spec(genome, tracks, temp_dir, seq_length, pool_width, crop_bp,
                       blacklist, umap, umap_clip, ignore_track_chroms, progress)
    plan = _plan(spec, regions, split, strides, gap_min, seed, umap_t, progress)
    result = _write(spec, plan, temp_dir, output_dir, seqs_per_tfr,
                    processes or _auto_processes(plan['windows'], seq_length), progress)
  except BaseException:
    shutil.rmtree(temp_dir, ignore_errors=True)
    if created and os.path.isdir(output_dir) and not os.listdir(output_dir):
      os.rmdir(output_dir)
    raise
  shutil.rmtree(temp_dir, ignore_errors=True)
  return result


def window_spec(genome, tracks, work_dir, seq_length, pool_width, crop_bp,
                blacklist=None, umap=None, umap_clip=DEFAULT_UMAP_CLIP,
                ignore_track_chroms=(), progress=True):
  """Checks the tracks and masks against genome (fasta_index.Genome), indexes the
  bedGraphs and masks into work_dir: the genome_windows.WindowSpec of a conversion."""
  tracks = tracks_lib.check(tracks, genome, ignore_track_chroms)
  masks = {name: tracks_lib.read_mask(path, name, genome, work_dir, pad)
           for name, path, pad in (('blacklist', blacklist, BLACKLIST_PAD),
                                   ('umap', umap, 0)) if path}
  tracks = tracks_lib.index_bedgraphs(tracks, genome, work_dir, ignore_track_chroms,
                                      progress)
  return genome_windows.WindowSpec(
      genome=genome, tracks=tuple(tracks), seq_length=seq_length,
      pool_width=pool_width, crop_bp=crop_bp,
      keys=(sequence_format.SEQUENCE_KEY, sequence_format.TARGET_KEY),
      blacklist=masks.get('blacklist'), umap=masks.get('umap'), umap_clip=umap_clip)


def _auto_processes(windows, seq_length):
  return max(1, min(os.cpu_count() or 1, len(windows) * seq_length // BASES_PER_WORKER))


def _track_specs(coverage, targets_file, identifiers, sum_stat, clip, clip_soft, scale):
  coverage = genome_files.as_list(coverage)
  if targets_file and coverage:
    raise UserError('give the tracks once: --targets_file=%s or --coverage, not both'
                    % targets_file)
  if targets_file:
    return targets_table.tracks_from_rows(
        sequence_format.read_targets_table(targets_file), targets_file)
  return targets_table.tracks_from_flags(coverage, genome_files.as_list(identifiers),
                                         sum_stat, clip, clip_soft, scale)


def _split_options(bed, valid_chroms, test_chroms, valid_fraction, test_fraction):
  valid, test = set(genome_files.as_list(valid_chroms)), set(
      genome_files.as_list(test_chroms))
  both = sorted(valid & test)
  if both:
    raise UserError('chromosome %s is in both --valid_chroms and --test_chroms; name '
                    'it in one of them' % both[0])
  for name, value in (('valid_fraction', valid_fraction),
                      ('test_fraction', test_fraction)):
    if not isinstance(value, numbers.Real) or not 0 <= value < 1:
      raise UserError('--%s=%s must be in [0, 1)' % (name, value))
  if valid_fraction + test_fraction >= 1:
    raise UserError('--valid_fraction=%g and --test_fraction=%g leave nothing to '
                    'train on; their sum must be under 1' % (valid_fraction,
                                                            test_fraction))
  return {'valid': valid, 'test': test, 'by_chrom': bool(valid or test),
          'fractions': (valid_fraction, test_fraction)}


def _check_split_chroms(split, genome, regions, bed):
  """Every chromosome named in --valid_chroms/--test_chroms exists where it must."""
  names = ({r.chrom for r in regions} if regions is not None else genome.lengths)
  for flag in ('valid', 'test'):
    for chrom in sorted(split[flag]):
      if chrom in names:
        continue
      if regions is not None:
        raise UserError('--%s_chroms names %s, which no region of --bed=%s is on (its '
                        'chromosomes: %s)' % (flag, chrom, bed,
                                              ', '.join(sorted(names)[:5])))
      raise UserError(tracks_lib.unknown_chrom_message(
          '--%s_chroms names %s, which --fasta=%s lacks' % (flag, chrom, genome.fasta),
          chrom, genome))


def _plan(spec, regions, split, strides, gap_min, seed, umap_t, progress):
  """{'windows', 'contigs' (rows or None), 'skipped', 'unmappable', 'num_contigs'}."""
  plan = {'contigs': None, 'skipped': (), 'num_contigs': 0, 'unmappable': 0}
  if regions is not None:
    def split_of(region):
      if not split['by_chrom']:
        return region.fold
      return ('test' if region.chrom in split['test'] else
              'valid' if region.chrom in split['valid'] else 'train')
    plan['windows'], plan['skipped'] = genome_tiling.bed_windows(
        regions, spec.genome.lengths, spec.seq_length, split_of)
  else:
    total_mb = sum(spec.genome.lengths.values()) / 1e6
    meter = console.Progress(total_mb, 'finding contigs (runs of N)', unit='Mb',
                             enabled=progress)
    try:
      contigs = fasta_index.find_contigs(spec.genome, gap_min,
                                         lambda n: meter.update(n / 1e6))
    finally:
      meter.close()
    target = spec.seq_length - 2 * spec.crop_bp
    contigs = [c for c in contigs if c[2] - c[1] >= target]
    if split['by_chrom']:
      folds = genome_tiling.divide_by_chroms(contigs, split['valid'], split['test'])
    else:
      folds = genome_tiling.divide_by_fraction(contigs, *split['fractions'], seed=seed)
    plan['windows'] = genome_tiling.tile(folds, spec.seq_length, spec.crop_bp,
                                         *strides, seed=seed)
    plan['contigs'] = genome_tiling.contig_rows(folds)
    plan['num_contigs'] = len(contigs)
  if spec.umap is not None:
    plan['windows'], plan['unmappable'] = genome_tiling.drop_unmappable(
        plan['windows'], spec.umap, umap_t, spec.crop_bp, spec.pool_width,
        spec.target_length, genome_windows.unmappable_bins)
  _check_plan(plan, regions)
  return plan


def _check_plan(plan, regions):
  """Refuses a plan that writes nothing usable (before anything is written)."""
  windows = plan['windows']
  if not windows:
    if regions is not None:
      first = plan['skipped'][0]
      raise UserError('no sequence to write: all %d regions of --bed were skipped '
                      '(e.g. line %d: %s)' % (len(plan['skipped']), first.line,
                                              first.reason))
    raise UserError('no window to write: no contig is as long as --seq_length less '
                    '2 --crop_bp%s' % (', or --umap left every window out'
                                       if plan['unmappable'] else ''))
  if not any(w.split == 'train' for w in windows):
    raise UserError('no train sequences: every window went to valid or test; name '
                    'fewer chromosomes in --valid_chroms/--test_chroms%s' % (
                        ', or give some regions the fold train in --bed'
                        if regions is not None else ''))


def _write(spec, plan, temp_dir, output_dir, seqs_per_tfr, processes, progress):
  """Writes every .tfr file and the side files, then moves them into output_dir."""
  jobs = genome_tiling.plan_files(plan['windows'], seqs_per_tfr)
  records_dir = os.path.join(temp_dir, TFRECORDS_DIR)
  os.makedirs(records_dir)
  meter = console.Progress(len(plan['windows']), 'writing records', unit='windows',
                           enabled=progress)
  try:
    stats, used = genome_windows.run_jobs(
        spec, [(os.path.join(records_dir, name), windows) for name, _, windows in jobs],
        processes, meter.update)
  finally:
    meter.close()
  counts = {split: sum(1 for w in plan['windows'] if w.split == split)
            for split in SPLITS}
  statistics = {'num_targets': len(spec.tracks), 'seq_length': spec.seq_length,
                'seq_1hot': True, 'pool_width': spec.pool_width,
                'crop_bp': spec.crop_bp, 'target_length': spec.target_length}
  statistics.update({'%s_seqs' % split: counts[split] for split in SPLITS})
  sequence_output.write_side_files(temp_dir, statistics,
                                   targets_table.output_rows(spec.tracks),
                                   plan['windows'], plan['contigs'])
  names = {split: [name for name, s, _ in jobs if s == split] for split in SPLITS}
  files = sequence_output.commit(temp_dir, output_dir, names)
  seconds = max(s['finished'] for s in stats) - min(s['started'] for s in stats)
  return SequenceConversionResult(
      output_dir=output_dir, files=files, counts=counts, statistics=statistics,
      skipped=tuple(plan['skipped']), tiled=plan['contigs'] is not None,
      contigs=plan['num_contigs'], unmappable=plan['unmappable'],
      clipped_bins=sum(s['clipped'] for s in stats), processes=used,
      windows_per_second=len(plan['windows']) / max(seconds, 1e-6),
      worker_tensorflow=(any(s['tensorflow'] for s in stats) if used > 1 else None),
      worker_peak_rss_mb=(max(s['peak_rss_kb'] for s in stats) / 1024 if used > 1
                          else None))


def _check_arguments(seq_length, pool_width, crop_bp, seqs_per_tfr, gap_min, umap_t,
                     umap_clip, processes):
  """Raises UserError for bad numbers."""
  for name, value in (('seq_length', seq_length), ('pool_width', pool_width),
                      ('seqs_per_tfr', seqs_per_tfr), ('gap_min', gap_min)):
    if not _is_int(value) or value < 1:
      raise UserError('--%s=%s must be a positive integer' % (name, value))
  if not _is_int(crop_bp) or crop_bp < 0:
    raise UserError('--crop_bp=%s must be a non-negative integer' % (crop_bp,))
  if not _is_int(processes) or processes < 0:
    raise UserError('--processes=%s must be 0 (one per core) or a positive integer'
                    % (processes,))
  for name, value in (('umap_t', umap_t), ('umap_clip', umap_clip)):
    if not isinstance(value, numbers.Real) or not 0 < value <= 1:
      raise UserError('--%s=%s must be in (0, 1]' % (name, value))
  cropped = seq_length - 2 * crop_bp
  if cropped <= 0:
    raise UserError('--crop_bp=%d cuts all of --seq_length=%d (2 * crop_bp must be less '
                    'than seq_length)' % (crop_bp, seq_length))
  if cropped % pool_width:
    raise UserError(('--seq_length=%d is not a multiple of --pool_width=%d' % (
        seq_length, pool_width) if not crop_bp else
                     '--seq_length=%d minus 2 * --crop_bp=%d is %d, not a multiple of '
                     '--pool_width=%d' % (seq_length, crop_bp, cropped, pool_width)) +
                    '; change one so the bins tile it')


def _stride(name, value, seq_length):
  """basenji's rule: a stride of at most 1 is a fraction of seq_length."""
  if not isinstance(value, numbers.Real) or not value > 0:
    raise UserError('--%s=%s must be positive: bases between window starts, or a '
                    'fraction of --seq_length up to 1 (1, the default, is one window)'
                    % (name, value))
  bases = int(round(value * seq_length)) if value <= 1 else int(round(value))
  if bases < 1:
    raise UserError('--%s=%s is under one base of --seq_length=%d' % (
        name, value, seq_length))
  return bases


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)
