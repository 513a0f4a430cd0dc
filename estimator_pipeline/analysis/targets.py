r"""A scorer's targets table: which model outputs, in which order, and their strands.

  python -c "
  from estimator_pipeline.analysis import targets
  table = targets.read('targets.txt', num_targets=12)
  print(table.ids, table.pair, table.strand, [table.ids[k] for k in table.collapsed])"

The table is basenji's and Borzoi's (`targets_human.txt`): tab-separated, the first
column (unnamed, or `index`) the model output of each row, then `identifier`,
`description`, `clip_soft`, `sum_stat`, ... and, in Borzoi's tables, `strand_pair`:
the model output that is this row's other strand (its own index for an unstranded
target). As baskerville reads it:

- the rows are the targets, in file order: a command's output column k is model
  output `index[k]`;
- `pair[k]` is the table row of row k's other strand (k itself when unstranded):
  under reverse complement column k takes column pair[k];
- a row's strand is `.` when unstranded, else the last character of its identifier,
  `+` or `-` (Borzoi names stranded tracks so: `CNhs11250+`);
- the collapsed targets are the rows whose strand is not `-`, in table order; where a
  command sums a pair into one output, the pair's two rows are added into the column
  of its `+` row (`sum_matrix`).

Unlike baskerville, the pair-partner rule above holds wherever the two rows of a pair
are in the table (baskerville's running counter adds the wrong rows together unless
they are adjacent), and a strand_pair that is not a mutual pairing of the table's
rows is refused.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import sequence_format

UNSTRANDED = '.'


@dataclasses.dataclass(frozen=True)
class TargetTable:
  """A targets table's rows (see the module docstring).

  Attributes:
    path: The file ('' for the model's own targets, t0, t1, ...).
    index: The model output of each row.
    ids, labels: Each row's identifier and description.
    rows: Each row's {column: text}, for the columns a command reads itself
      (clip_soft, sum_stat, scale).
    pair: The row of each row's other strand, or None without a strand_pair column.
    strand: '+', '-' or '.' per row.
  """

  path: str
  index: Tuple[int, ...]
  ids: Tuple[str, ...]
  labels: Tuple[str, ...]
  rows: Tuple[dict, ...]
  pair: Optional[Tuple[int, ...]] = None
  strand: Tuple[str, ...] = ()

  @property
  def stranded(self):
    return self.pair is not None and any(s != UNSTRANDED for s in self.strand)

  @property
  def collapsed(self):
    """Rows that name the outputs of a strand sum: every row not on the - strand."""
    return tuple(k for k, s in enumerate(self.strand) if s != '-')

  def sum_matrix(self):
    """float64 [rows, collapsed]: a pair's two rows into its + row's column, every
    unstranded row into its own."""
    columns = {row: c for c, row in enumerate(self.collapsed)}
    matrix = np.zeros((len(self.index), len(columns)), np.float64)
    for k, strand in enumerate(self.strand):
      matrix[k, columns[self.pair[k] if strand == '-' else k]] = 1.0
    return matrix

  def select(self, preds):
    """[..., model outputs] -> [..., the table's rows], in table order."""
    return preds[..., list(self.index)] if self.path else preds

  def summed(self, values):
    """[..., rows] -> [..., collapsed]: each pair's two strands added into one column
    (float64 sums, returned in values' dtype); values themselves when unstranded."""
    if not self.stranded:
      return values
    return (np.asarray(values, np.float64) @ self.sum_matrix()).astype(values.dtype)

  def model_pairs(self, num_targets):
    """The table's pairing as a permutation of all num_targets model outputs (the
    outputs not in the table map to themselves), or None without strand pairs."""
    if self.pair is None:
      return None
    pairs = list(range(num_targets))
    for k, partner in enumerate(self.pair):
      pairs[self.index[k]] = self.index[partner]
    return tuple(pairs)


def model_targets(num_targets):
  """The table of a command given no --targets_file: every model output, t0, t1, ..."""
  return TargetTable(path='', index=tuple(range(num_targets)),
                     ids=tuple('t%d' % i for i in range(num_targets)),
                     labels=('',) * num_targets, rows=({},) * num_targets)


def read(path, num_targets, required=('identifier',)):
  """The targets table at path, checked against a model of num_targets outputs.

  UserError, naming the file and line, for an index that is not a model output, a
  strand_pair that is not a row's index or not mutual, or a stranded identifier whose
  last character is not + or -.
  """
  rows = sequence_format.read_targets_table(path, required=('index',) + tuple(required))
  index, ids, labels = [], [], []
  for number, row in rows:
    value = _integer(row['index'], path, number, 'index')
    if not 0 <= value < num_targets:
      raise UserError('--targets_file=%s line %d: index %d is not an output of the '
                      'model, which has %d (0..%d).' % (
                          path, number, value, num_targets, num_targets - 1))
    index.append(value)
    ids.append(row.get('identifier', str(value)))
    labels.append(row.get('description', ''))
  if len(set(index)) != len(index):
    repeated = next(i for i in index if index.count(i) > 1)
    raise UserError('--targets_file=%s lists model output %d twice: each row is one '
                    'output.' % (path, repeated))
  table = TargetTable(path=path, index=tuple(index), ids=tuple(ids),
                      labels=tuple(labels), rows=tuple(row for _, row in rows))
  if 'strand_pair' not in rows[0][1]:
    return table
  pair, strand = _pairs(path, rows, index, ids)
  return dataclasses.replace(table, pair=pair, strand=strand)


def _pairs(path, rows, index, ids):
  """(pair, strand) of a table's strand_pair column, checked."""
  position = {value: k for k, value in enumerate(index)}
  pair = []
  for k, (number, row) in enumerate(rows):
    partner = _integer(row['strand_pair'], path, number, 'strand_pair')
    if partner not in position:
      raise UserError('--targets_file=%s line %d: strand_pair %d is not the index of '
                      'a row of the table; it names the row of the other strand '
                      '(its own index when unstranded).' % (path, number, partner))
    pair.append(position[partner])
  strand = []
  for k, (number, _) in enumerate(rows):
    if pair[pair[k]] != k:
      raise UserError('--targets_file=%s line %d: strand_pair is not mutual: %s pairs '
                      'with %s, which pairs with %s; the two strands of a track name '
                      'each other.' % (path, number, ids[k], ids[pair[k]],
                                       ids[pair[pair[k]]]))
    strand.append(_strand(path, number, ids, k, pair[k]))
  for k, (number, _) in enumerate(rows):
    if pair[k] != k and strand[k] == strand[pair[k]]:
      raise UserError('--targets_file=%s line %d: %s and its strand_pair %s are both '
                      'on the %s strand; a pair is one + and one - track.' % (
                          path, number, ids[k], ids[pair[k]], strand[k]))
  return tuple(pair), tuple(strand)


def _strand(path, number, ids, k, partner):
  if partner == k:
    return UNSTRANDED
  if ids[k][-1:] not in ('+', '-'):
    raise UserError('--targets_file=%s line %d: %s has a strand_pair but its '
                    'identifier does not end in + or -, which says its strand (as in '
                    'Borzoi\'s tables, e.g. CNhs11250+).' % (path, number, ids[k]))
  return ids[k][-1]


def _integer(text, path, number, column):
  try:
    return int(text)
  except ValueError:
    raise UserError('--targets_file=%s line %d: %s %r is not a whole number.' % (
        path, number, column, text)) from None
