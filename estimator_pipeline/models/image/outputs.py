"""What an exported classifier answers: the outputs of its signatures.

`serving_default` (method tensorflow/serving/predict) returns, per input:

  classes               int64 []      the most probable class id
  probabilities         float32 [C]   softmax over every class
  top_k_classes         int64 [K]     the K most probable ids, best first (K = min(5, C))
  top_k_probabilities   float32 [K]   their probabilities
  class_names           string []     the name of `classes`           (with labels.txt)
  top_k_class_names     string [K]    the names of `top_k_classes`    (with labels.txt)

Names come from a lookup table initialized from a class-names file
(records/image_format.py writes it) that the export copies into the SavedModel's
assets/, so a SavedModel carries its own labels and the file can be read there
(`assets/class_names.txt`, one name per line, line N = id N).

When the serving input receives serialized tf.Examples, the export also has a
`classify` signature (method tensorflow/serving/classify, outputs `classes`: the name
of every class, `scores`: its probability), which TF Serving's Classify API and REST
`:classify` need:

  saved_model_cli show --dir runs/x/export/best/<version> --signature_def classify
"""

import tensorflow as tf

DEFAULT_TOP_K = 5
CLASSIFY_SIGNATURE = 'classify'

# A serving input receiver that takes serialized tf.Examples adds itself to this graph
# collection; classifier_outputs reads it to decide whether a classify signature is
# valid.
# (The Estimator would otherwise build a classify signature for any single string
# input, e.g. encoded image bytes, where TF Serving would feed it tf.Examples.)
EXAMPLES_INPUT_COLLECTION = 'estimator_pipeline_serving_examples_input'


def mark_examples_input():
  """Called by a receiver of serialized tf.Examples, in the export's graph."""
  tf.compat.v1.add_to_collection(EXAMPLES_INPUT_COLLECTION, True)


def _receives_examples():
  return bool(tf.compat.v1.get_collection(EXAMPLES_INPUT_COLLECTION))


def _names_table(class_names_file):
  # A table initialized from a file (not a constant): TF1 graphs register the file in
  # ASSET_FILEPATHS, so the Estimator's export copies it into assets/ and points the
  # table at that copy; the Estimator's Scaffold initializes tables.
  initializer = tf.compat.v1.lookup.TextFileInitializer(
      class_names_file, key_dtype=tf.int64,
      key_index=tf.compat.v1.lookup.TextFileIndex.LINE_NUMBER, value_dtype=tf.string,
      value_index=tf.compat.v1.lookup.TextFileIndex.WHOLE_LINE)
  return tf.compat.v1.lookup.StaticHashTable(initializer, default_value='')


def _lookup(table, ids):
  names = table.lookup(tf.cast(ids, tf.int64))
  # An id the file does not name (an older, shorter file) gets its number.
  return tf.where(tf.equal(names, ''), tf.strings.as_string(ids), names)


def classifier_outputs(outputs, class_names_file=None, top_k=DEFAULT_TOP_K):
  """{'classes', 'probabilities'} -> (predictions, export_outputs) for an EstimatorSpec.

  Args:
    outputs: the Model's postprocess() dict with int64 `classes` [N] and float
      `probabilities` [N, C] (other keys are kept).
    class_names_file: a file of class names, one a line, or None.
    top_k: how many best classes to return (at most C).

  Returns:
    (predictions dict, {signature key: tf.estimator.export.ExportOutput}).
  """
  predictions = dict(outputs)
  probabilities = outputs['probabilities']
  num_classes = probabilities.shape[-1]
  k = min(top_k, num_classes) if num_classes is not None else top_k
  top_probabilities, top_classes = tf.math.top_k(probabilities, k=k)
  predictions['top_k_classes'] = tf.cast(top_classes, tf.int64)
  predictions['top_k_probabilities'] = top_probabilities
  table = None
  if class_names_file:
    table = _names_table(class_names_file)
    predictions['class_names'] = _lookup(table, outputs['classes'])
    predictions['top_k_class_names'] = _lookup(table, top_classes)

  export_outputs = {
      tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
          tf.estimator.export.PredictOutput(predictions)}
  if _receives_examples():
    all_ids = tf.range(tf.shape(probabilities, out_type=tf.int64)[-1])
    all_names = (_lookup(table, all_ids) if table is not None
                 else tf.strings.as_string(all_ids))
    # TF Serving's classify answers [N, C] (class, score) pairs: every class, as the
    # canned Estimators export it.
    names = tf.tile(all_names[tf.newaxis], [tf.shape(probabilities)[0], 1])
    export_outputs[CLASSIFY_SIGNATURE] = tf.estimator.export.ClassificationOutput(
        scores=probabilities, classes=names)
  return predictions, export_outputs
