"""What `python -m estimator_pipeline.models` shows of a tf-slim classifier:

  python -m estimator_pipeline.models --model_name=resnet_v1_50 [--image_size=224]

The net is built at its default input size (or --image_size) with 1000 classes (the
ImageNet head of the published checkpoints) unless --num_classes says otherwise;
models/overview.py reads its blocks and its receptive field along the image's width.
"""

import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.models import overview


def image_overview(spec, num_classes=0, image_size=0):
  """The Overview of an image classifier (1000 classes, its default size unless
  given)."""
  size = image_size or spec.default_image_size
  with tf.Graph().as_default():
    image = tf.compat.v1.placeholder(tf.float32, [None, size, size, 3])
    model = spec.build(is_training=False, num_classes=num_classes or 1000,
                       image_size=size)
    try:
      return overview.describe(model, {'image': image}, image, 'px')
    except ValueError as e:
      raise UserError('--model_name=%s cannot be built at --image_size=%d (%s).'
                      % (spec.name, size, short_tf_message(e))) from None


def describe(spec, *, params_file='', num_classes=0, image_size=0, **unused):
  """ModelSpec.describe: (title line, Overview). Sequence options are not read."""
  del unused
  if params_file:
    raise UserError('--params_file is read by sequence models (--model_name=seqnn), '
                    'not by --model_name=%s: leave it out.' % spec.name)
  found = image_overview(spec, num_classes, image_size)
  return '%s, %d x %d px' % (spec.name, found.input_length, found.input_length), found
