"""Every absl flag of the project, in groups; defaults come from estimator_pipeline.config.

Entry points define the groups they need and parse with `parse_or_exit`, so a mistyped
flag is one line and exit status 2, like every other bad input:

  python train.py --helpfull
"""

import sys

from absl import flags as absl_flags

from estimator_pipeline.core.errors import EXIT_USAGE


def parse_or_exit(argv):
  """An absl `flags_parser` for app.run: one line and exit 2 on a bad flag."""
  try:
    return absl_flags.FLAGS(argv)
  except absl_flags.Error as e:
    sys.stderr.write('error: %s (see --helpfull for every flag)\n' % e)
    sys.exit(EXIT_USAGE)


def define_train_flags():
  """Every flag train.py takes."""
  # Imported here so `flags` itself stays importable without the project's modules.
  from flags import data, export, model, run, training  # pylint: disable=g-import-not-at-top
  from flags import performance  # pylint: disable=g-import-not-at-top
  run.define_run_flags()
  data.define_data_flags()
  model.define_model_flags()
  training.define_training_flags()
  export.define_export_flags()
  performance.define_performance_flags()
