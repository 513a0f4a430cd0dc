r"""From attributions to motifs: TF-MoDISco, then Tomtom against a motif database.

  python -m export.motifs --attributions=attr/ --output_dir=motifs/

TF-MoDISco is modisco-lite's (modiscolite.tfmodisco.TFMoDISco) on the one-hot
sequences and hypothetical contributions export.attribution wrote (ohe.npz,
hypothetical.npz, N x 4 x L); its patterns are saved as modisco_results.h5
(modiscolite.io.save_hdf5, the file `modisco report` reads). Each pattern is trimmed
to the positions whose contribution weight is at least TRIM of its largest, and its
base frequencies are matched by memelite's Tomtom against --motif_db (a MEME file) or,
by default, JASPAR 2024's CORE vertebrate motifs as the pyjaspar package ships them
(no network). q-values are Benjamini-Hochberg over the database, per pattern.
"""

import dataclasses
import os
from typing import List

import numpy as np

from estimator_pipeline.core.errors import UserError

TRIM = 0.3
DEFAULT_DB = 'JASPAR2024 CORE vertebrates'
MATCHES = 3


@dataclasses.dataclass
class Motif:
  """One TF-MoDISco pattern, trimmed, and its best database matches."""
  name: str  # pos_patterns.pattern_0, ...
  seqlets: int
  ppm: np.ndarray  # [w, 4] base frequencies, trimmed
  cwm: np.ndarray  # [w, 4] contribution weights, trimmed
  matches: List[tuple] = dataclasses.field(default_factory=list)  # (id, p, q)


def load_attributions(folder):
  """(one-hot [N, L, 4], hypothetical [N, L, 4]) of an export.attribution folder."""
  arrays = []
  for name in ('ohe', 'hypothetical'):
    path = os.path.join(folder, name + '.npz')
    if not os.path.isfile(path):
      raise UserError('--attributions=%s has no %s.npz: pass the --output_dir of '
                      'export.attribution.' % (folder, name))
    try:
      arrays.append(np.load(path)['arr_0'].astype(np.float32))
    except (OSError, ValueError, KeyError) as e:
      raise UserError('--attributions=%s: %s.npz does not read (%s).' % (
          folder, name, e)) from None
  onehot, hyp = arrays
  if onehot.shape != hyp.shape or onehot.ndim != 3 or onehot.shape[1] != 4:
    raise UserError('--attributions=%s: ohe.npz %s and hypothetical.npz %s must both '
                    'be N x 4 x L.' % (folder, onehot.shape, hyp.shape))
  return onehot.transpose(0, 2, 1), hyp.transpose(0, 2, 1)


def read_motif_db(path):
  """{name: PPM [4, w]} of a MEME file, or of JASPAR's CORE vertebrates if ''."""
  if not path:
    from pyjaspar import jaspardb  # pylint: disable=g-import-not-at-top
    found = {}
    for motif in jaspardb(release='JASPAR2024').fetch_motifs(
        collection='CORE', tax_group=['vertebrates'], all_versions=False):
      counts = np.array([motif.counts[b] for b in 'ACGT'], np.float64)
      found['%s %s' % (motif.matrix_id, motif.name)] = counts / counts.sum(axis=0)
    return found
  if not os.path.isfile(path):
    raise UserError('--motif_db=%s is not a file.' % path)
  with open(path, 'rb') as f:
    head = f.read(4096)
  if b'MEME version' not in head:
    raise UserError('--motif_db=%s is not a MEME motif file (no "MEME version" line '
                    'at its top): pass a .meme file, e.g. JASPAR\'s MEME download.'
                    % path)
  from memelite import io as meme_io  # pylint: disable=g-import-not-at-top
  try:
    found = meme_io.read_meme(path)
  except (ValueError, IndexError, AttributeError) as e:
    raise UserError('--motif_db=%s does not read as MEME (%s).' % (path, e)) from None
  if not found:
    raise UserError('--motif_db=%s holds no MOTIF.' % path)
  return {name: np.asarray(ppm, np.float64) for name, ppm in found.items()}


def run_modisco(onehot, hyp, max_seqlets=2000, window=21, leiden_runs=8):
  """-> (pos_patterns, neg_patterns) of modisco-lite; UserError when it finds none."""
  from modiscolite import tfmodisco  # pylint: disable=g-import-not-at-top
  try:
    pos, neg = tfmodisco.TFMoDISco(
        one_hot=onehot, hypothetical_contribs=hyp, sliding_window_size=window,
        flank_size=max(1, window // 2), max_seqlets_per_metacluster=max_seqlets,
        target_seqlet_fdr=0.05, n_leiden_runs=leiden_runs)
  except (ValueError, IndexError, ZeroDivisionError):
    # What modisco-lite raises when no window passes its threshold.
    raise UserError('TF-MoDISco found no seqlets in %d sequences: explain more '
                    'sequences, or ones where the model predicts signal.'
                    % len(onehot)) from None
  if not pos and not neg:
    raise UserError('TF-MoDISco found no seqlets (no pattern with enough support) in '
                    '%d sequences: explain more sequences, or ones where the model '
                    'predicts signal.' % len(onehot))
  return pos or [], neg or []


def trimmed(pattern, name):
  """Motif of a modisco pattern, trimmed to its strong positions."""
  cwm = np.asarray(pattern.contrib_scores)
  score = np.abs(cwm).sum(axis=1)
  keep = np.nonzero(score >= TRIM * score.max())[0]
  span = slice(keep[0], keep[-1] + 1) if len(keep) else slice(None)
  return Motif(name, len(pattern.seqlets), np.asarray(pattern.sequence)[span],
               cwm[span])


def match(motifs, db):
  """Fills each motif's matches: the best MATCHES of db by Tomtom p-value."""
  from memelite.tomtom import tomtom  # pylint: disable=g-import-not-at-top
  names = list(db)
  targets = [db[n] for n in names]
  queries = [m.ppm.T.astype(np.float64) for m in motifs]
  p_values = np.asarray(tomtom(queries, targets)[0], np.float64)
  for motif, row in zip(motifs, p_values):
    q_values = benjamini_hochberg(row)
    for index in np.argsort(row)[:MATCHES]:
      motif.matches.append((names[index], float(row[index]), float(q_values[index])))


def benjamini_hochberg(p_values):
  """q-values of one query's p-values over the database."""
  p_values = np.asarray(p_values, np.float64)
  order = np.argsort(p_values)
  ranked = p_values[order] * len(p_values) / np.arange(1, len(p_values) + 1)
  q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
  out = np.empty_like(q_sorted)
  out[order] = np.minimum(q_sorted, 1.0)
  return out


def pearson_match(ppm, pwm):
  """Best Pearson correlation of two [w, 4] matrices over offsets and strands (the
  overlap of at least min(width) - 2 positions)."""
  best = -1.0
  for query in (ppm, ppm[::-1, ::-1]):
    short, long_ = (query, pwm) if len(query) <= len(pwm) else (pwm, query)
    need = max(1, len(short) - 2)
    for offset in range(-(len(short) - need), len(long_) - need + 1):
      lo, hi = max(0, offset), min(len(long_), offset + len(short))
      a = short[lo - offset:hi - offset].ravel()
      b = long_[lo:hi].ravel()
      if len(a) >= 4 * need and a.std() > 0 and b.std() > 0:
        best = max(best, float(np.corrcoef(a, b)[0, 1]))
  return best
