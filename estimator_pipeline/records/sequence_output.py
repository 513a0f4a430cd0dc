"""The output side of the sequence converter: a folder written whole or not at all.

Records go to tfrecords/{train,valid,test}-N.tfr inside a temporary folder of
--output_dir, with statistics.json, targets.txt and sequences.bed beside them;
`commit` moves them into place only when everything is written, so a failed run
leaves an earlier run's output as it was:

  python -c "
  from estimator_pipeline.records import sequence_output as o
  print(o.TFRECORDS_DIR, o.SEQUENCES_FILE)"
"""

import os
import shutil

import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequence_format

SPLITS = genome_files.SPLITS
TFRECORDS_DIR = 'tfrecords'
SEQUENCES_FILE = 'sequences.bed'
TMP_PREFIX = '.sequences-tmp-'


class SplitWriter:
  """ZLIB TFRecord writers per split, a new file every seqs_per_tfr records."""

  def __init__(self, folder, seqs_per_tfr):
    os.makedirs(folder)
    self._folder = folder
    self._seqs_per_tfr = seqs_per_tfr
    self._writers = {}
    self.counts = {split: 0 for split in SPLITS}
    self.names = {split: [] for split in SPLITS}
    self._options = tf.io.TFRecordOptions(
        compression_type=sequence_format.COMPRESSION)

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


def prepare_output_dir(output_dir, overwrite):
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UserError('--output_dir=%s is a file; pass a folder' % output_dir)
  ours = [name for name in (TFRECORDS_DIR, sequence_format.STATISTICS_FILE, sequence_format.TARGETS_FILE, SEQUENCES_FILE)
          if os.path.exists(os.path.join(output_dir, name))]
  if ours and not overwrite:
    raise UserError('--output_dir=%s already holds %s; pass --overwrite to replace them '
                    'or pick another --output_dir' % (output_dir, ', '.join(ours)))
  files.make_output_dir(output_dir)
  # Temporary folders of a killed run.
  for name in os.listdir(output_dir):
    if name.startswith(TMP_PREFIX):
      shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def write_side_files(folder, statistics, tracks, placed):
  """statistics.json, targets.txt and sequences.bed of the records in folder."""
  sequence_format.write_statistics(os.path.join(folder, sequence_format.STATISTICS_FILE), statistics)
  rows = [{'index': i, 'identifier': t.identifier, 'file': t.path,
           'clip': '' if t.clip is None else '%g' % t.clip, 'sum_stat': t.sum_stat,
           'description': t.description or t.identifier}
          for i, t in enumerate(tracks)]
  with open(os.path.join(folder, sequence_format.TARGETS_FILE), 'w') as f:
    f.write(sequence_format.targets_text(rows))
  with open(os.path.join(folder, SEQUENCES_FILE), 'w') as f:
    for split in SPLITS:
      f.writelines('%s\t%d\t%d\t%s\n' % p for p in placed if p[3] == split)


def commit(temp_dir, output_dir, names):
  """Moves temp_dir's output into output_dir; returns {split: final .tfr paths}."""
  final_records = os.path.join(output_dir, TFRECORDS_DIR)
  old = None
  if os.path.exists(final_records):
    old = os.path.join(temp_dir, 'old-' + TFRECORDS_DIR)
    os.replace(final_records, old)
  os.replace(os.path.join(temp_dir, TFRECORDS_DIR), final_records)
  for name in (sequence_format.STATISTICS_FILE, sequence_format.TARGETS_FILE, SEQUENCES_FILE):
    os.replace(os.path.join(temp_dir, name), os.path.join(output_dir, name))
  return {split: tuple(os.path.join(final_records, n) for n in names[split])
          for split in SPLITS}
