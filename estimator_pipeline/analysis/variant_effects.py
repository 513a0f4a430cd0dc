r"""Variant-effect statistics as baskerville's hound_snp.py and hound_snpgene.py compute
them: over S predictions (shifts) of N bins x T targets per allele, in float64.

  python -c "
  import numpy as np
  from estimator_pipeline.analysis import variant_effects
  ref, alt = np.ones((3, 64, 2)), np.full((3, 64, 2), 2.0)
  print(variant_effects.compute(ref, alt, ['logSUM', 'D2'])['D2'])"

With d = alt - ref, lg(x) = log2(x + 1) and sq(x) = sqrt(x), per target:
SUM, logSUM, sqrtSUM = the sum over shifts and bins of alt (lg, sq) minus that of ref,
divided by S; logSED = the mean over shifts of lg(sum over bins of alt) minus that of
ref; SAX = the mean over shifts of d at the bin of the largest |d| (the first such bin
on a tie, as numpy's argmax); D1, logD1, sqrtD1 = the mean over shifts of the sum over
bins of |d| (on lg, sq); D2, logD2, sqrtD2 = the mean over shifts of sqrt(sum of d^2);
JS and logJS = the mean over shifts of the Jensen-Shannon-style divergence of the
per-bin distributions (ref + pc and alt + pc, each normalised over bins, pc the 25th
percentile of ref over bins); REF and ALT the predictions themselves.

Where a targets table pairs strands, a statistic of the T table rows is summed into
the collapsed targets by the table's sum_matrix (the two strands of a pair into the
column of its + row); D2 and its forms add the squares and take the root. Values are
clipped to the float16 range and stored as float16.

Differences from baskerville, where its result is not what the statistic says: JS
works with any number of shifts (baskerville's pseudocount only broadcasts with one),
and logJS normalises over bins within each shift, as JS does (baskerville normalises
over the shift axis, which makes it 0 with one shift).
"""

import numpy as np
from scipy import special

from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core.errors import UserError

STATS = ('logSUM', 'SUM', 'sqrtSUM', 'logSED', 'SAX', 'D1', 'logD1', 'sqrtD1', 'D2',
         'logD2', 'sqrtD2', 'JS', 'logJS', 'REF', 'ALT')
PER_BIN = ('REF', 'ALT')
DEFAULT_STATS = 'logSUM'
_F16 = np.finfo(np.float16)
# basenji's names of the same sums, for a helpful message.
_RENAMED = {'SAD': 'SUM', 'logSAD': 'logSUM', 'sqrtSAD': 'sqrtSUM'}


def parse_stats(text, flag='--stats'):
  """'logSUM,D2' -> ('logSUM', 'D2'); UserError for a name this format lacks."""
  for old, new in _RENAMED.items():
    if old in [s.strip() for s in str(text).split(',')]:
      raise UserError('%s=%s: %s is basenji\'s name; in --format=baskerville the sum '
                      'over bins is %s.' % (flag, text, old, new))
  return variant_stats.parse_stats(text, known=STATS, flag=flag)


def untransform(preds, table_rows, old=False):
  """float32 [..., T] predictions -> float64, undoing the targets table's transforms.

  baskerville's rule (untransform_preds): where p > clip_soft, p = clip_soft - 1 +
  (p - clip_soft + 1)^2; then, for sum_stat *_sqrt targets, p = (p + 1)^2 - 1 (the
  square, where basenji's export.variants format uses the 4/3 power). old
  (--untransform_old, baskerville's -u, untransform_preds1): p /= scale; where p >
  clip_soft, p = clip_soft + (p - clip_soft)^2; *_sqrt: p^(4/3); p *= scale.
  """
  clip_soft = np.array([float(r['clip_soft']) for r in table_rows], np.float64)
  sqrt = np.array(['_sqrt' in r['sum_stat'] for r in table_rows])
  preds = np.asarray(preds)
  if old:
    scale = np.array([float(r['scale']) for r in table_rows], np.float64)
    preds = preds / scale
    preds = np.where(preds > clip_soft, clip_soft + (preds - clip_soft) ** 2, preds)
    preds[..., sqrt] = preds[..., sqrt] ** (4 / 3)
    return preds * scale
  unclipped = clip_soft - 1 + (preds - clip_soft + 1) ** 2
  preds = np.where(preds > clip_soft, unclipped, preds).astype(np.float64)
  preds[..., sqrt] = -1 + (preds[..., sqrt] + 1) ** 2
  return preds


