"""The test-set report of a sequence model, as basenji_test.py writes it: acc.tsv
(basenji's acc.txt columns: index, pearsonr, r2, identifier, description; auroc and
auprc instead of pearsonr and r2 with a bce loss) and scatter.png of predicted against
measured for the best, median and worst target:

  python -m export.evaluate --model_dir=runs/cage \
      --records='data/tfrecords/test-*.tfr' --output_dir=report/

The per-target values of a model_dir's report come from the metric ops training logs
(SequenceReport.eval_metrics); a model given without its model_dir is scored from
float64 sums here (TargetMoments).
"""

import os

import numpy as np

from estimator_pipeline.core import files
from estimator_pipeline.core import plots
from estimator_pipeline.models import report
from estimator_pipeline.models.seqnn import metrics
from estimator_pipeline.records import sequence_format

# Bins of each test sequence that the scatter plot samples (basenji_test.py: 8).
SCATTER_EVERY = 8
SCATTER_POINTS = 2000


class SequenceReport(report.TestReport):
  """Per-target Pearson R and R2 (or AUROC and AUPRC) of a sequence model.

  The values come from the evaluation itself (eval_metrics), computed by the metric
  ops whose mean over targets training logs, so the table's means are those numbers.
  """

  def __init__(self, num_targets, bce, test_files):
    self.bce = bce
    self.num_targets = num_targets
    self.targets = _target_rows(test_files[0], self.num_targets)
    self.sample = []

  def eval_metrics(self, outputs, labels):
    """{name: (per-target values, update_op)}, added to the evaluation's metrics."""
    preds = outputs['predictions']
    if self.bce:
      return {'auroc': metrics.auc_per_target(labels, preds, 'ROC',
                                                  name='report_auroc'),
              'auprc': metrics.auc_per_target(labels, preds, 'PR',
                                                  name='report_auprc')}
    return {'pearsonr': metrics.pearson_r(labels, preds, 'report_pearsonr'),
            'r2': metrics.r2(labels, preds, 'report_r2')}

  def add(self, labels, predictions):
    """Keeps every SCATTER_EVERY-th bin until SCATTER_POINTS points per target."""
    if sum(len(s[0]) for s in self.sample) < SCATTER_POINTS:
      y = np.asarray(labels, np.float32)[:, ::SCATTER_EVERY]
      p = np.asarray(predictions['predictions'], np.float32)[:, ::SCATTER_EVERY]
      self.sample.append((y.reshape(-1, self.num_targets),
                          p.reshape(-1, self.num_targets)))

  def write(self, output_dir, title, values):
    """acc.tsv and scatter.png; values: eval_metrics' results. Returns (paths,
    console lines)."""
    names = ('auroc', 'auprc') if self.bce else ('pearsonr', 'r2')
    first, second = (np.asarray(values[n], np.float64).reshape(-1) for n in names)
    rows = [('index',) + names + ('identifier', 'description')]
    rows += [(t['index'], '%.5f' % a, '%.5f' % b, t['identifier'], t['description'])
             for t, a, b in zip(self.targets, first, second)]
    paths = [files.atomic_write(os.path.join(output_dir, 'acc.tsv'),
                                report.tsv(rows))]
    order = np.argsort(-first, kind='stable')
    chosen = [('best', order[0]), ('median', order[len(order) // 2]),
              ('worst', order[-1])]
    y = np.concatenate([s[0] for s in self.sample])[:SCATTER_POINTS]
    p = np.concatenate([s[1] for s in self.sample])[:SCATTER_POINTS]
    panels = [('%s: target %s (%s), %s %.3f' % (
        which, self.targets[t]['index'], self.targets[t]['identifier'], names[0],
        first[t]), y[:, t], p[:, t]) for which, t in chosen]
    paths.append(plots.scatter_png(os.path.join(output_dir, 'scatter.png'), panels,
                                   title, log=not self.bce))
    lines = ['Test %s mean %.5f, %s mean %.5f over %d targets (acc.tsv)' % (
        names[0], float(np.mean(first)), names[1], float(np.mean(second)),
        self.num_targets)]
    return paths, lines


def _target_rows(record_file, num_targets):
  """[{index, identifier, description}] from the targets.txt beside the records."""
  path = sequence_format.file_beside(record_file, sequence_format.TARGETS_FILE)
  rows = sequence_format.read_targets(path) if path else []
  if len(rows) != num_targets:
    rows = [{} for _ in range(num_targets)]
  return [{'index': row.get('index', str(i)), 'identifier': row.get('identifier',
                                                                    str(i)),
           'description': row.get('description', '')} for i, row in enumerate(rows)]


class TargetMoments:
  """basenji's per-target Pearson R and R2 over every bin of every sequence, from
  float64 sums (for a model without a model_dir, evaluated here, not by training's
  metric ops)."""

  def __init__(self, num_targets):
    # n, sum y, sum y^2, sum p, sum p^2, sum y*p per target.
    self.sums = np.zeros([6, num_targets])

  def add(self, labels, predictions):
    y = np.asarray(labels, np.float64).reshape(-1, self.sums.shape[1])
    p = np.asarray(predictions, np.float64).reshape(-1, self.sums.shape[1])
    self.sums += [np.full(y.shape[1], len(y)), y.sum(0), np.square(y).sum(0),
                  p.sum(0), np.square(p).sum(0), (y * p).sum(0)]

  def values(self):
    """{'pearsonr': [targets], 'r2': [targets]} (0 where undefined)."""
    n, ys, yy, ps, pp, yp = self.sums
    with np.errstate(divide='ignore', invalid='ignore'):
      y_mean, p_mean = ys / n, ps / n
      covariance = yp - y_mean * ps - p_mean * ys + n * y_mean * p_mean
      y_var = np.maximum(yy - n * y_mean ** 2, 0)
      p_var = np.maximum(pp - n * p_mean ** 2, 0)
      r = covariance / np.sqrt(y_var * p_var)
      r2 = 1 - (pp - 2 * yp + yy) / (yy - n * y_mean ** 2)
    return {'pearsonr': np.nan_to_num(r), 'r2': np.nan_to_num(r2)}
