r"""Which bases drive a readout: saliency, integrated gradients, DeepSHAP and ISM, with
the hypothetical contributions TF-MoDISco reads.

  python -m export.attribution --method=deepshap --params_file=params.json \
      --checkpoint=model_best.h5 --fasta=genome.fa --bed=regions.bed --output_dir=attr/

Each method gives, per sequence x (one-hot [L, 4], N all zero), hypothetical
contributions H [L, 4] (what each base would contribute at each position) and the
contributions C = H * x (the base present); TF-MoDISco takes both.

- saliency: H = the gradient of the readout; C is input x gradient.
- ig: integrated gradients from a baseline b, the path integral by Gauss-Legendre
  quadrature of --steps nodes (captum's default rule); b is all zeros, or K
  dinucleotide-shuffled copies of x (expected gradients, averaged). With mean path
  gradient g: H = g - sum_j g_j b_j per position, so sum C = F(x) - F(b) up to the
  quadrature (completeness).
- deepshap: DeepLIFT's rescale rule (attribution_graph.py) against K dinucleotide
  shuffles r of x, averaged, as tangermeme's deep_lift_shap: multipliers m, H = m -
  sum_j m_j r_j; sum C = F(x) - mean F(r) exactly (summation to delta).
- ism: every base of the central --ism_length (the whole window by default) changed
  to each other base (analysis/mutagenesis.py's mutants): H is each variant's readout
  minus the mean over the four bases at its position (mutagenesis' centring).

The readout (analysis/readout.py) is what is explained: targets, bins, transform.
"""

import dataclasses
from typing import List, Optional

import numpy as np

from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.models.seqnn import attribution_signature
from estimator_pipeline.records import dna

METHODS = ('saliency', 'ig', 'deepshap', 'ism')
# Methods whose baseline is a set of shuffled references.
SHUFFLED = ('deepshap',)


@dataclasses.dataclass
class Row:
  """One sequence to explain and where it comes from."""
  codes: np.ndarray  # uint8 [L], A0 C1 G2 T3 N4
  name: str
  chrom: str = ''
  start: int = -1  # the window on the chromosome, 0-based half-open; -1 unknown
  end: int = -1
  strand: str = '+'
  exon_bins: Optional[List[int]] = None  # a gene's exon bins, when the readout is


@dataclasses.dataclass
class Options:
  method: str = 'saliency'
  steps: int = 50
  baseline: str = 'zeros'  # ig: zeros or shuffle
  references: int = 10  # K shuffles (deepshap; ig with baseline shuffle)
  ism_length: int = 0  # 0: the whole window
  seed: int = 0
  batch_size: int = 8  # sequences (or references) per network call


def dinucleotide_shuffle(codes, rng):
  """A shuffle of codes [L] that keeps every dinucleotide count (Altschul-Erickson,
  as deeplift's and tangermeme's dinucleotide_shuffle: a random Eulerian path through
  the sequence's transitions, each symbol's last transition kept)."""
  codes = np.asarray(codes)
  if len(codes) < 3:
    return codes.copy()
  nexts = {}
  for symbol in np.unique(codes).tolist():
    found = np.nonzero(codes[:-1] == symbol)[0] + 1
    order = np.arange(len(found))
    if len(found) > 1:
      order[:-1] = rng.permutation(len(found) - 1)
    nexts[symbol] = found[order].tolist()
  # The walk is sequential: plain lists are several times faster than numpy here.
  values = codes.tolist()
  counters = dict.fromkeys(nexts, 0)
  out = [values[0]]
  index = 0
  for _ in range(1, len(values)):
    symbol = values[index]
    index = nexts[symbol][counters[symbol]]
    counters[symbol] += 1
    out.append(values[index])
  return np.array(out, dtype=codes.dtype)


def shuffled_references(codes, count, seed):
  """[count, L] dinucleotide shuffles of codes, seeded by the sequence itself so a
  row gets the same references whatever its batch. N stays where it is and each
  stretch between Ns is shuffled alone: at an N the reference equals the input, so
  the contributions of the bases present sum to the whole difference."""
  codes = np.asarray(codes)
  rng = np.random.RandomState((seed * 1000003 + int(np.sum(
      codes.astype(np.int64) * np.arange(len(codes)) % 65521))) % (2 ** 31))
  out = np.repeat(codes[None], count, axis=0)
  known = np.concatenate([[False], codes < dna.N_INDEX, [False]]).astype(np.int8)
  edges = np.nonzero(np.diff(known))[0].reshape(-1, 2)
  for k in range(count):
    for start, end in edges:
      out[k, start:end] = dinucleotide_shuffle(codes[start:end], rng)
  return out


