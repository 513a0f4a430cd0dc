"""Flags of the record converters; the defaults live with the library functions.

  python -m estimator_pipeline.records images --help
  python -m estimator_pipeline.records sequences --help
"""

from absl import flags as absl_flags

from estimator_pipeline.records import images
from estimator_pipeline.records import sequences
from flags.common import define_own


def define_images_flags():
  """Defines the flags of `python -m estimator_pipeline.records images`. Idempotent."""
  define_own(absl_flags.DEFINE_string, 'image_dir', '',
             'Folder with one sub-folder of images per class, e.g. photos/ holding '
             'photos/daisy/1.jpg; the sorted sub-folder names become labels 0..K-1.')
  define_own(absl_flags.DEFINE_string, 'output_dir', '',
             'Folder for the train-*.tfrecord and validation-*.tfrecord shards and '
             'labels.txt; it is created if it does not exist.')
  define_own(absl_flags.DEFINE_float, 'validation_fraction', images.DEFAULT_VALIDATION_FRACTION,
             'Fraction of the images, taken from every class alike, that goes into the '
             'validation shards; must be in [0, 1).')
  define_own(absl_flags.DEFINE_integer, 'num_shards', images.DEFAULT_NUM_SHARDS,
             'Number of shard files per split; a split with fewer images than this gets '
             'one shard per image.')
  define_own(absl_flags.DEFINE_integer, 'seed', images.DEFAULT_SEED,
             'Seed of the shuffle and of the train/validation split; the same folder and '
             'seed give byte-identical files.')
  define_own(absl_flags.DEFINE_integer, 'num_workers', 0,
             'Threads that read, check and re-encode images; 0 uses one per CPU. The '
             'output does not depend on it.')
  define_own(absl_flags.DEFINE_boolean, 'overwrite', False,
             'Replace the .tfrecord files output_dir already holds instead of refusing to '
             'run.')


def define_sequences_flags():
  """Defines the flags of `python -m estimator_pipeline.records sequences`. Idempotent."""
  define_own(absl_flags.DEFINE_string, 'fasta', '',
             'FASTA file of the genome, plain or gzipped, e.g. genome.fa; it is read once, '
             'one chromosome at a time.')
  define_own(absl_flags.DEFINE_string, 'bed', '',
             'BED file of the regions to write, e.g. regions.bed; each is centred in a '
             'window of --seq_length bases, and a 4th column train/valid/test gives its '
             'split unless --valid_chroms or --test_chroms are set.')
  define_own(absl_flags.DEFINE_list, 'coverage', [],
             'Comma-separated bedGraph files (plain or gzipped), one per target track, '
             'e.g. track1.bedGraph,track2.bedGraph.gz.')
  define_own(absl_flags.DEFINE_string, 'output_dir', '',
             'Folder for tfrecords/{train,valid,test}-N.tfr, statistics.json, targets.txt '
             'and sequences.bed; it is created if it does not exist.')
  define_own(absl_flags.DEFINE_integer, 'seq_length', sequences.DEFAULT_SEQ_LENGTH,
             'Bases per sequence (basenji\'s -l).')
  define_own(absl_flags.DEFINE_integer, 'pool_width', sequences.DEFAULT_POOL_WIDTH,
             'Bases per target bin (basenji\'s -w).')
  define_own(absl_flags.DEFINE_integer, 'crop_bp', sequences.DEFAULT_CROP_BP,
             'Bases cut from each end of the sequence before the targets are binned '
             '(basenji\'s --crop); (seq_length - 2 * crop_bp) must be a multiple of '
             'pool_width.')
  define_own(absl_flags.DEFINE_string, 'sum_stat', sequences.DEFAULT_SUM_STAT,
             'How a bin sums up its bases\' coverage: sum or mean; one value for every '
             'track or a comma-separated list with one per --coverage file.')
  define_own(absl_flags.DEFINE_string, 'clip', '',
             'Clip bins to [-clip, clip]: empty for no clipping, one number for every '
             'track, or a comma-separated list with one per --coverage file.')
  define_own(absl_flags.DEFINE_list, 'identifiers', [],
             'Names of the tracks in targets.txt, one per --coverage file; empty uses the '
             'file names without extensions.')
  define_own(absl_flags.DEFINE_list, 'valid_chroms', [],
             'Chromosomes whose regions go to the valid split, e.g. chr8,chr9; setting '
             'this or --test_chroms ignores the BED\'s fold column.')
  define_own(absl_flags.DEFINE_list, 'test_chroms', [],
             'Chromosomes whose regions go to the test split, e.g. chr10; the regions of '
             'all other chromosomes go to train.')
  define_own(absl_flags.DEFINE_integer, 'seqs_per_tfr', sequences.DEFAULT_SEQS_PER_TFR,
             'Records per .tfr file (basenji\'s -r).')
  define_own(absl_flags.DEFINE_boolean, 'overwrite', False,
             'Replace the tfrecords/, statistics.json, targets.txt and sequences.bed that '
             'output_dir already holds instead of refusing to run.')


def define_inspect_flags():
  """Defines the flags of `python -m estimator_pipeline.records inspect`. Idempotent."""
  define_own(absl_flags.DEFINE_string, 'record_path', '',
             "Records to inspect: a glob or comma-separated globs, e.g. 'data/*.tfrecord' "
             '(may also be given as arguments after the flags).')
  define_own(absl_flags.DEFINE_string, 'layout', '',
             'Record layout to check the records against: image or sequence (see '
             'estimator_pipeline/records/format.py); empty tells it from the first record.')
  define_own(absl_flags.DEFINE_integer, 'num_classes', 0,
             'Image records: labels must lie in [0, num_classes); 0 takes the count from a '
             'labels.txt beside the first file, or checks only that labels are not '
             'negative.')
  define_own(absl_flags.DEFINE_enum, 'compression', 'auto',
             ['auto', 'NONE', 'ZLIB', 'GZIP'],
             'Compression of the files; auto detects it per file.')
