"""Figures any layer may write, drawn with matplotlib and written atomically as PNG:
the test-set reports' confusion matrix and scatter plots, and save_png for the rest.

  python -c "
  import numpy as np
  from estimator_pipeline.core import plots
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
