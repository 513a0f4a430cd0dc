"""Per-family image preprocessing for tf-slim classifiers.

  python -c "import estimator_pipeline, tensorflow as tf; \
from estimator_pipeline.data import image_ops as p; \
print(p.normalize(p.preprocess_image(tf.zeros([50, 80, 3], tf.uint8), 'vgg', 224, 224, \
is_training=True), 'vgg').shape)"

The work is split in two on purpose:

- `preprocess_image` / `decode_and_preprocess` do the geometric and colour part. They run
  on the CPU inside `tf.data` (data/image_parse.py's parallel map) and inside the
  serving graph (export decodes bytes, then calls the same eval preprocessing), and
  return float32 [height, width, 3] on the 0..255 scale.
- `normalize` maps that to the network's input range. It runs inside the model, so it is
  part of the exported graph and runs on the accelerator.

Three families, after tensorflow/models research/slim/preprocessing, with the reference
sizes (for 224) scaled to any output size:

- 'vgg' (resnet_v1_*, vgg_*, alexnet_v2): aspect-preserving resize so the shorter side
  is a random integer in [256 s, 512 s] (training) or 256 s (eval), s = min(h, w) / 224,
  then a random (training) or central (eval) h x w crop; ImageNet mean subtraction.
- 'inception' (inception_v*, resnet_v2_*): a random distorted bounding box (training) or
  the central 87.5% (eval), resized to h x w, fast colour distortion in training;
  x / 127.5 - 1.
- 'cifarnet' (small nets trained from scratch): resize to h x w; training then pads by
  1/8 and crops at random, flips, and jitters brightness and contrast;
  per-image standardization.

Every op is a TensorFlow op: no Python runs per image, nothing uses tf.py_function.
For 'vgg' and 'inception' the crop is chosen in source-pixel coordinates and the image is
resized once, from the crop window straight to h x w: resizing the whole image and then
cropping (as slim does) computes several times more pixels than it keeps. The same
window arithmetic lets `decode_and_preprocess` decode only the window of a JPEG.
"""

import tensorflow as tf

FAMILIES = ('vgg', 'inception', 'cifarnet')

# Per-channel RGB means of ImageNet on the 0..255 scale, as slim's vgg_preprocessing.
_VGG_MEANS = (123.68, 116.78, 103.94)

# Slim's numbers are for a 224 x 224 output; they scale with min(height, width) / 224.
_REFERENCE_SIZE = 224.0
_VGG_RESIZE_SIDE_MIN = 256
_VGG_RESIZE_SIDE_MAX = 512

_INCEPTION_CENTRAL_FRACTION = 0.875
# slim's inception brightness delta is 32/255 on the [0, 1] scale; we distort on the
# 0..255 scale (see _inception_colour), where the same delta is 32.
_INCEPTION_BRIGHTNESS = 32.0

_CIFARNET_BRIGHTNESS = 63.0
_CIFARNET_CONTRAST = (0.2, 1.8)


def _check_family(family):
  if family not in FAMILIES:
    raise ValueError(
        f'Unknown preprocessing family {family!r}; known families: '
        f'{", ".join(FAMILIES)}.')


def _check_size(height, width):
  for name, value in (('height', height), ('width', width)):
    if int(value) != value or value < 1:
      raise ValueError(f'{name} must be a positive integer, got {value!r}.')
  return int(height), int(width)


def _round_half_up(x):
  # Python's round() is banker's rounding; slim's sizes were meant as plain rounding.
  return int(x + 0.5)


class _Seeds:
  """Hands out a distinct op-level seed per random op.

  Random ops that share an op seed draw the same sequence, which would tie e.g. the
  crop's vertical and horizontal offsets together. A seed of None stays None (random).
  Op seed 0 means "unseeded" to some TF ops, so the sequence starts at seed + 1.
  """

  def __init__(self, seed):
    self._seed = seed
    self._count = 0

  def next(self):
    if self._seed is None:
      return None
    self._count += 1
    return self._seed + self._count


