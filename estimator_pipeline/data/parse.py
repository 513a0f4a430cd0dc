"""What every record layout's parse function checks in the graph, and how its
failures read.

A layout's parse functions (image_parse.py, sequence_parse.py: one serialized record
-> the features and label the model reads) stop on a label out of range or a target
that is not finite with an assertion whose message starts with one of the markers
below; train/failures.py finds the marker in the error and turns it into one line
naming the record and what to change:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.data import parse
  print(parse.checked_labels(tf.constant([0, 2]), 3).numpy())"
"""

import tensorflow as tf

# The first words of the in-graph assertions on labels and targets.
LABEL_ERROR_MARKER = 'label out of range'
TARGET_ERROR_MARKER = 'target holds NaN or Inf'


def checked_labels(labels, num_classes):
  """labels (a scalar or a batch), asserted to lie in [0, num_classes).

  The assertion names the first label outside the range, which failures.py reads back.
  """
  in_range = tf.logical_and(labels >= 0, labels < num_classes)
  first_bad = tf.boolean_mask(tf.reshape(labels, [-1]),
                              tf.logical_not(tf.reshape(in_range, [-1])))[:1]
  check = tf.debugging.Assert(
      tf.reduce_all(in_range), ['%s [0, %d) of --num_classes=%d:' % (
          LABEL_ERROR_MARKER, num_classes, num_classes), first_bad], summarize=1)
  with tf.control_dependencies([check]):
    return tf.identity(labels)


def checked_target(target):
  """target, asserted finite: a NaN target would turn the loss NaN steps later, far
  from its record; it fails here (and --skip_corrupt_records drops it), as records
  inspect calls it bad."""
  check = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(target)),
                              [TARGET_ERROR_MARKER])
  with tf.control_dependencies([check]):
    return tf.identity(target)
