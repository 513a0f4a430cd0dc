"""Tests for estimator_pipeline.preprocessing, eagerly and inside tf.data.Dataset.map.

  .venv/bin/python -m pytest -q tests/test_preprocessing.py

The same function can behave differently traced (dynamic shapes, graph-mode random ops,
tf.cond branches) and eagerly (static shapes, Python booleans), so the shape and range
checks run both ways.
"""

import numpy as np
import pytest
import tensorflow as tf

from estimator_pipeline.data import image_ops as preprocessing

FAMILIES = preprocessing.FAMILIES
MODES = (True, False)  # is_training
OUT_H, OUT_W = 24, 32  # Non-square on purpose: catches swapped axes.


def _noise(height, width, channels=3, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def _smooth(height, width):
  # JPEG keeps a smooth image almost intact, so decoded pixels are predictable.
  yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  return np.stack([yy * 255 // max(height - 1, 1), xx * 255 // max(width - 1, 1),
                   (yy + xx) % 256], axis=-1).astype(np.uint8)


def _half_black_half_white(height, width):
  image = np.zeros((height, width, 3), np.uint8)
  image[:, width // 2:] = 255
  return image


def _check_output(output, height=OUT_H, width=OUT_W):
  output = np.asarray(output)
  assert output.shape == (height, width, 3)
  assert output.dtype == np.float32
  assert np.isfinite(output).all()
  assert output.min() >= 0.0 and output.max() <= 255.0


# Non-square both ways, smaller than the output, and grayscale.
INPUT_SHAPES = [(50, 80, 3), (80, 50, 3), (10, 12, 3), (40, 40, 1)]


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('is_training', MODES)
@pytest.mark.parametrize('shape', INPUT_SHAPES)
def test_eager_shape_dtype_range(family, is_training, shape):
  output = preprocessing.preprocess_image(
      tf.constant(_noise(*shape)), family, OUT_H, OUT_W, is_training)
  assert output.shape.as_list() == [OUT_H, OUT_W, 3]
  _check_output(output)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('is_training', MODES)
@pytest.mark.parametrize('channels', [3, 1, 0])
def test_dataset_map_shape_dtype_range(family, is_training, channels):
  # Decoding inside the dataset gives dynamic H and W, as in input_fn; channels=0
  # (keep what the file has) also leaves the channel count unknown at trace time.
  images = [_noise(*shape[:2], channels=max(channels, 1), seed=i)
            for i, shape in enumerate(INPUT_SHAPES)]
  encoded = [tf.io.encode_png(image).numpy() for image in images]
  dataset = tf.data.Dataset.from_tensor_slices(encoded).map(
      lambda e: tf.io.decode_png(e, channels=channels))
  dataset = dataset.map(
      lambda image: preprocessing.preprocess_image(image, family, OUT_H, OUT_W,
                                                   is_training),
      num_parallel_calls=2)
  assert dataset.element_spec == tf.TensorSpec([OUT_H, OUT_W, 3], tf.float32)
  outputs = list(dataset.as_numpy_iterator())
  assert len(outputs) == len(images)
  for output in outputs:
    _check_output(output)


@pytest.mark.parametrize('family', FAMILIES)
def test_eval_is_deterministic(family):
  image = tf.constant(_noise(50, 80))
  first = preprocessing.preprocess_image(image, family, OUT_H, OUT_W, False)
  second = preprocessing.preprocess_image(image, family, OUT_H, OUT_W, False)
  np.testing.assert_array_equal(first.numpy(), second.numpy())


@pytest.mark.parametrize('family', ['vgg', 'inception'])
def test_eval_keeps_a_constant_colour(family):
  colour = np.array([10, 200, 77], np.uint8)
  image = np.broadcast_to(colour, (50, 80, 3))
  output = preprocessing.preprocess_image(tf.constant(image), family, OUT_H, OUT_W,
                                          False)
  np.testing.assert_array_equal(output.numpy(),
                                np.broadcast_to(colour, (OUT_H, OUT_W, 3)))


def test_cifarnet_eval_at_output_size_is_identity():
  image = _noise(OUT_H, OUT_W)
  output = preprocessing.preprocess_image(tf.constant(image), 'cifarnet', OUT_H, OUT_W,
                                          False)
  np.testing.assert_array_equal(output.numpy(), image.astype(np.float32))


def test_vgg_eval_is_a_central_crop():
  # A 48 x 64 image with a 24 x 24 output: s = 24/224, the shorter side goes to
  # round(256 s) = 27, so the kept window is 24 * 48/27 = 42.7 -> 43 source rows and
  # columns, centred. Rows 0..1 and 46..47 (and columns far from the centre) fall
  # outside it; mark them and check nothing of them survives.
  image = np.full((48, 64, 3), 100, np.uint8)
  image[:2] = 255
  image[-2:] = 255
  image[:, :10] = 255
  image[:, -10:] = 255
  output = preprocessing.preprocess_image(tf.constant(image), 'vgg', 24, 24, False)
  np.testing.assert_array_equal(output.numpy(), np.full((24, 24, 3), 100, np.float32))


@pytest.mark.parametrize('family', FAMILIES)
def test_training_is_random(family):
  image = tf.constant(_noise(50, 80))
  first = preprocessing.preprocess_image(image, family, OUT_H, OUT_W, True)
  second = preprocessing.preprocess_image(image, family, OUT_H, OUT_W, True)
  assert np.abs(first.numpy() - second.numpy()).max() > 1.0


def _left_minus_right(output):
  # Outer quarters: a crop, zoom or cifarnet's 1/8 shift cannot move a pixel from
  # one half of the source into the far quarter on the other side.
  quarter = output.shape[1] // 4
  return output[:, :quarter].mean() - output[:, -quarter:].mean()


@pytest.mark.parametrize('family', FAMILIES)
def test_random_flip_false_never_flips(family):
  # Left half black, right half white. Crops, resizes, brightness, contrast and
  # saturation (on grey) all keep left <= right; only a flip can make left > right.
  image = tf.constant(_half_black_half_white(64, 64))
  for _ in range(30):
    output = preprocessing.preprocess_image(image, family, 32, 32, True,
                                            random_flip=False).numpy()
    assert _left_minus_right(output) <= 0.0


def test_random_flip_true_does_flip():
  # The check above can fail: with flips on, cifarnet (which always keeps both halves)
  # shows a flipped image in about half of the draws.
  image = tf.constant(_half_black_half_white(64, 64))
  flipped = [
      _left_minus_right(preprocessing.preprocess_image(
          image, 'cifarnet', 32, 32, True, random_flip=True).numpy()) > 0.0
      for _ in range(30)]
  assert 3 <= sum(flipped) <= 27


def test_cifarnet_random_flip_false_inside_dataset():
  image = _half_black_half_white(64, 64)
  dataset = tf.data.Dataset.from_tensors(image).repeat(30).map(
      lambda x: preprocessing.preprocess_image(x, 'cifarnet', 32, 32, True,
                                               random_flip=False))
  for output in dataset.as_numpy_iterator():
    assert _left_minus_right(output) < 0.0


def test_seed_is_reproducible_inside_dataset():
  image = _noise(50, 80)

  def draws():
    dataset = tf.data.Dataset.from_tensors(image).repeat(3).map(
        lambda x: preprocessing.preprocess_image(x, 'inception', OUT_H, OUT_W, True,
                                                 seed=11))
    return np.stack(list(dataset.as_numpy_iterator()))

  first, second = draws(), draws()
  np.testing.assert_array_equal(first, second)
  assert np.abs(first[0] - first[1]).max() > 1.0  # Different per element.


def _numpy_normalize(images, family):
  images = images.astype(np.float64)
  if family == 'vgg':
    return images - np.array([123.68, 116.78, 103.94])
  if family == 'inception':
    return images / 127.5 - 1.0
  axes = (-3, -2, -1)
  mean = images.mean(axis=axes, keepdims=True)
  num = np.prod(images.shape[-3:])
  std = np.maximum(images.std(axis=axes, keepdims=True), 1.0 / np.sqrt(num))
  return (images - mean) / std


@pytest.mark.parametrize('family', FAMILIES)
def test_normalize_matches_numpy(family):
  batch = _noise(2, 5 * 7 * 3, channels=1).reshape(2, 5, 7, 3).astype(np.float32)
  # Per-image statistics must be per image: make the two images differ in scale.
  batch[1] *= 0.25
  for images in (batch, batch[0]):
    output = preprocessing.normalize(tf.constant(images), family)
    assert output.dtype == tf.float32
    assert output.shape == images.shape
    np.testing.assert_allclose(output.numpy(), _numpy_normalize(images, family),
                               rtol=1e-5, atol=1e-5)


def test_normalize_accepts_uint8():
  image = _noise(5, 7)
  output = preprocessing.normalize(tf.constant(image), 'inception')
  np.testing.assert_allclose(output.numpy(), _numpy_normalize(image, 'inception'),
                             rtol=1e-5, atol=1e-6)


def test_decode_image_gives_rgb_with_static_rank():
  gray = _noise(9, 11, channels=1)
  decoded = preprocessing.decode_image(tf.io.encode_png(gray))
  assert decoded.dtype == tf.uint8
  np.testing.assert_array_equal(decoded.numpy(), np.repeat(gray, 3, axis=-1))
  dataset = tf.data.Dataset.from_tensors(tf.io.encode_png(gray)).map(
      preprocessing.decode_image)
  assert dataset.element_spec.shape.as_list() == [None, None, 3]


def _encoded(image):
  return {'jpeg': tf.io.encode_jpeg(image, quality=95).numpy(),
          'png': tf.io.encode_png(image).numpy()}


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('image_format', ['jpeg', 'png'])
def test_decode_and_preprocess_eval_equals_two_step(family, image_format):
  encoded = _encoded(_noise(45, 70))[image_format]
  expected = preprocessing.preprocess_image(
      preprocessing.decode_image(encoded), family, OUT_H, OUT_W, False).numpy()
  eager = preprocessing.decode_and_preprocess(encoded, family, OUT_H, OUT_W, False)
  np.testing.assert_array_equal(eager.numpy(), expected)
  dataset = tf.data.Dataset.from_tensors(encoded).map(
      lambda e: preprocessing.decode_and_preprocess(e, family, OUT_H, OUT_W, False))
  np.testing.assert_array_equal(next(dataset.as_numpy_iterator()), expected)


@pytest.mark.parametrize('family', FAMILIES)
def test_decode_and_preprocess_training_inside_dataset(family):
  images = [_noise(45, 70), _noise(70, 45, seed=1), _noise(12, 10, seed=2)]
  encoded = [value for image in images for value in _encoded(image).values()]
  dataset = tf.data.Dataset.from_tensor_slices(encoded).map(
      lambda e: preprocessing.decode_and_preprocess(e, family, OUT_H, OUT_W, True),
      num_parallel_calls=2)
  assert dataset.element_spec == tf.TensorSpec([OUT_H, OUT_W, 3], tf.float32)
  outputs = list(dataset.as_numpy_iterator())
  assert len(outputs) == len(encoded)
  for output in outputs:
    _check_output(output)


@pytest.mark.parametrize('family', ['vgg', 'inception'])
def test_decode_and_crop_jpeg_samples_like_preprocess_image(family):
  # With the same seed both paths draw the same crop windows, so the fused JPEG path
  # differs from decode-then-crop only by how libjpeg decodes a window's edges. Two
  # draws of one path differ far more: the windows really are random.
  encoded = tf.io.encode_jpeg(_smooth(75, 101), quality=95)

  def draws(fn):
    dataset = tf.data.Dataset.from_tensors(encoded).repeat(10).map(fn)
    return np.stack(list(dataset.as_numpy_iterator()))

  fused = draws(lambda e: preprocessing.decode_and_preprocess(
      e, family, OUT_H, OUT_W, True, seed=5))
  two_step = draws(lambda e: preprocessing.preprocess_image(
      preprocessing.decode_image(e), family, OUT_H, OUT_W, True, seed=5))
  assert np.abs(fused - two_step).mean() < 0.1
  assert np.abs(fused[1:] - fused[:-1]).mean() > 5.0


def test_unknown_family_lists_the_known_ones():
  image = tf.zeros([8, 8, 3], tf.uint8)
  calls = [
      lambda: preprocessing.preprocess_image(image, 'resnet', 8, 8, False),
      lambda: preprocessing.decode_and_preprocess(
          tf.io.encode_png(image), 'resnet', 8, 8, True),
      lambda: preprocessing.normalize(tf.zeros([8, 8, 3]), 'resnet'),
  ]
  for call in calls:
    with pytest.raises(ValueError, match='resnet') as error:
      call()
    for family in FAMILIES:
      assert family in str(error.value)


def test_rejects_float_images():
  with pytest.raises(TypeError, match='uint8'):
    preprocessing.preprocess_image(tf.zeros([8, 8, 3]), 'vgg', 8, 8, False)
