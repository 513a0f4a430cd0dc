r"""The strand pairs of a sequence model: carried by its export, or given by a table.

  python -c "
  from estimator_pipeline.analysis import strands
  print(strands.export_pairs('runs/cage/export/best/1700000000', num_targets=12))"

A stranded model (Borzoi's RNA and CAGE tracks) predicts each track once per strand.
Reverse-complementing the input swaps the strands, so an ensemble over reverse
complements must swap those outputs back: output k of a reverse-complemented copy is
the prediction of output strand_pair[k]. The pairs come from the params file's
`strand_pair` (the trained model's, which every export carries in
assets.extra/strand_pair.json) or from a targets table's `strand_pair` column
(targets.py), as baskerville takes them. When both are there they must agree.
"""

import copy
import json
import os

from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import network


def export_pairs(version_path, num_targets):
  """The strand pairs an export carries, as a tuple over its num_targets outputs;
  None for an unstranded model or an export of an earlier version (which carries
  none)."""
  path = os.path.join(version_path, 'assets.extra', network.STRAND_PAIR_ASSET)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      pairs = json.load(f).get('strand_pair')
  except (OSError, ValueError, AttributeError) as e:
    raise UserError('%s does not read as the export\'s strand pairs (%s): export the '
                    'model again.' % (path, e)) from None
  if pairs is None:
    return None
  if sorted(pairs) != list(range(num_targets)):
    raise UserError('%s pairs %d outputs, but the model has %d: export the model '
                    'again.' % (path, len(pairs), num_targets))
  return tuple(int(p) for p in pairs)


def agreed(table, carried, source, num_targets):
  """The pairs to swap in an ensemble: the table's (targets.TargetTable or None) and
  the model's own (carried, or None) combined; UserError where they disagree."""
  given = table.model_pairs(num_targets) if table is not None else None
  if given is None:
    return carried
  if carried is None:
    return given
  for k, output in enumerate(table.index):
    if carried[output] != given[output]:
      raise UserError(
          '--targets_file=%s: %s (output %d) has strand_pair %d, but the model %s '
          'pairs output %d with %d; correct the table\'s strand_pair column.' % (
              table.path, table.ids[k], output, given[output], source, output,
              carried[output]))
  return carried


def with_pairs(model_params, pairs):
  """SeqNN keyword arguments whose params model section has `pairs` as its head's
  strand_pair (the arguments themselves when they already say so)."""
  params = model_params['params']
  current = (params.get('strand_pair') or [[]])[0]
  if pairs is None or tuple(current or ()) == tuple(pairs):
    return model_params
  params = copy.deepcopy(params)
  params['strand_pair'] = [list(pairs)]
  return dict(model_params, params=params)


def params_with_table(params_file, head, targets_file, directory):
  """A copy of params_file, its head --head (basenji's first for ''), whose
  strand_pair is targets_file's, written into directory; returns its path.

  How `python -m export --targets_file` makes an export of Borzoi's .h5 (whose params
  file has no strand_pair) swap its strands in the ensemble and carry its pairs.
  """
  params, _ = params_lib.select_head(params_lib.load(params_file), head)
  block = params['model']['head']
  units = (block[-1] if isinstance(block, list) else block).get('units')
  if not isinstance(units, int):
    raise UserError('%s: the head has no units, so --targets_file cannot be checked '
                    'against its outputs.' % params_file)
  table = targets_lib.read(targets_file, units)
  if table.pair is None:
    raise UserError('--targets_file=%s has no strand_pair column: it pairs no strands '
                    'for the export; leave it out for an unstranded model.'
                    % targets_file)
  own = (params['model'].get('strand_pair') or [[]])[0]
  pairs = agreed(table, tuple(own) if own else None, params_file, units)
  params['model']['strand_pair'] = [list(pairs)]
  path = os.path.join(directory, os.path.basename(params_file))
  files.atomic_write(path, json.dumps(params, indent=2) + '\n')
  return path
