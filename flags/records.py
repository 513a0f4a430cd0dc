"""Flags of the record converters; the defaults live with the library functions.

  python -m estimator_pipeline.records images --help
"""

from absl import flags as absl_flags

from estimator_pipeline.records import images


def _define(definer, name, default, help_text):
  # Another group (a demo, a later converter) may have defined the same name already;
  # sharing that flag keeps every entry point free to combine groups.
  if name not in absl_flags.FLAGS:
    definer(name, default, help_text)


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
