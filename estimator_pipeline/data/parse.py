"""Parse functions: one serialized record -> the features and label the model reads.

One family per record layout, each decoding with its format module's decoder
(records/*_format.py) and preprocessing with this layer's ops (image_ops.py,
sequence_ops.py), the same ops evaluation and serving run:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.data import parse
  print(parse.image_parse_fns(is_training=False, num_classes=5, family='vgg',
                              image_size=224))"
"""

import tensorflow as tf

from estimator_pipeline.data import image_ops
from estimator_pipeline.data import sequence_ops
from estimator_pipeline.records import image_format
from estimator_pipeline.records import sequence_format

# The first words of the in-graph assertions on labels and targets; train/failures.py
# turns the errors they raise into one line naming the record and what to change.
LABEL_ERROR_MARKER = 'label out of range'
TARGET_ERROR_MARKER = 'target holds NaN or Inf'


def make_image_parse_fn(*, is_training, num_classes, family, image_size,
                        random_flip=True):
  """serialized slim image record -> ({'image': float32 [S, S, 3]}, int64 label)."""
  decoder = image_format.ImageRecordDecoder()

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    label = item['label']
    in_range = tf.logical_and(label >= 0, label < num_classes)
    check = tf.debugging.Assert(
        in_range, ['%s [0, %d) of --num_classes=%d:' % (
            LABEL_ERROR_MARKER, num_classes, num_classes), label], summarize=1)
    with tf.control_dependencies([check]):
      label = tf.identity(label)
    image = image_ops.decode_and_preprocess(
        item['encoded'], family, image_size, image_size, is_training,
        random_flip=random_flip)
    return {'image': image}, label

  return parse_fn


def make_image_batch_parse_fn(*, is_training, num_classes, family, image_size,
                              random_flip=True, parallel_iterations=32):
  """[B] serialized slim image records -> ({'image': float32 [B, S, S, 3]}, int64 [B]).

  The batch counterpart of make_image_parse_fn, with the same values: the records are
  parsed with one tf.io.parse_example, the labels checked with one assertion, and each
  image goes through the same per-image preprocessing (its own random crop and flip)
  in a tf.map_fn. parallel_iterations=1 draws the random values in record order,
  which --deterministic needs.
  """
  decoder = image_format.ImageRecordDecoder()

  def batch_parse_fn(serialized):
    items = decoder.decode_batch(serialized)
    labels = items['label']
    in_range = tf.logical_and(labels >= 0, labels < num_classes)
    first_bad = tf.boolean_mask(labels, tf.logical_not(in_range))[:1]
    check = tf.debugging.Assert(
        tf.reduce_all(in_range), ['%s [0, %d) of --num_classes=%d:' % (
            LABEL_ERROR_MARKER, num_classes, num_classes), first_bad], summarize=1)
    with tf.control_dependencies([check]):
      labels = tf.identity(labels)
    images = tf.map_fn(
        lambda encoded: image_ops.decode_and_preprocess(
            encoded, family, image_size, image_size, is_training,
            random_flip=random_flip),
        items['encoded'],
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
        parallel_iterations=parallel_iterations)
    return {'image': images}, labels

  return batch_parse_fn


# Output sides up to this parse a batch of records per call (make_input_fn's
# batch_parse_fn). Measured on 2 cores (bench/CHANGES.md): at 32x32 the per-record path
# spends more in tf.data's per-element machinery than in decoding, and batching first
# doubles the images/sec; at 224x224 decoding dominates and the per-record path's
# finer parallelism is faster.
BATCH_PARSE_MAX_IMAGE_SIZE = 64


def image_parse_fns(*, is_training, num_classes, family, image_size, random_flip=True,
                    deterministic=False):
  """make_input_fn's parse_fn and batch_parse_fn for slim image records."""
  kwargs = dict(is_training=is_training, num_classes=num_classes, family=family,
                image_size=image_size, random_flip=random_flip)
  batch_parse_fn = None
  if image_size <= BATCH_PARSE_MAX_IMAGE_SIZE:
    batch_parse_fn = make_image_batch_parse_fn(
        parallel_iterations=1 if deterministic else 32, **kwargs)
  return {'parse_fn': make_image_parse_fn(**kwargs), 'batch_parse_fn': batch_parse_fn}


def make_sequence_parse_fn(layout, *, is_training, augment_rc=False, augment_shift=0,
                           seed=None, strand_pair=None):
  """serialized basenji record -> ({'sequence': float32 [L, 4]}, float32 [T, N]).

  layout: a sequence_format.SequenceLayout. Training applies the params' augment_rc
  (reverse complement, targets flipped along length) and augment_shift (random shift
  in [-k, k], zero padded); evaluation reads the records as they are. strand_pair:
  see sequence_ops.augment_sequence.
  """
  decoder = sequence_format.SequenceRecordDecoder(layout)

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    sequence, target = item['sequence'], item['target']
    # A NaN target would turn the loss NaN steps later, far from its record: it fails
    # here (and --skip_corrupt_records drops it), as records inspect calls it bad.
    check = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(target)),
                                [TARGET_ERROR_MARKER])
    with tf.control_dependencies([check]):
      target = tf.identity(target)
    if is_training:
      sequence, target = sequence_ops.augment_sequence(
          sequence, target, augment_rc=augment_rc, augment_shift=augment_shift,
          seed=seed, strand_pair=strand_pair)
    return {'sequence': sequence}, target

  return parse_fn