def decode_image(encoded):
  """Decodes JPEG, PNG, GIF (first frame) or BMP bytes to uint8 [H, W, 3].

  Args:
    encoded: scalar tf.string, the encoded image.

  Returns:
    uint8 tensor of static shape [None, None, 3]; grayscale and RGBA images are converted
    to RGB by the decoder.
  """
  # expand_animations=False gives a GIF's first frame as [H, W, C] instead of a 4-D
  # tensor, so every format has the static rank 3 that the crop and resize ops need.
  return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                            expand_animations=False)


def _to_rgb(image):
  """uint8 [H, W, C] with C in 1..4 -> uint8 [H, W, 3], static rank and channels."""
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8:
    # A float input could be on the 0..1 or the 0..255 scale; guessing would silently
    # give black or saturated images, so we insist on what the decoders produce.
    raise TypeError(f'preprocess_image expects a uint8 image (as decoded), got '
                    f'{image.dtype.name}.')
  if image.shape.rank is None:
    image = tf.ensure_shape(image, [None, None, None])
  if image.shape.rank != 3:
    raise ValueError(f'preprocess_image expects one image [H, W, C], got shape '
                     f'{image.shape}.')
  channels = image.shape[-1]
  if channels == 3:
    return image
  if channels in (1, 2):  # Grayscale, or grayscale + alpha.
    return tf.tile(image[:, :, :1], [1, 1, 3])
  if channels == 4:  # RGBA: the nets were trained without alpha.
    return image[:, :, :3]
  if channels is None:
    image = tf.cond(tf.shape(image)[-1] < 3,
                    lambda: tf.tile(image[:, :, :1], [1, 1, 3]),
                    lambda: image[:, :, :3])
    return tf.ensure_shape(image, [None, None, 3])
  raise ValueError(f'preprocess_image expects 1 to 4 channels, got {channels}.')


def _resize(image, height, width):
  # Bilinear with half-pixel centres and no antialiasing, as slim's resize_bilinear.
  # The uint8 input comes out as float32 on the 0..255 scale with no extra cast.
  return tf.image.resize(image, [height, width], method='bilinear')


def _random_offsets(shape, crop_size, seed):
  """Uniform integer offsets in [0, shape - crop_size], for both axes in one draw."""
  room = shape - crop_size
  u = tf.random.uniform([2], seed=seed)
  offsets = tf.cast(u * tf.cast(room + 1, tf.float32), tf.int32)
  return tf.minimum(offsets, room)


def _vgg_window(shape, height, width, is_training, seeds):
  """The source window that slim's aspect-preserving resize + crop would keep.

  Resizing so the shorter side is `side` and cropping height x width equals cropping
  (height, width) / scale source pixels and resizing that to height x width.

  Args:
    shape: int32 [2], the source image's height and width.
    height: output height.
    width: output width.
    is_training: random side and offsets if True; the eval side and the centre if not.
    seeds: _Seeds.

  Returns:
    (offset, size), int32 [2] each, in source pixels.
  """
  s = min(height, width) / _REFERENCE_SIZE
  side_min = _round_half_up(_VGG_RESIZE_SIDE_MIN * s)
  if is_training:
    side_max = _round_half_up(_VGG_RESIZE_SIDE_MAX * s)
    side = tf.random.uniform([], side_min, side_max + 1, dtype=tf.int32,
                             seed=seeds.next())
    side = tf.cast(side, tf.float32)
  else:
    side = float(side_min)
  source = tf.cast(shape, tf.float32)
  output = tf.constant([height, width], tf.float32)
  # slim assumes a square output, where side >= 256 s > height always leaves room for
  # the crop. For a non-square output the scale must also make both sides fit.
  scale = tf.maximum(side / tf.reduce_min(source), tf.reduce_max(output / source))
  size = tf.cast(tf.round(output / scale), tf.int32)
  size = tf.clip_by_value(size, 1, shape)
  if is_training:
    offset = _random_offsets(shape, size, seeds.next())
  else:
    offset = (shape - size) // 2
  return offset, size


