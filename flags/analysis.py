"""Flags every analysis command shares: which model, its ensemble, the batch size.

  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --ensemble_rc --ensemble_shifts=1,0,-1 --batch_size=8 ...
  python -m export.variants --saved_model=runs/cage/export/best ...

Each command calls define_model_flags() at import and passes model_kwargs() to
estimator_pipeline.analysis.model_source.load, which checks them (check_source).
"""

from absl import flags as absl_flags

from estimator_pipeline.config import controls
from flags import common
from flags import export as export_flags

FLAGS = absl_flags.FLAGS

# Read with --params_file only; passed on only when typed, so that a command whose
# --checkpoint has a default (export.evaluate's `latest`) is not taken for a user who
# typed one beside --saved_model.
_PARAMS_ONLY = ('checkpoint', 'head', 'gelu')


def define_model_flags(batch_size=8):
  """--saved_model or --params_file/--checkpoint/--head/--gelu, the ensemble flags and
  --batch_size, each defined once (another group may have defined it already)."""
  common.define_own(absl_flags.DEFINE_string, 'saved_model', '',
                    'The model as an export: a SavedModel version directory, or the '
                    'directory of versions whose newest one is used.')
  common.define('params_file', "Instead of --saved_model: basenji's (or "
                "baskerville's) JSON params file of the model, with --checkpoint.")
  common.define_own(absl_flags.DEFINE_string, 'checkpoint', '',
                    'With --params_file: the weights, as the .h5 basenji\'s or '
                    'baskerville\'s SeqNN.save wrote, a model_dir (its latest '
                    'checkpoint) or a checkpoint path.')
  common.define('head', 'With --params_file: which head* of the file to build; empty '
                "takes basenji's, the first in natural order.")
  common.define('gelu', 'With --params_file: tanh (basenji 0.6 and later, '
                'baskerville) or sigmoid (basenji 0.5.1 and earlier) gelu.')
  export_flags.define_ensemble_flags()
  common.define_own(absl_flags.DEFINE_integer, 'batch_size', batch_size,
                    'Sequences the network predicts per call (each ensemble member '
                    'is one more copy of the batch).')


def model_kwargs():
  """The parsed flags -> keyword arguments of model_source.load.

  A command's --targets_file (each defines its own, with its own help) is the
  model's targets there: its rows, and its strand pairs in the ensemble.
  """
  typed = {name: '' if FLAGS[name].using_default_value else FLAGS[name].value
           for name in _PARAMS_ONLY}
  return dict(saved_model=FLAGS.saved_model, params_file=FLAGS.params_file,
              ensemble_rc=FLAGS.ensemble_rc,
              ensemble_shifts=controls.parse_shifts(FLAGS.ensemble_shifts),
              batch_size=FLAGS.batch_size,
              targets_file=FLAGS.targets_file if 'targets_file' in FLAGS else '',
              **typed)
