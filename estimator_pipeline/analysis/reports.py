"""The tables and figures of a test-set report, one kind per record layout.

A report sees the test set one batch of (labels, predictions) at a time and keeps only
what its tables need (a confusion matrix; per-target sums and threshold counts; a
bounded sample of points to plot), so memory does not grow with the test set:

  image     metrics.tsv (per class: examples, precision, recall, one-vs-rest accuracy,
            top-5 accuracy; a first row `all`) and confusion_matrix.png
  sequence  acc.tsv (basenji_test.py's acc.txt: index, pearsonr, r2, identifier,
            description; auroc and auprc instead of pearsonr and r2 with a bce loss)
            and scatter.png (best, median and worst target)

  python -m export.evaluate --model_dir=runs/x --records='data/test-*' \
      --output_dir=report/
"""

import os

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import plots
from estimator_pipeline.core import files
from estimator_pipeline.models.seqnn import metrics as seq_metrics
from estimator_pipeline.records import image_format
from estimator_pipeline.records import sequence_format

# Bins of each test sequence that the scatter plot samples (basenji_test.py: 8).
SCATTER_EVERY = 8
SCATTER_POINTS = 2000


def for_plan(plan, test_files):
  """The report of the plan's record layout."""
  if plan.task.layout == 'sequence':
    return SequenceReport(plan.num_classes, plan.data.loss == 'bce', test_files)
  return ImageReport(plan, test_files)


def _tsv(rows):
  return ''.join('\t'.join(str(v) for v in row) + '\n' for row in rows)


def _ratio(top, bottom):
  return float(top) / bottom if bottom else 0.0


class ImageReport:
  """Accuracy, top-5 and per-class precision, recall and accuracy of a classifier."""

  def __init__(self, plan, test_files):
    self.num_classes = plan.num_classes
    self.names = _class_names(plan.data.class_names_file, test_files, self.num_classes)
    self.confusion = np.zeros([self.num_classes] * 2, np.int64)
    self.top_k = min(5, self.num_classes)  # fewer classes: every one is in it
    self.top_hits = np.zeros(self.num_classes, np.int64)

  def eval_metrics(self, outputs, labels):
    del outputs, labels  # Counts are exact in numpy: nothing to add.
    return {}

  def add(self, labels, predictions):
    labels = np.asarray(labels, np.int64).reshape(-1)
    np.add.at(self.confusion, (labels, predictions['classes'].reshape(-1)), 1)
    # A stable sort: ties go to the lower class id, as argmax breaks them.
    top = np.argsort(-predictions['probabilities'], axis=1, kind='stable')
    hits = (top[:, :self.top_k] == labels[:, None]).any(axis=1)
    np.add.at(self.top_hits, labels, hits.astype(np.int64))

  def rows(self):
    """[(class id or 'all', name, examples, precision, recall, accuracy, top-k)]."""
    cm = self.confusion
    total = cm.sum()
    rows = []
    for c in range(self.num_classes):
      tp, examples, predicted = cm[c, c], cm[c].sum(), cm[:, c].sum()
      tn = total - examples - predicted + tp
      rows.append((c, self.names[c], int(examples), _ratio(tp, predicted),
                   _ratio(tp, examples), _ratio(tp + tn, total),
                   _ratio(self.top_hits[c], examples)))
    present = [r for r in rows if r[2]]
    rows.insert(0, ('all', '-', int(total),
                    float(np.mean([r[3] for r in present])) if present else 0.0,
                    float(np.mean([r[4] for r in present])) if present else 0.0,
                    _ratio(np.trace(cm), total), _ratio(self.top_hits.sum(), total)))
    return rows

  def write(self, output_dir, title, values):
    """metrics.tsv and confusion_matrix.png; returns (paths, console lines)."""
    del values
    rows = self.rows()
    header = ('class', 'name', 'examples', 'precision', 'recall', 'accuracy',
              'top_5_accuracy')
    text = _tsv([header] + [r[:3] + tuple('%.5f' % v for v in r[3:]) for r in rows])
    paths = [files.atomic_write(os.path.join(output_dir, 'metrics.tsv'), text),
             plots.confusion_png(os.path.join(output_dir, 'confusion_matrix.png'),
                                 self.confusion, self.names, title)]
    overall = rows[0]
    lines = ['Test accuracy %.5f  top-5 accuracy %.5f over %d examples' % (
        overall[5], overall[6], overall[2])]
    return paths, lines


def _class_names(class_names_file, test_files, num_classes):
  """model_dir's class_names.txt, else the labels.txt beside the test records."""
  names = []
  if class_names_file and tf.io.gfile.exists(class_names_file):
    with tf.io.gfile.GFile(class_names_file) as f:
      names = [line.rstrip('\n') for line in f]
  else:
    labels = image_format.labels_beside(test_files[0])
    names = list(image_format.read_labels(labels)) if labels else []
  names = names[:num_classes]
  return names + [str(i) for i in range(len(names), num_classes)]


class SequenceReport:
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
      return {'auroc': seq_metrics.auc_per_target(labels, preds, 'ROC',
                                                  name='report_auroc'),
              'auprc': seq_metrics.auc_per_target(labels, preds, 'PR',
                                                  name='report_auprc')}
    return {'pearsonr': seq_metrics.pearson_r(labels, preds, 'report_pearsonr'),
            'r2': seq_metrics.r2(labels, preds, 'report_r2')}

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
    paths = [files.atomic_write(os.path.join(output_dir, 'acc.tsv'), _tsv(rows))]
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
