"""Parse functions of slim image records: serialized records -> ({'image'}, label).

Each decodes with the image format's decoder (records/image_format.py) and
preprocesses with image_ops.py, the ops evaluation and serving run too:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.data import image_parse
  print(image_parse.image_parse_fns(is_training=False, num_classes=5, family='vgg',
                                    image_size=224))"
"""

import tensorflow as tf

from estimator_pipeline.data import image_ops
from estimator_pipeline.data import parse
from estimator_pipeline.records import image_format


def make_image_parse_fn(*, is_training, num_classes, family, image_size,
                        random_flip=True):
  """serialized slim image record -> ({'image': float32 [S, S, 3]}, int64 label)."""
  decoder = image_format.ImageRecordDecoder()

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    label = parse.checked_labels(item['label'], num_classes)
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
    labels = parse.checked_labels(items['label'], num_classes)
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
