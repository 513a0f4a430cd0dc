"""Flags of the record converters; the defaults live with the library functions.

  python -m estimator_pipeline.records images --help
"""

from absl import flags as absl_flags

from estimator_pipeline.records import images


def _define(definer, name, default, *args):
  # Another group (a demo, a later converter) may have defined the same name already;
  # sharing that flag keeps every entry point free to combine groups.
  if name not in absl_flags.FLAGS:
    definer(name, default, *args)


def define_images_flags():
  """Defines the flags of `python -m estimator_pipeline.records images`. Idempotent."""
  _define(absl_flags.DEFINE_string, 'image_dir', '',
          'Folder with one sub-folder of images per class, e.g. photos/ holding '
          'photos/daisy/1.jpg; the sorted sub-folder names become labels 0..K-1.')
  _define(absl_flags.DEFINE_string, 'output_dir', '',
          'Folder for the train-*.tfrecord and validation-*.tfrecord shards and '
          'labels.txt; it is created if it does not exist.')
  _define(absl_flags.DEFINE_float, 'validation_fraction', images.DEFAULT_VALIDATION_FRACTION,
          'Fraction of the images, taken from every class alike, that goes into the '
          'validation shards; must be in [0, 1).')
  _define(absl_flags.DEFINE_integer, 'num_shards', images.DEFAULT_NUM_SHARDS,
          'Number of shard files per split; a split with fewer images than this gets '
          'one shard per image.')
  _define(absl_flags.DEFINE_integer, 'seed', images.DEFAULT_SEED,
          'Seed of the shuffle and of the train/validation split; the same folder and '
          'seed give byte-identical files.')
  _define(absl_flags.DEFINE_integer, 'num_workers', 0,
          'Threads that read, check and re-encode images; 0 uses one per CPU. The '
          'output does not depend on it.')
  _define(absl_flags.DEFINE_boolean, 'overwrite', False,
          'Replace the .tfrecord files output_dir already holds instead of refusing to '
          'run.')


def define_inspect_flags():
  """Defines the flags of `python -m estimator_pipeline.records inspect`. Idempotent."""
  _define(absl_flags.DEFINE_string, 'record_path', '',
          "Records to inspect: a glob or comma-separated globs, e.g. 'data/*.tfrecord' "
          '(may also be given as arguments after the flags).')
  _define(absl_flags.DEFINE_string, 'layout', 'image',
          'Record layout to check the records against (see estimator_pipeline/'
          'decoders.py), e.g. image.')
  _define(absl_flags.DEFINE_integer, 'num_classes', 0,
          'Labels must lie in [0, num_classes); 0 takes the count from a labels.txt '
          'beside the first file, or checks only that labels are not negative.')
  _define(absl_flags.DEFINE_enum, 'compression', 'auto',
          ['auto', 'NONE', 'ZLIB', 'GZIP'],
          'Compression of the files; auto detects it per file.')
