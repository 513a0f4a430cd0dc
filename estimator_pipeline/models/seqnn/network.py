"""SeqNN: basenji's sequence-to-coverage model, built from its JSON params file.

  python train.py --model_name=seqnn --params_file=params.json --model_dir=runs/cage \
      --train_record_path='data/tfrecords/train-*.tfr' \
      --eval_record_path='data/tfrecords/valid-*.tfr'

The `model` section of the params file is read as basenji's SeqNN reads it: the trunk
blocks in order, basenji's final trunk activation, then the head block(s). Variables
live under `trunk/<block>_<i>/...` and `head/<block>_<i>/...`, so
--checkpoint_exclude_scopes=head warm-starts a new head on a trained trunk and
--scopes_to_freeze=trunk keeps that trunk as it is.

For serving, `serving_outputs` adds the one-hot signature, the optional test-time
ensemble (reverse complement and shifts, averaged in the graph, as basenji's
--rc --shifts), the `saliency` signature (input x gradient for one target), the
`integrated_gradients` signature (attribution_signature.py) and the
`variant_effect` signature (reference and alternative DNA -> basenji's SAD and logSAD
per target, strand-summed too for a model with strand pairs, and both predictions) and
the `gene_variant_effect` signature (the same DNA and a gene's exon-bin mask -> the
gene-level statistics of export.gene_variants).
"""

import functools
import json

import tensorflow as tf

from estimator_pipeline.config import params as params_lib
from estimator_pipeline.data import sequence_ops
from estimator_pipeline.models import model
from estimator_pipeline.models import spec
from estimator_pipeline.models.seqnn import adapters as adapters_lib
from estimator_pipeline.models.seqnn import attribution_signature
from estimator_pipeline.models.seqnn import blocks
from estimator_pipeline.models.seqnn import describe
from estimator_pipeline.models.seqnn import layers
from estimator_pipeline.models.seqnn import metrics
from estimator_pipeline.models.seqnn import recompute
from estimator_pipeline.models.seqnn import weights

v1 = tf.compat.v1

PREDICTIONS = 'predictions'
ONEHOT_SIGNATURE = 'onehot'
SALIENCY_SIGNATURE = 'saliency'
# Features the sequence serving receiver adds beside 'sequence' (the one-hot input).
TEXT_FEATURE = 'sequence_text'
TARGET_INDEX_FEATURE = 'target_index'
VARIANT_SIGNATURE = 'variant_effect'
# The export's strand pairs, in assets.extra/ ({"strand_pair": [...] or null}), for
# ensembles averaged around its `onehot` signature (analysis/strands.py).
STRAND_PAIR_ASSET = 'strand_pair.json'
# The variant_effect signature's inputs (DNA text) and their one-hot features.
REF_TEXT_FEATURE, ALT_TEXT_FEATURE = 'ref_sequence', 'alt_sequence'
REF_ONEHOT_FEATURE, ALT_ONEHOT_FEATURE = 'ref_onehot', 'alt_onehot'
_VARIANT_FEATURES = (REF_TEXT_FEATURE, ALT_TEXT_FEATURE, REF_ONEHOT_FEATURE,
                     ALT_ONEHOT_FEATURE)
GENE_SIGNATURE = 'gene_variant_effect'
# gene_variant_effect: the same DNA as one-hot with N = 0 (baskerville's), and the
# mask of the gene's bins, float [batch, bins] (1 = scored; default: every bin).
REF_ONEHOT0_FEATURE, ALT_ONEHOT0_FEATURE = 'ref_onehot_n0', 'alt_onehot_n0'
BINS_FEATURE = 'exon_bins'
_GENE_FEATURES = (REF_TEXT_FEATURE, ALT_TEXT_FEATURE, REF_ONEHOT0_FEATURE,
                  ALT_ONEHOT0_FEATURE, BINS_FEATURE)


def block_args(model_params, block):
  """basenji's build_block: globals injected where the block takes them, then the
  block's own keys (which win); keys the block takes and ignores are dropped."""
  spec = params_lib.BLOCKS[block['name']]
  globals_ = dict(model_params)
  if globals_.get('batch_norm') and 'norm_type' not in globals_:
    globals_['norm_type'] = 'batch'  # basenji's older global.
  args = {k: globals_[k] for k in params_lib.GLOBAL_KEYS
          if k in spec.used and globals_.get(k)}
  args.update({k: v for k, v in block.items()
               if k != 'name' and k not in spec.ignored})
  return args


def head_blocks(model_params):
  """The head's blocks: model.head, or basenji's first head* in natural order."""
  key = 'head' if 'head' in model_params else params_lib.head_names(model_params)[0]
  head = model_params[key]
  return head if isinstance(head, list) else [head]


