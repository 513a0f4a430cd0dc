r"""What an attribution explains: a scalar read out of a prediction [bins, targets].

  python -m export.attribution ... --targets=0,2 --bins=center:4 --transform=log

The readout of one sequence is transform(sum over bins b and targets t of
bin_weights[b] * target_weights[t] * prediction[b, t]); the weights are 1 on the
chosen bins and targets and 0 elsewhere (the network's graph and numpy give the same
scalar):

- targets: indices (`0,2`) or a basenji targets table (its `index` column);
- bins: `all`, `center:N` (the N middle bins), `A:B` (bins A to B-1), or a gene's
  exon bins (every bin that overlaps an exon of --gene in --gtf);
- transform: `sum`, or `log` = log(sum + 1), as borzoi_satg_gene.py's log readout.

Stranded targets follow the strand of the region: on a `-` region each chosen target
is replaced by its other strand (stranded_targets, with the model's strand_pair: the
params file's, or the pairs an export carries, analysis/strands.py), as
borzoi_satg_gene.py reads a minus-strand gene's minus-strand tracks.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core.errors import UserError

TRANSFORMS = ('sum', 'log')


@dataclasses.dataclass
class Readout:
  """The chosen targets (as named, + strand), bins [start, end) and transform."""
  targets: List[int]
  bins: Tuple[int, int]
  transform: str = 'sum'
  strand_pair: Optional[Sequence[int]] = None

  def weights(self, num_bins, num_targets, strand='+', exon_bins=None):
    """(float32 [bins], float32 [targets]): 1 on the bins (exon_bins if given) and on
    the targets of the region's strand."""
    bin_weights = np.zeros(num_bins, np.float32)
    bin_weights[list(exon_bins) if exon_bins is not None else
                slice(*self.bins)] = 1.0
    target_weights = np.zeros(num_targets, np.float32)
    target_weights[stranded_targets(self.targets, strand, self.strand_pair)] = 1.0
    return bin_weights, target_weights

  def describe(self):
    return 'targets %s, bins %d-%d, %s' % (
        ','.join(str(t) for t in self.targets), self.bins[0], self.bins[1] - 1,
        'log(sum + 1)' if self.transform == 'log' else 'sum')


def stranded_targets(targets, strand, strand_pair):
  """The targets a region of this strand reads: on `-`, each target's other strand
  (strand_pair[t], basenji's params `strand_pair`); unchanged on `+`, or when the
  model has no strand pairs (unstranded targets pair with themselves)."""
  if strand != '-' or not strand_pair:
    return list(targets)
  return [int(strand_pair[t]) for t in targets]


def parse_targets(text, num_targets):
  """--targets: comma-separated indices, or a targets table's `index` column."""
  if text and os.path.isfile(text):
    rows = variant_stats.read_table(text, required=('identifier',))
    values = [(row['index'], 'line %d' % number) for number, row in rows]
    where = '--targets=%s' % text
  else:
    values = [(v.strip(), None) for v in (text or '0').split(',') if v.strip()]
    where = '--targets=%s' % text
  found = []
  for value, line in values:
    if not value.isdigit() or int(value) >= num_targets:
      raise UserError('%s%s: %r is not a target of the model (0 to %d); pass indices '
                      'such as --targets=0,2 or a targets table.' % (
                          where, ' ' + line if line else '', value, num_targets - 1))
    found.append(int(value))
  if not found:
    raise UserError('%s names no target: pass indices such as --targets=0,2.' % where)
  return found


def parse_bins(text, num_bins):
  """--bins: all, center:N or A:B -> [start, end) inside the model's bins."""
  text = (text or 'all').strip()
  if text == 'all':
    return 0, num_bins
  try:
    if text.startswith('center:'):
      count = int(text.split(':', 1)[1])
      start = (num_bins - count) // 2
      span = (start, start + count)
    else:
      first, last = text.split(':')
      span = (int(first), int(last))
  except ValueError:
    raise UserError('--bins=%s: pass all, center:N (the N middle bins) or A:B (bins A '
                    'to B-1).' % text) from None
  if not 0 <= span[0] < span[1] <= num_bins:
    raise UserError('--bins=%s is outside the model\'s %d bins: ranges go from 0 to '
                    '%d, e.g. --bins=center:%d.' % (text, num_bins, num_bins,
                                                    min(4, num_bins)))
  return span


def exon_bins(gene, window_start, seq_length, num_bins, bin_size):
  """Bins of a window [window_start, + seq_length) that overlap the gene's exons; the
  bins cover bins * bin_size bp centred in the window (a model that crops)."""
  first = window_start + (seq_length - num_bins * bin_size) // 2
  found = set()
  for start, end in gene.exons:
    low = max(0, (start - first) // bin_size)
    high = min(num_bins, -(-(end - first) // bin_size))
    found.update(range(low, high))
  return sorted(found)


def apply(preds, bin_weights, target_weights, transform):
  """numpy: preds [n, bins, targets], weights [n, bins] and [n, targets] -> [n]."""
  total = np.einsum('nbt,nb,nt->n', np.asarray(preds, np.float64), bin_weights,
                    target_weights)
  return np.log(total + 1.0) if transform == 'log' else total


def tf_apply(preds, bin_weights, target_weights, transform, nonlinear=None):
  """The graph's readout; nonlinear(fn, x) wraps the log (DeepLIFT's rescale)."""
  total = tf.einsum('nbt,nb,nt->n', preds, bin_weights, target_weights)
  if transform != 'log':
    return total
  log = lambda x: tf.math.log(x + 1.0)  # noqa: E731
  return nonlinear(log, total) if nonlinear else log(total)
