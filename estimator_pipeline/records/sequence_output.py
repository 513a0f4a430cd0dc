"""The output side of the sequence converter: a folder written whole or not at all.

Records go to tfrecords/{train,valid,test}-N.tfr inside a temporary folder of
--output_dir, with statistics.json, targets.txt, sequences.bed (and, for a tiled
genome, contigs.bed) beside them; `commit` moves them into place only when
everything is written, so a failed run leaves an earlier run's output as it was:

  python -c "
  from estimator_pipeline.records import sequence_output as o
  print(o.TFRECORDS_DIR, o.SEQUENCES_FILE)"
"""

import collections
import dataclasses
import os
import shutil
from typing import Dict, List, Tuple

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequence_format

SPLITS = genome_files.SPLITS
TFRECORDS_DIR = 'tfrecords'
SEQUENCES_FILE = 'sequences.bed'
CONTIGS_FILE = 'contigs.bed'
TMP_PREFIX = '.sequences-tmp-'
_OUTPUTS = (TFRECORDS_DIR, sequence_format.STATISTICS_FILE,
            sequence_format.TARGETS_FILE, SEQUENCES_FILE, CONTIGS_FILE)
# The summary names this many skipped regions; the result object holds all of them.
MAX_NAMED_SKIPS = 10


def prepare_output_dir(output_dir, overwrite):
  """Refuses earlier output (unless overwrite); returns True if it made the folder."""
  if not output_dir:
    raise UserError('--output_dir is required: the folder for tfrecords/, '
                    'statistics.json and targets.txt, e.g. --output_dir=data/')
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UserError('--output_dir=%s is a file; pass a folder' % output_dir)
  ours = [name for name in _OUTPUTS if os.path.exists(os.path.join(output_dir, name))]
  if ours and not overwrite:
    raise UserError('--output_dir=%s already holds %s; pass --overwrite to replace them '
                    'or pick another --output_dir' % (output_dir, ', '.join(ours)))
  created = not os.path.exists(output_dir)
  files.make_output_dir(output_dir)
  # Temporary folders of a killed run.
  for name in os.listdir(output_dir):
    if name.startswith(TMP_PREFIX):
      shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
  return created


def write_side_files(folder, statistics, target_rows, windows, contigs=None):
  """statistics.json, targets.txt, sequences.bed (and contigs.bed) in folder."""
  sequence_format.write_statistics(
      os.path.join(folder, sequence_format.STATISTICS_FILE), statistics)
  with open(os.path.join(folder, sequence_format.TARGETS_FILE), 'w') as f:
    f.write(sequence_format.targets_text(target_rows))
  with open(os.path.join(folder, SEQUENCES_FILE), 'w') as f:
    f.writelines('%s\t%d\t%d\t%s\n' % (w.chrom, w.start, w.end, w.split)
                 for w in windows)
  if contigs is not None:
    with open(os.path.join(folder, CONTIGS_FILE), 'w') as f:
      f.writelines('%s\t%d\t%d\t%s\n' % row for row in contigs)


def commit(temp_dir, output_dir, names):
  """Moves temp_dir's output into output_dir; returns {split: final .tfr paths}."""
  final_records = os.path.join(output_dir, TFRECORDS_DIR)
  if os.path.exists(final_records):
    os.replace(final_records, os.path.join(temp_dir, 'old-' + TFRECORDS_DIR))
  os.replace(os.path.join(temp_dir, TFRECORDS_DIR), final_records)
  for name in _OUTPUTS[1:]:
    source, target = os.path.join(temp_dir, name), os.path.join(output_dir, name)
    if os.path.exists(source):
      os.replace(source, target)
    elif os.path.exists(target):
      os.remove(target)  # contigs.bed of an earlier tiled run: not of these records.
  return {split: tuple(os.path.join(final_records, n) for n in names[split])
          for split in SPLITS}


