r"""Variant-effect statistics of basenji_sad.py, from the reference and alternative
predictions ([bins, targets] each), and its targets table (slice and untransform).

  python -c "
  import numpy as np
  from estimator_pipeline.analysis import variant_stats
  ref, alt = np.ones((32, 3)), np.full((32, 3), 2.0)
  print(variant_stats.compute(ref, alt, ['SAD', 'logSAD', 'JS'])['SAD'])"

Every statistic is computed in the predictions' own precision and stored as float16,
as basenji stores it (the sums, log and sqrt forms, D1 and D2 clipped to the float16
range first): SAD = sum over bins of alt - ref; log* on log2(x + 1), sqrt* on sqrt(x);
SAX = alt - ref at the bin of the largest |alt - ref|; D1 = sum |alt - ref|; D2 =
sqrt(sum (alt - ref)^2); JS = the symmetric Kullback-Leibler divergence / 2 of the
per-bin distributions with the 25th percentile of ref as pseudocount; REF and ALT are
the predictions themselves. `<stat>_pct` are percentiles over the variants.
"""


import numpy as np
from scipy import special

from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import sequence_format

STATS = ('SAD', 'logSAD', 'sqrtSAD', 'SAX', 'D1', 'logD1', 'sqrtD1', 'D2', 'logD2',
         'sqrtD2', 'JS', 'logJS', 'REF', 'ALT')
# Per-bin predictions rather than one value per target.
PER_BIN = ('REF', 'ALT')
DEFAULT_STATS = 'SAD'
_F16 = np.finfo(np.float16)


def parse_stats(text, known=STATS, flag='--stats'):
  """'SAD,logSAD' -> ('SAD', 'logSAD'), duplicates dropped; UserError naming the
  unknown ones and the known ones.

  The one parser of --stats, export.variants' (known=STATS) and export.mutagenesis'
  (known=mutagenesis.STATS). Names are case-sensitive, as basenji_sad.py and
  basenji_sat_bed.py compare them (logSAD and LOGSAD would otherwise be one name);
  a name that differs from a known one only in case is named with it.
  """
  names = tuple(s.strip() for s in str(text).split(',') if s.strip())
  if not names:
    raise UserError('%s=%s: name at least one statistic; the known statistics are '
                    '%s.' % (flag, text, ', '.join(known)))
  by_lower = {k.lower(): k for k in known}
  for name in names:
    if name not in known:
      hint = by_lower.get(name.lower())
      raise UserError('%s=%s: unknown statistic %s%s; the known statistics are %s.' % (
          flag, text, name, ' (did you mean %s?)' % hint if hint else '',
          ', '.join(known)))
  return tuple(dict.fromkeys(names))


def percentiles():
  """basenji's 279 percentiles: 0.001..0.099, 0.10..0.89, 0.900..0.999."""
  return np.concatenate([np.arange(0.001, 0.1, 0.001), np.arange(0.1, 0.9, 0.01),
                         np.arange(0.9, 1, 0.001)])


def _f16(values, clip=True):
  if clip:
    values = np.clip(values, _F16.min, _F16.max)
  return values.astype(np.float16)


def _js(ref, alt):
  pseudocounts = np.percentile(ref, 25, axis=0)
  ref_norm = ref + pseudocounts
  ref_norm /= ref_norm.sum(axis=0)
  alt_norm = alt + pseudocounts
  alt_norm /= alt_norm.sum(axis=0)
  return (special.rel_entr(ref_norm, alt_norm).sum(axis=0) +
          special.rel_entr(alt_norm, ref_norm).sum(axis=0)) / 2


