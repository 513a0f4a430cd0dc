"""Flags for the records a run reads."""

from flags.common import define
from flags.common import define_alias


def define_data_flags():
  define('train_record_path', 'Training TFRecords: a glob or a comma-separated list of '
         "globs, e.g. 'data/train-*.tfrecord'. Quote it so the shell does not expand it.")
  define('eval_record_path', 'Evaluation TFRecords (glob or comma list), read exactly '
         'once per evaluation; empty trains without evaluating and exports at the end.')
  define_alias('val_record_path', 'eval_record_path')
  define('labels_file', 'The labels.txt ("0:daisy" lines) naming the classes; empty '
         'reads labels.txt beside the training records when it exists.')
  define('shuffle_buffer_size', 'Number of training records held in the shuffle buffer.')
  define('validate_data', 'Before training, read every training and evaluation record '
         'and report counts per label, image sizes and formats, and every bad record by '
         'file and index; stop if any is bad (unless --skip_corrupt_records), else '
         'train.')
  define('skip_corrupt_records', 'Drop records that do not parse or decode or whose '
         'label is out of range (and the rest of a file after a corrupt or truncated '
         'record) instead of stopping, and report how many were dropped at the end.')
  define('num_parallel_reads', 'Record files read in parallel; 0 reads up to 8 at once.')
