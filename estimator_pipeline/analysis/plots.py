"""The figures of the analyses, drawn with matplotlib and written atomically as PNG.

  python -c "
  import numpy as np
  from estimator_pipeline.analysis import plots
  plots.confusion_png('/tmp/cm.png', np.eye(3, dtype=int) * 5, ['a', 'b', 'c'], 'test')"
"""

import matplotlib

matplotlib.use('Agg')  # Files only: no display, the same pixels on every machine.

# pylint: disable=g-import-not-at-top,wrong-import-position
import matplotlib.pyplot as plt
import numpy as np

from estimator_pipeline.core import files

# No creation time or version in the PNG: the same figure gives the same bytes.
_PNG_METADATA = {'Software': None}


def save_png(figure, path, dpi=100):
  """Writes figure to path atomically and closes it; returns path."""
  with files.atomic_path(path) as tmp:
    figure.savefig(tmp, format='png', dpi=dpi, metadata=_PNG_METADATA,
                   bbox_inches='tight')
  plt.close(figure)
  return path


def confusion_png(path, matrix, names, title):
  """A confusion matrix: true class down, predicted class across, counts in cells."""
  matrix = np.asarray(matrix)
  size = max(4.0, 0.5 * len(names) + 2)
  figure, axes = plt.subplots(figsize=(size + 1, size))
  shown = axes.imshow(matrix, cmap='Blues', vmin=0)
  figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label='examples')
  ticks = np.arange(len(names))
  axes.set_xticks(ticks)
  axes.set_xticklabels(names, rotation=45 if len(names) > 3 else 0, ha='right'
                       if len(names) > 3 else 'center')
  axes.set_yticks(ticks)
  axes.set_yticklabels(names)
  axes.set_xlabel('predicted class')
  axes.set_ylabel('true class')
  axes.set_title(title)
  if len(names) <= 30:  # Past that, numbers in cells are unreadable.
    limit = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
      axes.text(column, row, str(count), ha='center', va='center', fontsize=8,
                color='white' if count > limit else 'black')
  return save_png(figure, path)


def scatter_png(path, panels, title, log=True):
  """Measured (x) against predicted (y), one panel per (label, measured, predicted).

  log: log2(x + 1) on both axes, as basenji_test.py plots coverage.
  """
  figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2),
                              squeeze=False)
  for ax, (label, measured, predicted) in zip(axes[0], panels):
    x, y = np.asarray(measured, np.float64), np.asarray(predicted, np.float64)
    if log:
      x, y = np.log2(np.maximum(x, 0) + 1), np.log2(np.maximum(y, 0) + 1)
    ax.scatter(x, y, s=6, alpha=0.3, color='tab:blue', linewidths=0)
    if x.size:
      low, high = min(x.min(), y.min()), max(x.max(), y.max())
      ax.plot([low, high], [low, high], color='gray', linewidth=0.8, linestyle='--')
    ax.set_xlabel('log2 measured + 1' if log else 'measured')
    ax.set_ylabel('log2 predicted + 1' if log else 'predicted')
    ax.set_title(label, fontsize=9)
    ax.grid(True, linestyle=':')
  figure.suptitle(title)
  return save_png(figure, path)


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
  return save_png(figure, path)
