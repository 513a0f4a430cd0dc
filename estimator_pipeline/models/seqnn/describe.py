"""What `python -m estimator_pipeline.models` shows of a SeqNN built from a params file:

  python -m estimator_pipeline.models --model_name=seqnn --params_file=params.json \
      [--seq_length=N] [--head=NAME] [--gelu=sigmoid]

The graph is built at the params file's seq_length (or --seq_length), never
initialized; models/overview.py reads its blocks and receptive field.
"""

import copy

import tensorflow as tf

from estimator_pipeline.config import params as params_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.models import overview


def sequence_overview(spec, params_file, head='', seq_length=0, gelu='tanh'):
  """(Overview, the head's key) of a sequence model built from a params file."""
  params, head = params_lib.select_head(params_lib.load(params_file), head)
  section = copy.deepcopy(params['model'])
  section['seq_length'] = seq_length or section['seq_length']
  with tf.Graph().as_default():
    sequence = tf.compat.v1.placeholder(tf.float32, [None, section['seq_length'], 4])
    model = spec.build(is_training=False, num_classes=1, params=section, gelu=gelu)
    try:
      found = overview.describe(model, {'sequence': sequence}, sequence, 'bp')
    except (ValueError, TypeError) as e:
      raise UserError('--params_file=%s: the model cannot be built for %d bp (%s).'
                      % (params_file, section['seq_length'],
                         short_tf_message(e))) from None
  return found, head


def describe(spec, *, params_file='', head='', seq_length=0, gelu='tanh', **unused):
  """ModelSpec.describe: (title line, Overview). Image options are not read."""
  del unused
  if not params_file:
    raise UserError('--model_name=%s is built from basenji\'s params file: pass '
                    '--params_file=params.json.' % spec.name)
  found, head = sequence_overview(spec, params_file, head, seq_length, gelu)
  return '%s from %s, %s, %d bp' % (spec.name, params_file, head,
                                    found.input_length), found