def _build_blocks(model_params, group, block_list, x, ctx, keep_reprs):
  for i, block in enumerate(block_list):
    scope = '%s_%d' % (block['name'], i)
    with v1.variable_scope(scope):
      try:
        args = block_args(model_params, block)
        if (block['name'] in blocks.RECOMPUTED_BY_REPETITION or
            block['name'] in blocks.NOT_RECOMPUTED):
          x = blocks.build(block['name'], x, args, ctx=ctx)
        else:
          x = recompute.recomputed(ctx, functools.partial(
              _block, block['name'], args), x)
      except ValueError as e:
        # Name the block: TensorFlow's shape errors do not.
        raise ValueError('%s/%s: %s' % (group, scope, e)) from None
    if keep_reprs:
      ctx.reprs.append(x)
  return x


def _block(name, args, x, ctx):
  return blocks.build(name, x, args, ctx=ctx)


def build_network(model_params, x, is_training, gelu='tanh', adapters=None,
                  recompute=False):
  """[batch, L, 4] -> [batch, target_length, units], in variable scopes trunk/, head/.

  adapters: a transfer's adapters.Adapters (what trains, the adapter layers).
  recompute: recompute each trunk block's activations in the backward pass."""
  ctx = layers.Context(is_training, gelu, adapters=adapters, recompute=recompute)
  getter = adapters.getter if adapters else None
  with v1.variable_scope('trunk', custom_getter=getter):
    x = _build_blocks(model_params, 'trunk', model_params['trunk'], x, ctx, True)
    # basenji's SeqNN ends its trunk with the global activation.
    with tf.name_scope('activation'):
      x = layers.activate(x, model_params.get('activation', 'relu'), gelu)
  ctx.recompute = False
  with v1.variable_scope('head', custom_getter=getter):
    return _build_blocks(model_params, 'head', head_blocks(model_params), x, ctx,
                         False)


def make_adapters(model_params, transfer, gelu='tanh', merged=False):
  """The adapters.Adapters of a transfer (config/transfer.py's settings), from a plain
  build of the network in a throw-away graph; None without a transfer."""
  if not transfer:
    return None
  key = json.dumps([model_params, gelu], sort_keys=True, default=str)
  if key not in _SURVEYS:
    with tf.Graph().as_default() as graph:
      x = v1.placeholder(tf.float32, [1, model_params['seq_length'], 4])
      build_network(model_params, x, False, gelu)
    # A model is built many times in a run (preflight, each mode, exports).
    _SURVEYS.clear()
    _SURVEYS[key] = adapters_lib.Survey(graph)
  return adapters_lib.Adapters(transfer, _SURVEYS[key], merged)


_SURVEYS = {}


def merge_checkpoint(model_params, transfer, checkpoint, prefix, gelu='tanh'):
  """Writes checkpoint with the transfer's LoRA, IA3 and LoCon folded into the base
  weights (hound_transfer's model_best.mergeW.h5) at prefix; returns prefix."""
  adapters = make_adapters(model_params, transfer, gelu)
  reader = tf.train.load_checkpoint(checkpoint)
  values = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}
  return weights.save_arrays(adapters_lib.merged_values(values, adapters), prefix)


class FixedInputsPredictOutput(tf.estimator.export.PredictOutput):
  """A predict signature with its own inputs instead of the receiver's.

  The Estimator gives every signature the serving receiver's tensors; the one-hot and
  saliency signatures take other tensors of the same graph.
  """

  def __init__(self, outputs, inputs):
    super().__init__(outputs)
    self._inputs = dict(inputs)

  def as_signature_def(self, receiver_tensors):
    del receiver_tensors
    return super().as_signature_def(self._inputs)


