"""TensorBoard summaries of image classifiers: input images and a confusion matrix.

The evaluation's confusion matrix is an eval metric whose value is a serialized
`Summary`, which the Estimator writes into model_dir/eval as it is:

  tensorboard --logdir runs/flowers   # Images: input_images, confusion_matrix
"""

import tensorflow as tf

summary = tf.compat.v1.summary

# Input images shown per summary step: enough to see what the net sees, few enough to
# keep event files small.
MAX_INPUT_IMAGES = 3
CONFUSION_MATRIX = 'confusion_matrix'
# Above this many classes the counts table would be too large to read; the image stays.
MAX_TABLE_CLASSES = 30
# Side of the confusion-matrix image in pixels (about; cells are whole pixels).
_CONFUSION_IMAGE_SIZE = 256
# Row-normalized 0 is white, 1 is dark blue (matplotlib's "Blues" ends).
_LOW = (247.0, 251.0, 255.0)
_HIGH = (8.0, 48.0, 107.0)


def input_image_summaries(images, labels, class_names=None,
                          max_images=MAX_INPUT_IMAGES):
  """The first training images of the batch as the net's input before normalization
  (`input_images/image/<i>`), and their labels (`input_labels`, a text table).

  Args:
    images: float [N, H, W, 3] (or 1 channel) in 0..255, after crop/flip/resize.
    labels: int [N] class ids.
    class_names: names of the class ids, or None.
    max_images: how many images to show.
  """
  shown = tf.cast(tf.clip_by_value(images[:max_images], 0.0, 255.0), tf.uint8)
  summary.image('input_images', shown, max_outputs=max_images)
  ids = tf.cast(labels[:max_images], tf.int64)
  text = tf.strings.as_string(ids)
  if class_names:
    names = tf.constant(list(class_names))
    known = ids < len(class_names)
    named = tf.gather(names, tf.minimum(ids, len(class_names) - 1))
    text = tf.where(known, tf.strings.join([text, ' (', named, ')']), text)
  index = tf.strings.as_string(tf.range(tf.size(ids), dtype=tf.int64))
  rows = tf.strings.join(['| ', index, ' | ', text, ' |'])
  table = tf.strings.reduce_join(
      tf.concat([['| input_images/image/ | label |', '|---|---|'], rows], 0),
      separator='\n')
  summary.text('input_labels', table)


def confusion_matrix_metric(labels, predictions, num_classes, class_names=None):
  """A streaming confusion matrix as an eval metric: (serialized Summary, update_op).

  The matrix is a local variable the update op adds each batch to; its value is one
  `Summary` holding the row-normalized matrix as an image (rows: true class, columns:
  predicted, white 0 to dark blue 1; tag `confusion_matrix/0`) and the counts as a
  markdown table (`confusion_matrix/1`, Text tab, up to MAX_TABLE_CLASSES classes). The Estimator writes a metric value
  that is a serialized Summary into eval/ as it is, naming its values `<key>/<i>`.
  """
  with tf.compat.v1.variable_scope(None, default_name=CONFUSION_MATRIX):
    total = tf.compat.v1.get_variable(
        'total', [num_classes, num_classes], dtype=tf.float64,
        initializer=tf.compat.v1.zeros_initializer(), trainable=False,
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES,
                     tf.compat.v1.GraphKeys.METRIC_VARIABLES])
    batch = tf.math.confusion_matrix(
        tf.reshape(tf.cast(labels, tf.int64), [-1]),
        tf.reshape(tf.cast(predictions, tf.int64), [-1]),
        num_classes=num_classes, dtype=tf.float64)
    update_op = tf.compat.v1.assign_add(total, batch)
    counts = tf.identity(total)
    image = confusion_matrix_image(counts)
    image_summary = summary.image(CONFUSION_MATRIX, image, max_outputs=1,
                                  collections=[])
    parts = [image_summary]
    if num_classes <= MAX_TABLE_CLASSES:
      parts.append(summary.text(CONFUSION_MATRIX + '_counts',
                                _counts_table(counts, num_classes, class_names),
                                collections=[]))
    value = summary.merge(parts, collections=[])
  return value, update_op


def confusion_matrix_image(counts):
  """[C, C] counts -> uint8 [1, H, W, 3]: each row scaled by its total, as a heat map."""
  counts = tf.cast(counts, tf.float32)
  num_classes = tf.shape(counts)[0]
  rows = tf.reduce_sum(counts, axis=1, keepdims=True)
  fraction = counts / tf.maximum(rows, 1.0)
  low, high = tf.constant(_LOW), tf.constant(_HIGH)
  rgb = low + fraction[..., None] * (high - low)
  cell = tf.maximum(1, _CONFUSION_IMAGE_SIZE // num_classes)
  rgb = tf.repeat(tf.repeat(rgb, cell, axis=0), cell, axis=1)
  return tf.cast(tf.round(rgb), tf.uint8)[None]


def _counts_table(counts, num_classes, class_names):
  names = list(class_names or [])[:num_classes]
  names += [str(i) for i in range(len(names), num_classes)]
  header = '| true \\ predicted | ' + ' | '.join(names) + ' |'
  rule = '|---' * (num_classes + 1) + '|'
  cells = tf.strings.as_string(tf.cast(counts, tf.int64))
  rows = tf.strings.join(
      ['| ', tf.constant(names), ' | ',
       tf.strings.reduce_join(cells, axis=1, separator=' | '), ' |'])
  return tf.strings.reduce_join(tf.concat([[header, rule], rows], 0), separator='\n')
