r"""The one loader of a trained model for what users do with it after training.

  python -m export.variants --saved_model=runs/cage/export/best ...
  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --ensemble_rc --ensemble_shifts=1,0,-1 ...

Every command after training is given its model here, and every SavedModel they read
is loaded here:

- check_source: the one check of how a command was given its model (an export, or a
  params file with its checkpoint), one wording for each mistake;
- load_export (exports.py, the one SavedModel loader, which export.predict reads
  image classifiers' exports through too): a SavedModel version in a TF1 session of
  its own;
- load: a sequence model (sequence_model.SequenceModel), either an export's `onehot`
  (and `saliency`) signature, or basenji's params file with a checkpoint (the .h5
  basenji's or baskerville's SeqNN.save wrote, a model_dir, or a checkpoint prefix),
  as a basenji user passes `params.json model_best.h5`. The second is built from the
  plan and checkpoint that `python -m export` restores (train/exporting.py) and the
  model's own serving graph, its ensemble and saliency included, without writing an
  export: both ways run the graph TF Serving would.

With --saved_model, --ensemble_rc and --ensemble_shifts average around the `onehot`
signature, as basenji's build_ensemble does, each reverse-complemented prediction's
stranded targets swapped by the strand pairs the export carries
(assets.extra/strand_pair.json; exports of earlier versions carry none, and their
targets keep their order unless --targets_file has a strand_pair column).

--targets_file (targets.py) names the targets a command reports. Its strand_pair
column, Borzoi's, pairs the strands of the model's outputs, as baskerville takes them
from the table: it swaps them in the ensemble, here or in the graph built from a
params file, and must agree with the pairs the model carries, if any.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from estimator_pipeline.analysis import exports
from estimator_pipeline.analysis import sequence_model
from estimator_pipeline.analysis import strands
from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.train import exporting

SequenceModel = sequence_model.SequenceModel

_WAYS = ('--saved_model=DIR (an export) or --params_file=params.json with '
         '--checkpoint=model_best.h5')


def check_source(saved_model='', params_file='', checkpoint='', head='', gelu='',
                 batch_size=8):
  """The one check of how a model was named; UserError naming the flag and the fix.

  checkpoint, head and gelu are what the user typed ('' when not typed): a command
  whose --checkpoint has a default passes it only when typed.
  """
  if saved_model and params_file:
    raise UserError('--saved_model and --params_file are both set: pass the model '
                    'one way, as %s.' % _WAYS)
  if not saved_model and not params_file:
    raise UserError('no model given: pass it as %s.' % _WAYS)
  if saved_model:
    typed = [name for name, value in (('checkpoint', checkpoint), ('head', head),
                                      ('gelu', gelu)) if value]
    if typed:
      raise UserError('--%s is read with --params_file only; --saved_model=%s holds '
                      'its own weights, head and gelu: leave --%s out.' % (
                          typed[0], saved_model, typed[0]))
  elif not checkpoint:
    raise UserError('--params_file=%s needs --checkpoint: the .h5 basenji\'s '
                    'SeqNN.save wrote, a model_dir or a checkpoint path.' % params_file)
  if batch_size <= 0:
    raise UserError('--batch_size=%d must be positive, e.g. 8.' % batch_size)


def load(saved_model='', params_file='', checkpoint='', head='', gelu='',
         ensemble_rc=False, ensemble_shifts=(0,), batch_size=8, saliency=False,
         takes_model_dir=False, targets_file=''):
  """-> SequenceModel, from an export or from a params file and its checkpoint.

  gelu: '' is tanh (basenji 0.6 and later). saliency: with a params file, also build
  the saliency graph (an export always has its own). takes_model_dir: the command
  also takes --model_dir, which its message for an image export names.
  targets_file: the model's `targets` (targets.read); '' for all of its outputs.
  """
  check_source(saved_model, params_file, checkpoint, head, gelu, batch_size)
  if targets_file and not os.path.isfile(targets_file):
    raise UserError('--targets_file=%s is not a file.' % targets_file)
  shifts = tuple(int(s) for s in ensemble_shifts) or (0,)
  if saved_model:
    export = exports.load_export(saved_model)
    inputs, outputs, gradient = _sequence_signatures(export, takes_model_dir)
    carried = strands.export_pairs(export.path, int(outputs.shape[2]))
    table = _table(targets_file, int(outputs.shape[2]))
    return _with_targets(SequenceModel(
        export.session, inputs, outputs, export.path, export.path, ensemble_rc,
        shifts, batch_size, gradient,
        strand_pair=strands.agreed(table, carried, export.path,
                                   int(outputs.shape[2]))), table)
  overrides = {'params_file': params_file, 'head': head, 'gelu': gelu or 'tanh',
               'ensemble_rc': bool(ensemble_rc),
               'ensemble_shifts': ','.join(str(s) for s in shifts)}
  scratch = tempfile.mkdtemp(prefix='model-source-')
  try:
    plan, ckpt = exporting.restore_plan('', checkpoint, scratch, '', overrides)
    units = plan.data.layout.num_targets
    table = _table(targets_file, units)
    pairs = strands.agreed(table, plan.data.strand_pair, params_file, units)
    session, inputs, outputs, gradient = _build(plan, ckpt, saliency, pairs)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  # The ensemble is in the graph, as in an export of these flags.
  return _with_targets(SequenceModel(
      session, inputs, outputs, checkpoint, '%s with %s' % (params_file, checkpoint),
      batch_size=batch_size, saliency=gradient, strand_pair=pairs), table)


def _table(targets_file, num_targets):
  return targets_lib.read(targets_file, num_targets) if targets_file else None


def _with_targets(model, table):
  if table is not None:
    model.use_targets(table)
  return model


def _sequence_signatures(export, takes_model_dir):
  """(one-hot input, predictions, saliency tensors or None) of a sequence export."""
  if network.ONEHOT_SIGNATURE not in export.signatures:
    raise UserError(_not_sequence(export, takes_model_dir))
  inputs, outputs = export.tensors(network.ONEHOT_SIGNATURE)
  onehot, predictions = inputs['sequence'], outputs[network.PREDICTIONS]
  gradient = None
  if network.SALIENCY_SIGNATURE in export.signatures:
    inputs, outputs = export.tensors(network.SALIENCY_SIGNATURE)
    # Fed with the one-hot directly: the text input only encodes it.
    gradient = (inputs[network.TARGET_INDEX_FEATURE], outputs['saliency'],
                outputs['scores'])
  return onehot, predictions, gradient


def _not_sequence(export, takes_model_dir):
  """The message for an export that is not a sequence model's."""
  default = export.signatures.get(tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
  if default is None or 'classes' not in default.outputs:
    return ('--saved_model=%s has no %r signature (it has %s): --saved_model is for '
            'sequence models (--model_name=seqnn).' % (
                export.path, network.ONEHOT_SIGNATURE,
                ', '.join(sorted(export.signatures))))
  where = 'its --model_dir'
  if takes_model_dir:
    # runs/x/export/best/<version> -> runs/x, when that is a model_dir.
    model_dir = os.path.dirname(os.path.dirname(os.path.dirname(export.path)))
    if os.path.isfile(os.path.join(model_dir, 'config.json')):
      where = '--model_dir=%s' % model_dir
    return ('--saved_model=%s is an image classifier\'s export, and --saved_model is '
            'for sequence models: evaluate an image classifier by %s.' % (
                export.path, where))
  return ('--saved_model=%s is an image classifier\'s export, and --saved_model is '
          'for sequence models (--model_name=seqnn).' % export.path)


def _build(plan, checkpoint, saliency, strand_pair):
  """The model's serving graph (its ensemble included) fed by a one-hot placeholder,
  built by the model's own code as the export builds it, and restored; the ensemble
  swaps the strands of strand_pair (the params file's, or --targets_file's).

  Returns (session, one-hot, predictions, saliency tensors or None).
  """
  seq_length = plan.data.params['model']['seq_length']
  graph = tf.Graph()
  with graph.as_default():
    onehot = tf.compat.v1.placeholder(tf.float32, [None, seq_length, 4], 'onehot')
    features = {'sequence': onehot}
    if saliency:
      # The saliency signature's inputs, as the serving receiver gives them; the text
      # only names the signature's input here, the one-hot is fed.
      features[network.TEXT_FEATURE] = tf.compat.v1.placeholder(tf.string, [None])
      features[network.TARGET_INDEX_FEATURE] = tf.compat.v1.placeholder(
          tf.int32, [None], network.TARGET_INDEX_FEATURE)
    model = plan.spec.build(is_training=False, num_classes=plan.num_classes,
                            **strands.with_pairs(plan.model_params, strand_pair))
    outputs = model.postprocess(model.predict(model.preprocess(features)))
    outputs, export_outputs = model.serving_outputs(features, outputs)
    gradient = None
    if saliency:
      found = export_outputs[network.SALIENCY_SIGNATURE].outputs
      gradient = (features[network.TARGET_INDEX_FEATURE], found['saliency'],
                  found['scores'])
    saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables())
    session = tf.compat.v1.Session(graph=graph)
    saver.restore(session, checkpoint)
  graph.finalize()
  return session, onehot, outputs[network.PREDICTIONS], gradient
