"""The figures of the sequence analyses (core/plots.py has the shared ones).

  python -m export.mutagenesis ... --plot
"""

import numpy as np

from estimator_pipeline.core import plots

# After core.plots, which picks matplotlib's file-only Agg backend first.
import matplotlib.pyplot as plt  # pylint: disable=g-bad-import-order,wrong-import-position


def mutagenesis_png(path, scores, seqs, importance, title):
  """A sequence logo of the bases there (height: importance) over a position x base
  heat map of the scores of every base.

  scores: float [positions, 4]; seqs: bool one-hot [positions, 4] of the bases there
  (an N row is all False); importance: float [positions].
  """
  import logomaker  # pylint: disable=g-import-not-at-top  (only --plot needs it)
  import pandas as pd  # pylint: disable=g-import-not-at-top
  scores = np.asarray(scores, np.float64)
  positions = scores.shape[0]
  width = min(40.0, max(6.0, 0.3 * positions + 2))
  figure, (top, bottom) = plt.subplots(
      2, 1, figsize=(width, 4.5), sharex=True,
      gridspec_kw={'height_ratios': [1, 1.3], 'hspace': 0.08})
  heights = pd.DataFrame(np.asarray(seqs, np.float64) * np.asarray(importance)[:, None],
                         columns=list('ACGT'))
  logomaker.Logo(heights, ax=top, color_scheme='classic', flip_below=False)
  top.axhline(0, color='gray', linewidth=0.6)
  top.set_ylabel('importance')
  top.set_title(title)
  limit = float(np.abs(scores).max()) or 1.0
  shown = bottom.imshow(scores.T, aspect='auto', cmap='RdBu_r', vmin=-limit,
                        vmax=limit, extent=(-0.5, positions - 0.5, 3.5, -0.5))
  bottom.set_xticks(range(0, positions, max(1, positions // 20)))
  bottom.set_yticks(range(4))
  bottom.set_yticklabels(list('ACGT'))
  bottom.set_xlabel('position in the mutated span')
  bottom.set_ylabel('base put in')
  figure.colorbar(shown, ax=[top, bottom], fraction=0.02, pad=0.01, label='score')
  return plots.save_png(figure, path)