def _inception_train_window(shape, seeds):
  """slim's distorted bounding box over the whole image; (offset, size) int32 [2]."""
  begin, size, _ = tf.image.sample_distorted_bounding_box(
      tf.concat([shape, [3]], axis=0),
      bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=seeds.next(),
      min_object_covered=0.1,
      aspect_ratio_range=(0.75, 1.33),
      area_range=(0.05, 1.0),
      max_attempts=100,
      use_image_if_no_bounding_boxes=True)
  return begin[:2], size[:2]


def _inception_eval_window(shape):
  """The central 87.5%, with tf.image.central_crop's rounding; (offset, size)."""
  source = tf.cast(shape, tf.float32)
  offset = tf.cast(source * (1.0 - _INCEPTION_CENTRAL_FRACTION) / 2.0, tf.int32)
  return offset, shape - 2 * offset


def _window(family, shape, height, width, is_training, seeds):
  if family == 'vgg':
    return _vgg_window(shape, height, width, is_training, seeds)
  if is_training:
    return _inception_train_window(shape, seeds)
  return _inception_eval_window(shape)


def _random_flip(image, random_flip, seeds):
  if not random_flip:
    return image
  return tf.image.random_flip_left_right(image, seed=seeds.next())


def _inception_colour(image, seeds):
  """slim's fast-mode distort_color (brightness, then saturation), on 0..255.

  slim does this on the [0, 1] scale and clips there. Brightness is additive, so a
  delta of 32/255 there is 32 here; saturation goes through HSV, where S = (max - min)
  / max does not depend on the scale and V scales with it. Working on 0..255 gives the
  same image times 255 and saves two passes over the pixels.
  """
  image = tf.image.random_brightness(image, _INCEPTION_BRIGHTNESS,
                                     seed=seeds.next())
  image = tf.image.random_saturation(image, 0.5, 1.5, seed=seeds.next())
  return tf.clip_by_value(image, 0.0, 255.0)


def _crop_resize_finish(window_image, family, height, width, is_training,
                        random_flip, seeds):
  """Resize an already-cropped vgg/inception window and apply the training extras."""
  image = _resize(window_image, height, width)
  if is_training:
    image = _random_flip(image, random_flip, seeds)
    if family == 'inception':
      image = _inception_colour(image, seeds)
  # A bilinear resize of uint8 values is a convex combination, so it stays in
  # [0, 255] without a clip; only the colour distortion needs one.
  return image