def _f16(values):
  return np.clip(values, _F16.min, _F16.max).astype(np.float16)


def _js(ref, alt):
  """[S, N, T] each -> [T]: per shift, over bins, then the mean over shifts."""
  pseudocounts = np.percentile(ref, 25, axis=1, keepdims=True)
  ref_norm = ref + pseudocounts
  ref_norm /= ref_norm.sum(axis=1, keepdims=True)
  alt_norm = alt + pseudocounts
  alt_norm /= alt_norm.sum(axis=1, keepdims=True)
  dist = [(special.rel_entr(ref_norm[s], alt_norm[s]).sum(axis=0) +
           special.rel_entr(alt_norm[s], ref_norm[s]).sum(axis=0)) / 2
          for s in range(len(ref))]
  return np.mean(dist, axis=0)


def sax(diff):
  """[S, N, T] alt - ref -> [T]: per shift the value at the first bin of the largest
  |alt - ref| (numpy's argmax: a tie goes to the lower bin), then the mean."""
  targets = np.arange(diff.shape[2])
  return np.array([diff[s, np.argmax(np.abs(diff[s]), axis=0), targets]
                   for s in range(len(diff))]).mean(axis=0)


def compute(ref, alt, stats, strand_sum=None):
  """{stat: float16 values} of one variant: [T'] per statistic, REF and ALT [S, N, T'].

  ref, alt: float64 [S, N, T] (untransformed predictions). strand_sum: a float64 [T,
  T'] matrix (TargetTable.sum_matrix) or None. The operations follow baskerville's
  compute_scores, so the same predictions give the same float16 values.
  """
  shifts = ref.shape[0]
  forms = {'': (ref, alt)}
  if any(s.startswith('log') for s in stats):
    forms['log'] = (np.log2(ref + 1), np.log2(alt + 1))
  if any(s.startswith('sqrt') for s in stats):
    forms['sqrt'] = (np.sqrt(ref), np.sqrt(alt))
  out = {}
  for stat in stats:
    if stat in PER_BIN:
      preds = ref if stat == 'REF' else alt
      out[stat] = _f16(preds if strand_sum is None else preds @ strand_sum)
      continue
    prefix = 'log' if stat.startswith('log') else 'sqrt' if stat.startswith(
        'sqrt') else ''
    kind = stat[len(prefix):]
    r, a = forms.get(prefix, (ref, alt)) if kind != 'SED' else (ref, alt)
    if kind == 'SUM':
      value = a.sum(axis=(0, 1)) / shifts - r.sum(axis=(0, 1)) / shifts
    elif kind == 'SED':
      value = (np.log2(a.sum(axis=1) + 1).mean(axis=0) -
               np.log2(r.sum(axis=1) + 1).mean(axis=0))
    elif kind == 'SAX':
      value = sax(a - r)
    elif kind == 'D1':
      value = np.linalg.norm(a - r, ord=1, axis=1).mean(axis=0)
    elif kind == 'D2':
      value = np.linalg.norm(a - r, ord=2, axis=1).mean(axis=0)
    else:  # JS, logJS
      value = _js(r, a)
    if strand_sum is not None:
      value = (np.sqrt(np.power(value, 2) @ strand_sum) if kind == 'D2' else
               value @ strand_sum)
    out[stat] = _f16(value)
  return out
