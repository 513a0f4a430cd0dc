r"""The target tracks of a conversion: basenji's targets table, or the --coverage flags.

A targets table (basenji_data.py's targets_file) is tab-separated, one line per
track, read by sequence_format.read_targets_table:

  index  identifier  file              clip  clip_soft  scale  sum_stat  description
  0      DNASE:K562  dnase_k562.bw     32    16         2      sum       DNase K562
  1      CAGE:liver  cage_liver.bw     384   320        1      sum_sqrt  CAGE liver

`file` is a bigWig or a bedGraph (plain or gzipped); a relative path is taken from
the working folder, as basenji does, or else from the table's own folder. Empty or
missing columns take basenji's defaults: no clip, no clip_soft, scale 1, sum_stat
sum, the identifier as description. What each column does: genome_windows.py.

  python -c "
  from estimator_pipeline.records import targets_table
  print(targets_table.tracks_from_flags(['a.bw', 'b.bedGraph'], sum_stat='sum,mean'))"
"""

import collections
import dataclasses
import numbers
import os
from typing import Optional

from estimator_pipeline.core.errors import UserError

# basenji_data_read.py's summary statistics of a bin's bases (genome_windows.py).
SUM_STATS = ('sum', 'sum_sqrt', 'mean', 'avg', 'mean_sqrt', 'avg_sqrt', 'median',
             'max', 'peak')
_TRACK_EXTENSIONS = ('.gz', '.bw', '.bigWig', '.bigwig', '.bedGraph', '.bedgraph',
                     '.bdg', '.bg', '.txt')


@dataclasses.dataclass(frozen=True)
class TrackSpec:
  """One target track and how its bins are made (picklable, for worker processes).

  Attributes:
    identifier: Its name in targets.txt.
    file: The bigWig or bedGraph.
    sum_stat: One of SUM_STATS.
    clip: Bins are clipped to [-clip, clip]; None for none.
    clip_soft: Bins above it grow by the square root of the excess only; None.
    scale: Per-base values are multiplied by it before binning.
    description: Its description in targets.txt.
    source: How errors name it, e.g. "--coverage file x.bw".
    kind: 'bigwig' or 'bedgraph', once the file was looked at (tracks.py).
    store: A bedGraph's intervals on disk (interval_store.IntervalStore).
  """

  identifier: str
  file: str
  sum_stat: str = 'sum'
  clip: Optional[float] = None
  clip_soft: Optional[float] = None
  scale: float = 1.0
  description: str = ''
  source: str = ''
  kind: str = ''
  store: object = None


def tracks_from_rows(rows, table):
  """TrackSpecs of read_targets_table(table)'s [(line, {column: text})], checked."""
  tracks = []
  for number, row in rows:
    where = '--targets_file=%s line %d' % (table, number)
    path = row['file']
    if not path:
      raise UserError('%s: the file column is empty' % where)
    if not os.path.isabs(path) and not os.path.exists(path):
      beside = os.path.join(os.path.dirname(table), path)
      path = beside if os.path.exists(beside) else path
    if not os.path.isfile(path):
      raise UserError('%s: track file %s does not exist (relative paths are taken '
                      'from the working folder, then from the table\'s)' % (
                          where, row['file']))
    identifier = row.get('identifier') or _stem(path)
    tracks.append(TrackSpec(
        identifier=identifier, file=path,
        sum_stat=_sum_stat(row.get('sum_stat') or 'sum', where),
        clip=_number(row.get('clip'), where, 'clip', positive=True),
        clip_soft=_number(row.get('clip_soft'), where, 'clip_soft', positive=True),
        scale=_number(row.get('scale'), where, 'scale', default=1.0),
        description=row.get('description', ''),
        source='track %s (%s, %s)' % (identifier, path, where)))
  return tracks


def tracks_from_flags(coverage, identifiers=None, sum_stat='sum', clip=None,
                      clip_soft=None, scale=None):
  """TrackSpecs of --coverage files; each option is one value or one per file."""
  if not coverage:
    raise UserError('--coverage or --targets_file is required: one bigWig or bedGraph '
                    'per target track, e.g. --coverage=dnase.bw,cage.bw')
  count = len(coverage)
  options = {name: _per_track(name, value, count) for name, value in (
      ('sum_stat', sum_stat), ('clip', clip), ('clip_soft', clip_soft),
      ('scale', scale))}
  if identifiers:
    identifiers = list(identifiers)
    if len(identifiers) != count:
      raise UserError('--identifiers names %d tracks but --coverage has %d files' % (
          len(identifiers), count))
  else:
    names = [_stem(p) for p in coverage]
    # Two files called cov.bedGraph in different folders keep apart by their index.
    repeated = collections.Counter(names)
    identifiers = [n if repeated[n] == 1 else '%s_%d' % (n, i)
                   for i, n in enumerate(names)]
  tracks = []
  for i, path in enumerate(coverage):
    tracks.append(TrackSpec(
        identifier=identifiers[i], file=path,
        sum_stat=_sum_stat(options['sum_stat'][i] or 'sum', '--sum_stat'),
        clip=_number(options['clip'][i], '--clip', 'clip', positive=True),
        clip_soft=_number(options['clip_soft'][i], '--clip_soft', 'clip_soft',
                          positive=True),
        scale=_number(options['scale'][i], '--scale', 'scale', default=1.0),
        source='--coverage file %s' % path))
  return tracks


def output_rows(tracks):
  """Rows of targets.txt (sequence_format.TARGETS_COLUMNS) for the tracks written."""
  return [{'index': i, 'identifier': t.identifier, 'file': t.file,
           'clip': _text(t.clip), 'clip_soft': _text(t.clip_soft),
           'scale': _text(t.scale), 'sum_stat': t.sum_stat,
           'description': (t.description or t.identifier).replace('\t', ' ')}
          for i, t in enumerate(tracks)]


def _text(value):
  return '' if value is None else '%g' % value


def _stem(path):
  base = os.path.basename(path)
  for ext in _TRACK_EXTENSIONS:
    if base.endswith(ext) and len(base) > len(ext):
      base = base[:-len(ext)]
  return base


def _sum_stat(value, where):
  if value not in SUM_STATS:
    raise UserError('%s: sum_stat %r is not one of %s' % (where, value,
                                                         ', '.join(SUM_STATS)))
  return value


def _number(value, where, name, positive=False, default=None):
  if value is None or (isinstance(value, str) and value.strip().lower() in (
      '', 'none', 'nan')):
    return default
  try:
    number = float(value)
  except ValueError:
    raise UserError('%s: %s %r is not a number' % (where, name, value)) from None
  if positive and not number > 0:
    raise UserError('%s: %s %s must be positive (empty for none)' % (where, name,
                                                                     value))
  return number


def _per_track(name, value, count):
  """A flag's value for every track: one for all, or a list with one per track."""
  if value is None or isinstance(value, numbers.Real):
    values = [value]
  elif isinstance(value, str):
    values = value.split(',')
  else:
    values = list(value)
  if len(values) == 1:
    values = values * count
  if len(values) != count:
    raise UserError('--%s has %d values but --coverage has %d files; give one value or '
                    'one per file' % (name, len(values), count))
  return [v.strip() if isinstance(v, str) else v for v in values]
