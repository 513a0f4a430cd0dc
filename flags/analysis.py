"""Flags every analysis command shares: which model, its ensemble, the batch size.

  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --ensemble_rc --ensemble_shifts=1,0,-1 --batch_size=8 ...
  python -m export.variants --saved_model=runs/cage/export/best ...

Each command calls define_model_flags() at import and passes model_kwargs() to
estimator_pipeline.analysis.model_source.load.
"""

from absl import flags as absl_flags

from estimator_pipeline.config import controls
from estimator_pipeline.core.errors import UserError
from flags import common
from flags import export as export_flags

FLAGS = absl_flags.FLAGS


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
  """The parsed flags -> keyword arguments of model_source.load (checked)."""
  if bool(FLAGS.saved_model) == bool(FLAGS.params_file):
    raise UserError('pass the model either as --saved_model=DIR (an export) or as '
                    '--params_file=params.json with --checkpoint=model_best.h5; %s.'
                    % ('both are set' if FLAGS.saved_model else 'neither is set'))
  if FLAGS.saved_model:
    for name in ('checkpoint', 'head', 'gelu'):
      if FLAGS[name].present:
        raise UserError('--%s is read with --params_file; --saved_model=%s holds its '
                        'own: leave --%s out.' % (name, FLAGS.saved_model, name))
  elif not FLAGS.checkpoint:
    raise UserError('--params_file=%s needs --checkpoint: the .h5 basenji\'s '
                    'SeqNN.save wrote, a model_dir or a checkpoint.' % FLAGS.params_file)
  if FLAGS.batch_size <= 0:
    raise UserError('--batch_size=%d must be positive, e.g. 8.' % FLAGS.batch_size)
  return dict(saved_model=FLAGS.saved_model, params_file=FLAGS.params_file,
              checkpoint=FLAGS.checkpoint, head=FLAGS.head, gelu=FLAGS.gelu,
              ensemble_rc=FLAGS.ensemble_rc,
              ensemble_shifts=controls.parse_shifts(FLAGS.ensemble_shifts),
              batch_size=FLAGS.batch_size)
