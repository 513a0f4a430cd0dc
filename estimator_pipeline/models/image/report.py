"""The test-set report of an image classifier: metrics.tsv (per class: examples,
precision, recall, one-vs-rest accuracy, top-5 accuracy; a first row `all`) and
confusion_matrix.png with the class names on both axes, as slim's
eval_image_classifier.py users read them:

  python -m export.evaluate --model_dir=runs/flowers --checkpoint=best \
      --records='data/test-*.tfrecord' --output_dir=report/

Counts are kept exactly in numpy (a confusion matrix and top-k hits per class).
"""

import os

import numpy as np
import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core import plots
from estimator_pipeline.models import report
from estimator_pipeline.records import image_format


def _ratio(top, bottom):
  return float(top) / bottom if bottom else 0.0


class ImageReport(report.TestReport):
  """Accuracy, top-5 and per-class precision, recall and accuracy of a classifier."""

  def __init__(self, num_classes, class_names_file, test_files):
    self.num_classes = num_classes
    self.names = _class_names(class_names_file, test_files, self.num_classes)
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
    text = report.tsv([header] + [r[:3] + tuple('%.5f' % v for v in r[3:])
                                  for r in rows])
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