class SeqNN(model.Model):
  """basenji's SeqNN behind the Model contract; num_classes is the number of targets."""

  layout = 'sequence'

  def __init__(self, is_training, num_classes=None, *, params, loss='poisson',
               loss_params=None, gelu='tanh', ensemble_rc=False, ensemble_shifts=(0,),
               target_names=None, transfer=None, merged=False, recompute_trunk=False,
               **kwargs):
    super().__init__(is_training, num_classes, **kwargs)
    self.model_params = params
    self.loss_name = loss
    self.loss_params = metrics.loss_params(loss, loss_params or {})
    self.gelu = gelu
    # basenji's strand_pair of the head: which target is each target's other strand.
    pairs = params.get('strand_pair') or []
    self.strand_pair = list(pairs[0]) if pairs and pairs[0] else None
    self.ensemble_rc = ensemble_rc
    self.ensemble_shifts = tuple(ensemble_shifts) or (0,)
    self.target_names = target_names
    # A params file's transfer (config/transfer.py); merged: its LoRA, IA3 and LoCon
    # already folded into the weights (an export).
    self.adapters = make_adapters(params, transfer, gelu, merged)
    self.recompute_trunk = recompute_trunk

  def _network(self, x, is_training):
    return build_network(self.model_params, x, is_training, self.gelu, self.adapters,
                         self.recompute_trunk and is_training)
  def preprocess(self, inputs):
    return tf.cast(inputs['sequence'], tf.float32)

  def predict(self, preprocessed_inputs):
    net = tf.autograph.experimental.do_not_convert(self._network)
    return {PREDICTIONS: net(preprocessed_inputs, self.is_training)}

  def postprocess(self, prediction_dict):
    return {PREDICTIONS: prediction_dict[PREDICTIONS]}

  def loss(self, prediction_dict, groundtruth):
    loss = metrics.LOSSES[self.loss_name](tf.cast(groundtruth, tf.float32),
                                          prediction_dict[PREDICTIONS],
                                          **self.loss_params)
    return {'loss': loss, '%s_loss' % self.loss_name: loss}

  def accuracy(self, postprocessed_dict, groundtruth):
    preds = postprocessed_dict[PREDICTIONS]
    if self.loss_name == 'bce':
      return metrics.binary_metrics(groundtruth, preds, self.target_names)
    return metrics.regression_metrics(groundtruth, preds, self.target_names)

  def ensemble_predictions(self, onehot):
    """basenji's --rc --shifts: the mean prediction over shifted and reverse-complemented
    copies of the input, each prediction flipped back along length (and, with a
    strand_pair, each stranded target swapped with its other strand)."""
    shifts = self.ensemble_shifts
    max_shift = max(abs(s) for s in shifts)
    preds = []
    with v1.variable_scope(v1.get_variable_scope(), reuse=v1.AUTO_REUSE):
      for shift in shifts:
        shifted = sequence_ops.shift_sequence(onehot, shift, max_shift)
        preds.append(self._network(shifted, False))
        if self.ensemble_rc:
          rc = sequence_ops.reverse_complement(shifted)
          pred = tf.reverse(self._network(rc, False), axis=[-2])
          if self.strand_pair:
            pred = tf.gather(pred, self.strand_pair, axis=-1)
          preds.append(pred)
    return tf.add_n(preds) / float(len(preds))

  def serving_predictions(self, onehot, ensemble=True):
    """Inference predictions of another input of the serving graph (its variables
    shared), through the ensemble when there is one (and ensemble is True)."""
    if ensemble and (self.ensemble_rc or self.ensemble_shifts != (0,)):
      return self.ensemble_predictions(onehot)
    with v1.variable_scope(v1.get_variable_scope(), reuse=v1.AUTO_REUSE):
      return self._network(onehot, False)

  def _allele_predictions(self, ref, alt):
    both = self.serving_predictions(tf.concat([ref, alt], axis=0))
    count = tf.shape(ref)[0]
    return both[:count], both[count:]

  def _strand_sum(self, values):
    """[..., targets] -> each target plus its other strand (itself if unstranded)."""
    other = tf.gather(values, self.strand_pair, axis=-1)
    stranded = tf.constant([p != i for i, p in enumerate(self.strand_pair)])
    return tf.where(stranded, values + other, values)

  def variant_effect(self, features):
    """The variant_effect signature: reference and alternative windows predicted in
    one batch; sad and log_sad as basenji_sad.py's SAD and logSAD (sums over bins).
    A model with strand pairs also gives strand_sad and strand_log_sad: each target's
    value plus its other strand's, as a stranded targets table sums them."""
    ref_preds, alt_preds = self._allele_predictions(features[REF_ONEHOT_FEATURE],
                                                    features[ALT_ONEHOT_FEATURE])

    def log2_sum(x):
      return tf.reduce_sum(tf.math.log(x + 1.0), axis=1) / tf.math.log(2.0)

    outputs = {
        'sad': tf.subtract(tf.reduce_sum(alt_preds, axis=1),
                           tf.reduce_sum(ref_preds, axis=1), name='sad'),
        'log_sad': tf.subtract(log2_sum(alt_preds), log2_sum(ref_preds),
                               name='log_sad'),
        'ref_predictions': tf.identity(ref_preds, name='ref_predictions'),
        'alt_predictions': tf.identity(alt_preds, name='alt_predictions')}
    if self.strand_pair:
      for name in ('sad', 'log_sad'):
        outputs['strand_' + name] = tf.identity(self._strand_sum(outputs[name]),
                                                name='strand_' + name)
    return FixedInputsPredictOutput(
        outputs, {REF_TEXT_FEATURE: features[REF_TEXT_FEATURE],
                  ALT_TEXT_FEATURE: features[ALT_TEXT_FEATURE]})

  def gene_variant_effect(self, features):
    """The gene_variant_effect signature: the windows as baskerville's boolean
    one-hot (N = 0), predicted, and export.gene_variants' statistics over the bins
    of exon_bins (a gene's exon bins), per target: sum, log_sum, log_sed, d1, d2, sax
    (the first bin of the largest |alt - ref| on a tie), and both predictions. A +
    gene reads its + and unstranded targets, a - gene its - and unstranded ones."""
    ref, alt = self._allele_predictions(features[REF_ONEHOT0_FEATURE],
                                        features[ALT_ONEHOT0_FEATURE])
    mask = tf.cast(features[BINS_FEATURE], tf.float32)
    mask = tf.broadcast_to(mask, tf.shape(ref)[:2])[..., None]
    lg_ref, lg_alt = (tf.math.log(x + 1.0) / tf.math.log(2.0) for x in (ref, alt))
    diff = (alt - ref) * mask
    # Bins outside the mask can never be the largest difference.
    where = tf.argmax(tf.abs(diff) - (1.0 - mask) * 1e30, axis=1,
                      output_type=tf.int32)
    outputs = {
        'sum': tf.reduce_sum(alt * mask, 1) - tf.reduce_sum(ref * mask, 1),
        'log_sum': tf.reduce_sum(lg_alt * mask, 1) - tf.reduce_sum(lg_ref * mask, 1),
        'log_sed': (tf.math.log(tf.reduce_sum(alt * mask, 1) + 1.0) -
                    tf.math.log(tf.reduce_sum(ref * mask, 1) + 1.0)) / tf.math.log(2.0),
        'd1': tf.reduce_sum(tf.abs(diff), 1),
        'd2': tf.sqrt(tf.reduce_sum(tf.square(diff), 1)),
        'sax': tf.gather(tf.transpose(diff, [0, 2, 1]), where, axis=2, batch_dims=2),
        'ref_predictions': ref, 'alt_predictions': alt}
    outputs = {k: tf.identity(v, name='gene_' + k) for k, v in outputs.items()}
    return FixedInputsPredictOutput(
        outputs, {REF_TEXT_FEATURE: features[REF_TEXT_FEATURE],
                  ALT_TEXT_FEATURE: features[ALT_TEXT_FEATURE],
                  BINS_FEATURE: features[BINS_FEATURE]})

  def serving_outputs(self, features, outputs):
    """-> (outputs, export_outputs) for PREDICT: serving_default, onehot, saliency,
    integrated_gradients, variant_effect (the last three when the receiver gives
    their inputs)."""
    onehot = features['sequence']
    if self.ensemble_rc or self.ensemble_shifts != (0,):
      outputs = {PREDICTIONS: self.ensemble_predictions(onehot)}
    preds = outputs[PREDICTIONS]
    default = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
    export_outputs = {
        default: tf.estimator.export.PredictOutput(outputs),
        ONEHOT_SIGNATURE: FixedInputsPredictOutput(outputs, {'sequence': onehot}),
    }
    if TEXT_FEATURE in features and TARGET_INDEX_FEATURE in features:
      target_index = features[TARGET_INDEX_FEATURE]
      # Sum over length of the chosen target's prediction, per example; examples do
      # not interact at inference (batch norm uses its moving statistics), so one
      # gradient of the batch sum gives every example's own gradient.
      chosen = tf.gather(preds, tf.cast(target_index, tf.int32), axis=2, batch_dims=1)
      gradient = tf.gradients(tf.reduce_sum(chosen), onehot)[0]
      saliency = tf.identity(onehot * gradient, name='saliency')
      export_outputs[SALIENCY_SIGNATURE] = FixedInputsPredictOutput(
          {'saliency': saliency,
           'scores': tf.reduce_sum(saliency, axis=-1, name='scores')},
          {'sequence': features[TEXT_FEATURE], 'target_index': target_index})
      export_outputs[attribution_signature.IG_SIGNATURE] = FixedInputsPredictOutput(
          attribution_signature.integrated_gradients(
              lambda x: self.serving_predictions(x, ensemble=False), onehot,
              target_index),
          {'sequence': features[TEXT_FEATURE], 'target_index': target_index})
    if all(name in features for name in _VARIANT_FEATURES):
      export_outputs[VARIANT_SIGNATURE] = self.variant_effect(features)
    if all(name in features for name in _GENE_FEATURES):
      export_outputs[GENE_SIGNATURE] = self.gene_variant_effect(features)
    return outputs, export_outputs


SPECS = [spec.ModelSpec(name='seqnn', build=SeqNN, layout='sequence',
                        head_scopes=('head',), describe=describe.describe)]
