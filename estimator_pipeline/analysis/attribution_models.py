r"""The model an attribution method reads, from any model source.

  python -m export.attribution --method=ig --saved_model=runs/cage/export/best ...
  python -m export.attribution --method=deepshap --params_file=params.json \
      --checkpoint=model_best.h5 ...

- ism reads predictions only: model_source.load, so any source and the ensemble
  flags work as in export.mutagenesis.
- saliency, ig and deepshap with --params_file and --checkpoint build the network's
  gradient graph (attribution_graph.py): every readout, baseline and step count.
- with --saved_model, saliency and ig read the export's `saliency` and
  `integrated_gradients` signatures (one target, every bin summed, ig from zeros with
  the export's steps); deepshap needs the network's blocks, so a params file.
"""

import numpy as np

from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import attribution_graph
from estimator_pipeline.analysis import exports
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.analysis import strands
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import attribution_signature
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.records import dna


class PredictionExplainer:
  """ism over any sequence model's predictions."""

  def __init__(self, model, transform):
    self.model, self.transform = model, transform
    self.seq_length, self.bins = model.seq_length, model.bins
    self.num_targets = model.num_targets
    self.strand_pair = getattr(model, 'strand_pair', None)

  def predict_readout(self, onehot, weights):
    return readout_lib.apply(self.model.predict(onehot), weights[0], weights[1],
                             self.transform)

  def explain(self, rows, weights, options):
    return attribution.explain(None, rows, weights, options, self.predict_readout)


class NetworkExplainer:
  """saliency, ig and deepshap through the network's own gradient graph."""

  def __init__(self, net):
    self.net = net
    self.seq_length, self.bins = net.seq_length, net.bins
    self.num_targets, self.strand_pair = net.num_targets, net.strand_pair

  def explain(self, rows, weights, options):
    return attribution.explain(self.net, rows, weights, options)


class SignatureExplainer:
  """saliency and ig through an export's signatures (one target, all bins, sum)."""

  def __init__(self, export, method):
    self.method = method
    inputs, outputs = export.tensors(network.ONEHOT_SIGNATURE)
    self._session = export.session
    self._onehot, self._predictions = inputs['sequence'], outputs[network.PREDICTIONS]
    self.seq_length = int(self._onehot.shape[1])
    self.bins, self.num_targets = [int(d) for d in self._predictions.shape[1:]]
    self.strand_pair = strands.export_pairs(export.path, self.num_targets)
    name = (network.SALIENCY_SIGNATURE if method == 'saliency' else
            attribution_signature.IG_SIGNATURE)
    if name not in export.signatures:
      raise UserError('--saved_model=%s has no %r signature: export it again with '
                      'this version of the pipeline, or pass the model as '
                      '--params_file with --checkpoint.' % (export.path, name))
    inputs, outputs = export.tensors(name)
    self._index = inputs[network.TARGET_INDEX_FEATURE]
    self._output = outputs['hypothetical' if method == 'ig' else 'saliency']
    self.steps = attribution_signature.IG_STEPS

  def check(self, readout, options):
    """UserError unless the readout is what the signature computes."""
    plain = (len(readout.targets) == 1 and readout.bins == (0, self.bins) and
             readout.transform == 'sum')
    if not plain:
      raise UserError('with --saved_model, --method=%s explains one target summed '
                      'over every bin (--targets=N --bins=all --transform=sum): pass '
                      'the model as --params_file with --checkpoint for other '
                      'readouts.' % self.method)
    if self.method == 'ig' and (options.baseline != 'zeros' or
                                options.steps != self.steps):
      raise UserError('--saved_model=... integrates from zeros in %d steps: pass '
                      '--baseline=zeros --steps=%d, or the model as --params_file '
                      'with --checkpoint.' % (self.steps, self.steps))

  def explain(self, rows, weights, options):
    del options
    x = dna.one_hot(np.stack([r.codes for r in rows]))
    targets = np.argmax(weights[1], axis=1).astype(np.int32)
    found, preds = self._session.run((self._output, self._predictions), {
        self._onehot: x, self._index: targets})
    values = readout_lib.apply(preds, weights[0], weights[1], 'sum')
    base = np.zeros(len(rows))
    if self.method == 'ig':  # F of the all-zero baseline, for completeness
      zeros = self._session.run(self._predictions, {self._onehot: np.zeros_like(x)})
      base = readout_lib.apply(zeros, weights[0], weights[1], 'sum')
    # The saliency signature gives input x gradient only: the base present.
    return found, values, base


def load(method, model_kwargs, transform):
  """-> the explainer of method for the model the flags name (checked)."""
  model_source.check_source(**{k: model_kwargs.get(k, '') for k in (
      'saved_model', 'params_file', 'checkpoint', 'head', 'gelu')},
                            batch_size=model_kwargs.get('batch_size', 8))
  if method == 'ism':
    return PredictionExplainer(model_source.load(**model_kwargs), transform)
  ensembled = (model_kwargs.get('ensemble_rc') or
               tuple(model_kwargs.get('ensemble_shifts') or (0,)) != (0,))
  if ensembled:
    raise UserError('--method=%s explains one network: leave --ensemble_rc and '
                    '--ensemble_shifts out (--method=ism reads the ensemble).'
                    % method)
  if model_kwargs.get('saved_model'):
    if method == 'deepshap':
      raise UserError('--method=deepshap needs the network\'s blocks: pass the model '
                      'as --params_file with --checkpoint, or use --method=ig.')
    return SignatureExplainer(exports.load_export(model_kwargs['saved_model']),
                              method)
  net = attribution_graph.load(model_kwargs['params_file'],
                               model_kwargs['checkpoint'], transform,
                               deeplift=method == 'deepshap',
                               head=model_kwargs.get('head', ''),
                               gelu=model_kwargs.get('gelu', ''))
  return NetworkExplainer(net)