def hypothetical(multipliers, references):
  """H = m - sum_j m_j r_j per position; multipliers, references [..., L, 4]."""
  return multipliers - (multipliers * references).sum(axis=-1, keepdims=True)


def explain(net, rows, weights, options, predict_readout=None):
  """-> (hypothetical [n, L, 4], readout of x [n], readout of the baseline [n]).

  net: an attribution_graph.AttributionNetwork (saliency, ig, deepshap);
  predict_readout(one-hot, weights) -> [n] for ism (any model). weights: (bin
  weights [n, bins], target weights [n, targets]) of the rows.
  """
  x = dna.one_hot(np.stack([r.codes for r in rows]))
  method = options.method
  if method == 'saliency':
    gradient, values = net.gradient_and_readout(x, weights)
    return gradient, values, np.zeros(len(rows))
  if method == 'ism':
    return ism(rows, x, weights, options, predict_readout)
  if method == 'ig' and options.baseline == 'zeros':
    baselines = np.zeros((len(rows), 1) + x.shape[1:], np.float32)
  else:
    baselines = dna.one_hot(np.stack([
        shuffled_references(r.codes, options.references, options.seed)
        for r in rows]))
  count = baselines.shape[1]
  hyp = np.zeros(x.shape, np.float64)
  values, base_values = None, np.zeros(len(rows))
  for k in range(count):
    b = baselines[:, k]
    if method == 'ig':
      mult = integrated_gradient(net, x, b, weights, options)
      base_values += net.readout(b, weights)
    else:  # One pass gives the multipliers and the readouts of x and of b.
      mult, both = net.gradient_and_readout(np.concatenate([x, b]), _twice(weights))
      values = both[:len(x)]
      base_values += both[len(x):]
    hyp += hypothetical(mult, b)
  if values is None:
    values = net.readout(x, weights)
  return (hyp / count).astype(np.float32), values, base_values / count


def integrated_gradient(net, x, baseline, weights, options):
  """The mean gradient on the straight path from baseline to x [n, L, 4]."""
  alphas, quad = attribution_signature.quadrature(options.steps)
  total = np.zeros(x.shape, np.float64)
  per_call = max(1, options.batch_size // max(1, len(x)))
  for first in range(0, len(alphas), per_call):
    chunk = alphas[first:first + per_call]
    points = np.concatenate([baseline + a * (x - baseline) for a in chunk])
    grads = net.gradient(points, _repeat(weights, len(chunk)))
    grads = grads.reshape((len(chunk),) + x.shape)
    total += np.tensordot(quad[first:first + per_call], grads, axes=1)
  return total.astype(np.float32)


def ism(rows, x, weights, options, predict_readout):
  """Mean-centred saturation mutagenesis of each row's central --ism_length."""
  seq_length = x.shape[1]
  span = mutagenesis.mutated_span(seq_length, options.ism_length or seq_length)
  hyp = np.zeros(x.shape, np.float32)
  values = np.zeros(len(rows))
  regions = [mutagenesis.Region(r.codes) for r in rows]
  for items, batch in mutagenesis.mutant_batches(regions, span,
                                                 max(options.batch_size, 16)):
    index = [i for i, _, _ in items]
    found = predict_readout(batch, (weights[0][index], weights[1][index]))
    for (i, _, mutant), value in zip(items, found):
      if mutant is None:
        values[i] = value
        for position in range(*span):
          if rows[i].codes[position] < 4:
            hyp[i, position, rows[i].codes[position]] = value
          else:  # an N: every base's score is the unmutated window's
            hyp[i, position] = value
      else:
        hyp[i, mutant[0], mutant[1]] = value
  inside = slice(*span)
  hyp[:, inside] -= hyp[:, inside].mean(axis=-1, keepdims=True)
  return hyp, values, np.zeros(len(rows))


def _twice(weights):
  return tuple(np.concatenate([w, w]) for w in weights)


def _repeat(weights, count):
  return tuple(np.concatenate([w] * count) for w in weights)
