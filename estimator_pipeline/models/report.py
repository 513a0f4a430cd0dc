"""What a test-set report is: the tables and figures `python -m export.evaluate`
writes, one kind per model family, handed out by the task of the model's record
layout (Task.test_report):

  python -m export.evaluate --model_dir=runs/x --records='data/test-*' \
      --output_dir=report/

A report sees the test set one batch of (labels, predictions) at a time and keeps only
what its tables need, so memory does not grow with the test set. The image family's
is models/image/report.py, the sequence family's models/seqnn/report.py.
"""


class TestReport:
  """The interface analysis/evaluation.py drives. Subclasses fill in every method."""

  def eval_metrics(self, outputs, labels):
    """{name: (value, update_op)} the evaluation computes beside the model's own
    metrics, from the same ops on the same batches (e.g. per-target vectors); {}
    when the report counts everything itself in add()."""
    raise NotImplementedError

  def add(self, labels, predictions):
    """One batch: labels and the model's predictions dict, as numpy arrays."""
    raise NotImplementedError

  def write(self, output_dir, title, values):
    """Writes the tables and figures into output_dir; values: what eval_metrics'
    metrics came to. Returns ([paths written], [lines for the console])."""
    raise NotImplementedError


def tsv(rows):
  """Tab-separated lines of rows of values."""
  return ''.join('\t'.join(str(v) for v in row) + '\n' for row in rows)