def compute(ref, alt, stats):
  """{stat: float16 values} of one variant: [targets], or [bins, targets] for REF/ALT.

  The operations and their order are basenji's write_snp_len, so equal predictions
  give equal float16 values.
  """
  forms = {'': (ref, alt),
           'log': (np.log2(ref + 1), np.log2(alt + 1)),
           'sqrt': (np.sqrt(ref), np.sqrt(alt))}
  out = {}
  for stat in stats:
    if stat in PER_BIN:
      out[stat] = _f16(ref if stat == 'REF' else alt)
      continue
    prefix = 'log' if stat.startswith('log') else 'sqrt' if stat.startswith(
        'sqrt') else ''
    kind = stat[len(prefix):]
    r, a = forms[prefix]
    if kind == 'SAD':
      out[stat] = _f16(a.sum(axis=0) - r.sum(axis=0))
    elif kind == 'SAX':
      diff = a - r
      out[stat] = _f16(diff[np.argmax(np.abs(diff), axis=0),
                            np.arange(diff.shape[1])], clip=False)
    elif kind == 'D1':
      out[stat] = _f16(np.abs(a - r).sum(axis=0))
    elif kind == 'D2':
      out[stat] = _f16(np.sqrt(np.power(a - r, 2).sum(axis=0)))
    else:  # JS
      out[stat] = _f16(_js(r, a), clip=False)
  return out


class Targets:
  """The targets a run scores: all of the model's (t0, t1, ...), or a targets table's
  rows in its order (analysis/targets.py), with basenji's untransform of the
  predictions; a table with strand pairs is summed into its collapsed targets, as
  basenji_sad.py sums the predictions (by the pair-partner rule)."""

  def __init__(self, num_targets, path=''):
    self.path, self.num_targets = path, num_targets
    if not path:
      self.table, self.index = targets_lib.model_targets(num_targets), None
      self.ids, self.labels = list(self.table.ids), list(self.table.labels)
      return
    self.table = targets_lib.read(path, num_targets, TABLE_COLUMNS[:3])
    self.index = list(self.table.index)
    clip_soft, sqrt = [], []
    for number, row in enumerate(self.table.rows, 2):
      where = '--targets_file=%s line %d' % (path, number)
      clip_soft.append(_number(row['clip_soft'], where, 'clip_soft', float))
      sqrt.append('_sqrt' in row['sum_stat'])
    # float32, as basenji's untransform meets the predictions (TF tensors there).
    self._clip_soft = np.array([clip_soft], np.float32)
    self._sqrt = np.array(sqrt)
    self._sum = None
    columns = range(len(self.index))
    if self.table.pair is not None:
      self._sum = self.table.sum_matrix().astype(np.float32)
      columns = self.table.collapsed
    self.ids = [self.table.ids[k] for k in columns]
    self.labels = [self.table.labels[k] for k in columns]

  def model_pairs(self):
    """The table's strand pairs as a permutation of the model's outputs, or None."""
    return self.table.model_pairs(self.num_targets)

  def apply(self, preds):
    """[..., bins, model targets] -> [..., bins, these targets], untransformed as
    basenji_sad.py does with -t (clip_soft undone, then the _sqrt power undone), and
    strand pairs summed."""
    if self.index is None:
      return preds
    preds = np.asarray(preds, np.float32)[..., self.index]
    cs = self._clip_soft
    preds = np.where(preds > cs, cs - 1 + (preds - cs + 1) ** 2, preds)
    preds[..., self._sqrt] = -1 + (preds[..., self._sqrt] + 1) ** (4 / 3)
    if self._sum is not None:
      preds = preds @ self._sum
    return preds


# Columns the variant scorer reads from basenji's targets table.
TABLE_COLUMNS = ('identifier', 'clip_soft', 'sum_stat', 'description')


def read_table(path, required=TABLE_COLUMNS[:3]):
  """basenji's targets table -> [(line number, {column: text})], with the columns the
  scorers read (records/sequence_format.py reads it, for the converter too)."""
  return sequence_format.read_targets_table(path,
                                            required=('index',) + tuple(required))


def _number(text, where, name, kind):
  try:
    return kind(text)
  except ValueError:
    raise UserError('%s: %s %r is not a number' % (where, name, text)) from None