def _cifarnet(image, height, width, is_training, random_flip, seeds):
  image = _resize(image, height, width)
  if not is_training:
    return image
  # slim pads a 32 x 32 image by 4 (= 32 // 8) and crops 32 x 32 back at random, i.e.
  # a random translation of up to 1/8 of the image with zero fill.
  pad = max(1, height // 8)
  image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
  offset = _random_offsets(tf.constant([height + 2 * pad, width + 2 * pad]),
                           tf.constant([height, width]), seeds.next())
  image = tf.slice(image, tf.concat([offset, [0]], axis=0), [height, width, 3])
  image = _random_flip(image, random_flip, seeds)
  image = tf.image.random_brightness(image, _CIFARNET_BRIGHTNESS,
                                     seed=seeds.next())
  image = tf.image.random_contrast(image, *_CIFARNET_CONTRAST, seed=seeds.next())
  return tf.clip_by_value(image, 0.0, 255.0)


def preprocess_image(image, family, height, width, is_training, random_flip=True,
                     seed=None):
  """Crops, resizes and (in training) augments one decoded image.

  Args:
    image: uint8 [H, W, 3] (or [H, W, 1] grayscale, or RGBA), any H and W, static or
      dynamic shape.
    family: one of FAMILIES.
    height: output height in pixels.
    width: output width in pixels.
    is_training: random crop and augmentation if True; deterministic eval otherwise.
    random_flip: in training, flip left-right with probability 1/2. Turn it off for
      data where orientation carries the label.
    seed: optional int; the op-level seeds of the random ops are derived from it.

  Returns:
    float32 [height, width, 3] (static shape) on the 0..255 scale. Pass it (or a batch
    of it) through `normalize` to get the network's input.

  Raises:
    ValueError: on an unknown family, a bad size, or an image that is not [H, W, C].
    TypeError: if the image is not uint8.
  """
  _check_family(family)
  height, width = _check_size(height, width)
  seeds = _Seeds(seed)
  with tf.name_scope(f'preprocess_{family}'):
    image = _to_rgb(image)
    if family == 'cifarnet':
      output = _cifarnet(image, height, width, is_training, random_flip, seeds)
    else:
      shape = tf.shape(image)[:2]
      offset, size = _window(family, shape, height, width, is_training, seeds)
      window = tf.slice(image, tf.concat([offset, [0]], axis=0),
                        tf.concat([size, [3]], axis=0))
      output = _crop_resize_finish(window, family, height, width, is_training,
                                   random_flip, seeds)
    output.set_shape([height, width, 3])
    return output


def decode_and_preprocess(encoded, family, height, width, is_training,
                          random_flip=True, seed=None):
  """preprocess_image(decode_image(encoded), ...), decoding only what is kept.

  In training with 'vgg' or 'inception', a JPEG's crop window is chosen from its header
  (tf.image.extract_jpeg_shape) and only that window is decoded
  (tf.image.decode_and_crop_jpeg), with the same window arithmetic as preprocess_image,
  so the output distribution is the same. Other formats, 'cifarnet' (which resizes the
  whole image) and eval decode fully; eval is then exactly
  preprocess_image(decode_image(encoded), ...).

  Args:
    encoded: scalar tf.string with JPEG, PNG, GIF or BMP bytes.
    family: one of FAMILIES.
    height: output height in pixels.
    width: output width in pixels.
    is_training: as in preprocess_image.
    random_flip: as in preprocess_image.
    seed: as in preprocess_image.

  Returns:
    float32 [height, width, 3] (static shape) on the 0..255 scale.
  """
  _check_family(family)
  height, width = _check_size(height, width)
  if not is_training or family == 'cifarnet':
    return preprocess_image(decode_image(encoded), family, height, width,
                            is_training, random_flip=random_flip, seed=seed)

  def decode_jpeg_window():
    seeds = _Seeds(seed)
    with tf.name_scope(f'preprocess_{family}'):
      shape = tf.image.extract_jpeg_shape(encoded)[:2]
      offset, size = _window(family, shape, height, width, is_training, seeds)
      window = tf.image.decode_and_crop_jpeg(
          encoded, tf.concat([offset, size], axis=0), channels=3)
      return _crop_resize_finish(window, family, height, width, is_training,
                                 random_flip, seeds)

  def decode_all():
    return preprocess_image(decode_image(encoded), family, height, width,
                            is_training, random_flip=random_flip, seed=seed)

  output = tf.cond(tf.io.is_jpeg(encoded), decode_jpeg_window, decode_all)
  output.set_shape([height, width, 3])
  return output


def normalize(images, family):
  """Maps preprocess_image's 0..255 output to the family's network input.

  Runs inside the model, so it is part of the exported graph.

  Args:
    images: one image [H, W, 3] or a batch [N, H, W, 3] on the 0..255 scale (float32,
      or any numeric type, which is cast to float32).
    family: one of FAMILIES.

  Returns:
    float32 tensor of the same shape.
  """
  _check_family(family)
  images = tf.convert_to_tensor(images)
  if images.dtype != tf.float32:
    images = tf.cast(images, tf.float32)
  with tf.name_scope(f'normalize_{family}'):
    if family == 'vgg':
      return images - tf.constant(_VGG_MEANS, tf.float32)
    if family == 'inception':
      return images / 127.5 - 1.0
    # Reduces over the last three axes, so one image and a batch both work.
    return tf.image.per_image_standardization(images)