@dataclasses.dataclass(frozen=True)
class SequenceConversionResult:
  """What convert_sequences wrote and what it skipped.

  Attributes:
    output_dir: The folder holding tfrecords/, statistics.json, targets.txt and
      sequences.bed.
    files: {split: paths of its .tfr files, in order}.
    counts: {split: records written}.
    statistics: The contents of statistics.json.
    skipped: BED regions not written (genome_tiling.Skipped), in BED order.
    tiled: True when the windows tile the genome (no --bed).
    contigs: Contigs the tiling used (0 with --bed).
    unmappable: Windows left out by --umap.
    clipped_bins: Bins beyond float16's range, clipped to it.
    processes: Processes that wrote records (1: this one; more: workers).
    windows_per_second: Records written per second, from when the first file was
      begun to when the last was done (starting the workers not counted).
    worker_tensorflow: Whether TensorFlow was loaded in a worker process (it must
      not be); None when no worker process ran.
    worker_peak_rss_mb: The largest peak memory of a worker process; None when no
      worker process ran.
  """

  output_dir: str
  files: Dict[str, Tuple[str, ...]]
  counts: Dict[str, int]
  statistics: Dict[str, object]
  skipped: Tuple[object, ...] = ()
  tiled: bool = False
  contigs: int = 0
  unmappable: int = 0
  clipped_bins: int = 0
  processes: int = 1
  windows_per_second: float = 0.0
  worker_tensorflow: object = None
  worker_peak_rss_mb: object = None

  @property
  def num_written(self):
    return sum(self.counts.values())

  def summary_lines(self) -> List[str]:
    """The closing summary of the command, one fact per line."""
    stats = self.statistics
    num_files = sum(len(f) for f in self.files.values())
    lines = ['wrote %d %s (%s) of %d bp with %d %s x %d %s in %d .tfr %s to %s' % (
        self.num_written, _plural(self.num_written, 'sequence'),
        ', '.join('%s %d' % (s, self.counts[s]) for s in SPLITS), stats['seq_length'],
        stats['target_length'], _plural(stats['target_length'], 'bin'),
        stats['num_targets'], _plural(stats['num_targets'], 'track'), num_files,
        _plural(num_files, 'file'), os.path.join(self.output_dir, TFRECORDS_DIR))]
    if self.tiled:
      lines.append('tiled %d %s of the genome (split at runs of N)' % (
          self.contigs, _plural(self.contigs, 'contig')))
    for split in ('valid', 'test'):
      if not self.counts[split]:
        how = ('give --%s_fraction or name chromosomes with --%s_chroms' if self.tiled
               else 'give some regions the fold %r in --bed, or name chromosomes with '
               '--%s_chroms')
        lines.append('no %s sequences: %s' % (split, how % (split, split)))
    if self.unmappable:
      lines.append('left out %d %s with too many unmappable bins (--umap_t)' % (
          self.unmappable, _plural(self.unmappable, 'window')))
    if self.clipped_bins:
      lines.append('clipped %d %s beyond float16 (%g); consider --clip or a mean '
                   'sum_stat' % (self.clipped_bins, _plural(self.clipped_bins, 'bin'),
                                 65504))
    if self.worker_tensorflow:
      lines.append('note: the worker processes imported TensorFlow, because the '
                   'calling script does at its top and multiprocessing imports it '
                   'again in each worker: it works, but costs seconds and hundreds of '
                   'MB a worker; call convert_sequences from a module that does not '
                   'import TensorFlow at its top, or run the command line')
    if not self.tiled:
      lines.extend(_skipped_lines(self.skipped))
    return lines

  def summary(self) -> str:
    return '\n'.join(self.summary_lines())


def _skipped_lines(skipped):
  if not skipped:
    return ['skipped 0 regions']
  reasons = collections.Counter(s.reason.split(':')[0] for s in skipped)
  lines = ['skipped %d %s (%s):' % (
      len(skipped), _plural(len(skipped), 'region'),
      ', '.join('%d %s' % (n, r) for r, n in sorted(reasons.items())))]
  for s in skipped[:MAX_NAMED_SKIPS]:
    lines.append('  line %d (%s:%d-%d): %s' % (s.line, s.chrom, s.start, s.end,
                                               s.reason))
  if len(skipped) > MAX_NAMED_SKIPS:
    lines.append('  ... and %d more' % (len(skipped) - MAX_NAMED_SKIPS))
  return lines


def _plural(count, word):
  return word if count == 1 else word + 's'
