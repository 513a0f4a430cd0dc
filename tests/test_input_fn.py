"""Tests of input_fn: file listing, training and evaluation pipelines, label checks,
sharding across input pipelines, and PNG and JPEG records.

  .venv/bin/python -m pytest -q tests/test_input_fn.py -p no:logging

Every record is written here, in tmp_path, by conftest.write_image_records; the
pipelines run eagerly, as tf.data does when an Estimator is not around.
"""

import re

import estimator_pipeline  # pylint: disable=unused-import  (compat fixes before TF)
import numpy as np
import pytest
import tensorflow as tf

from conftest import image_example
from conftest import write_image_records
from estimator_pipeline.data import input_fn
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core import files
from estimator_pipeline.data import image_parse
from estimator_pipeline.data import parse
from estimator_pipeline.records import image_format


def _touch(path):
  path.write_bytes(b'')
  return str(path)


def _labels(dataset):
  return [batch[1].numpy().tolist() for batch in dataset]


def _image_input_fn(pattern, *, is_training, batch_size, num_classes, family,
                    image_size, flag_name='--train_record_path', **kwargs):
  """An input_fn over image records: a glob in, batches of images out."""
  return input_fn.make_input_fn(
      files.list_files(pattern, flag_name), is_training=is_training,
      batch_size=batch_size, **image_parse.image_parse_fns(
          is_training=is_training, num_classes=num_classes, family=family,
          image_size=image_size), **kwargs)


def _eval_fn(pattern, batch_size, num_classes, family='cifarnet'):
  return _image_input_fn(
      pattern, is_training=False, batch_size=batch_size, num_classes=num_classes,
      family=family, image_size=32, flag_name='--eval_record_path')


def test_list_files_globs_comma_lists_dedupes_and_sorts(tmp_path):
  b1, a0, a1, c = (_touch(tmp_path / n) for n in ('b-1', 'a-0', 'a-1', 'c'))
  (tmp_path / 'a-dir').mkdir()  # A glob may match a directory; it is not a record.
  assert files.list_files(str(tmp_path / 'a-*')) == [a0, a1]
  pattern = ' %s , %s,%s,,%s ' % (tmp_path / 'b-*', c, tmp_path / 'a-*', a0)
  assert files.list_files(pattern) == [a0, a1, b1, c]


def test_list_files_names_the_flag_and_the_pattern_that_matched_nothing(tmp_path):
  present = _touch(tmp_path / 'train-0')
  missing = str(tmp_path / 'nothing-*.tfrecord')
  with pytest.raises(UserError) as e:
    files.list_files('%s,%s' % (present, missing), '--eval_record_path')
  assert '--eval_record_path' in str(e.value)
  assert missing in str(e.value)
  with pytest.raises(UserError, match='--train_record_path'):
    files.list_files(missing)


def test_training_input_fn_has_static_batches_and_repeats(tmp_path):
  labels = [i % 3 for i in range(10)]
  write_image_records(str(tmp_path / 'train-0'), labels[:6])
  write_image_records(str(tmp_path / 'train-1'), labels[6:], seed=1)
  fn = _image_input_fn(
      str(tmp_path / 'train-*'), is_training=True, batch_size=8, num_classes=3,
      family='cifarnet', image_size=32, seed=1)
  dataset = fn()
  features, label_spec = dataset.element_spec
  assert features['image'] == tf.TensorSpec([8, 32, 32, 3], tf.float32)
  assert label_spec == tf.TensorSpec([8], tf.int64)
  # 3 batches of 8 from 10 records: only a repeating dataset has them.
  batches = list(dataset.take(3))
  assert len(batches) == 3
  for features, batch_labels in batches:
    assert features['image'].shape == (8, 32, 32, 3)
    assert set(batch_labels.numpy()) <= {0, 1, 2}
    pixels = features['image'].numpy()
    assert pixels.min() >= 0 and pixels.max() <= 255


# Three files with distinct labels, one per record, so order and count are both visible.
EVAL_FILES = {'eval-0': list(range(0, 6)), 'eval-1': list(range(6, 10)),
              'eval-2': list(range(10, 13))}


@pytest.fixture
def eval_records(tmp_path):
  for seed, (name, labels) in enumerate(sorted(EVAL_FILES.items())):
    write_image_records(str(tmp_path / name), labels, seed=seed)
  return str(tmp_path / 'eval-*')


def test_evaluation_reads_every_record_once_with_a_short_last_batch(eval_records):
  fn = _eval_fn(eval_records, batch_size=5, num_classes=13)
  batches = _labels(fn())
  assert [len(b) for b in batches] == [5, 5, 3]
  written = sorted(sum(EVAL_FILES.values(), []))
  assert sorted(sum(batches, [])) == written
  assert _labels(fn()) == batches  # Same order on every evaluation.


def test_evaluation_reads_files_in_order(eval_records):
  batches = _labels(_eval_fn(eval_records, batch_size=5, num_classes=13)())
  in_file_order = sum((labels for _, labels in sorted(EVAL_FILES.items())), [])
  assert sum(batches, []) == in_file_order


@pytest.mark.parametrize('bad_label', [7, -1])
def test_label_out_of_range_fails_naming_the_label(tmp_path, bad_label):
  write_image_records(str(tmp_path / 'eval-0'), [0, 1, bad_label, 2])
  dataset = _eval_fn(str(tmp_path / 'eval-0'), batch_size=2, num_classes=3)()
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    _labels(dataset)
  message = str(e.value)
  assert parse.LABEL_ERROR_MARKER in message
  assert '--num_classes=3' in message
  # tf.debugging.Assert prints the label as '[7]' right after the marker's sentence.
  assert re.search(re.escape(parse.LABEL_ERROR_MARKER) + r'[^\]]*\] \[%d\]'
                   % bad_label, message), message


def test_input_pipelines_read_disjoint_shards(tmp_path):
  write_image_records(str(tmp_path / 'eval-0'), [0, 1, 2, 3, 4])
  write_image_records(str(tmp_path / 'eval-1'), [5, 6, 7], seed=1)
  fn = _eval_fn(str(tmp_path / 'eval-*'), batch_size=3, num_classes=8)
  shards = []
  for i in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i)
    shards.append(sum(_labels(fn(input_context=context)), []))
  assert shards[0] and shards[1]
  assert not set(shards[0]) & set(shards[1])
  assert sorted(shards[0] + shards[1]) == list(range(8))


def _decoded_pixels(path):
  """What the records hold, decoded outside the pipeline."""
  return [tf.io.decode_image(tf.train.Example.FromString(r.numpy()).features
                             .feature['image/encoded'].bytes_list.value[0],
                             channels=3).numpy()
          for r in tf.data.TFRecordDataset(path)]


@pytest.mark.parametrize('fmt', ['png', 'jpeg'])
def test_evaluation_gives_the_decoded_pixels(tmp_path, fmt):
  # cifarnet evaluation at the records' own size resizes 32 -> 32, which keeps every
  # pixel, so the batch must be the decoded image itself.
  path = write_image_records(str(tmp_path / 'eval-0'), [0, 1, 2], fmt=fmt)
  (features, labels), = list(_eval_fn(path, batch_size=3, num_classes=3)())
  assert labels.numpy().tolist() == [0, 1, 2]
  np.testing.assert_allclose(features['image'].numpy(),
                             np.stack(_decoded_pixels(path)).astype(np.float32),
                             atol=1e-3)


@pytest.mark.parametrize('family', ['cifarnet', 'vgg', 'inception'])
def test_training_parses_jpeg_records(tmp_path, family):
  # vgg and inception decode only the crop window of a JPEG; cifarnet decodes it all.
  path = write_image_records(str(tmp_path / 'train-0'), [0, 1, 2, 0, 1], size=48,
                             fmt='jpeg')
  fn = _image_input_fn(path, is_training=True, batch_size=4, num_classes=3,
                       family=family, image_size=32, seed=3)
  for features, labels in fn().take(2):
    pixels = features['image'].numpy()
    assert pixels.shape == (4, 32, 32, 3)
    assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 255
    assert pixels.std() > 0
    assert set(labels.numpy()) <= {0, 1, 2}


def _mixed_records(tmp_path):
  """PNG and JPEG records of several sizes, one without the optional keys."""
  png = write_image_records(str(tmp_path / 'eval-0'), [0, 1, 2, 1], size=40)
  jpeg = write_image_records(str(tmp_path / 'eval-1'), [2, 0], size=24, seed=1,
                             fmt='jpeg')
  bare = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(png))).numpy())
  for key in ('image/format', 'image/height', 'image/width'):
    del bare.features.feature[key]
  path = str(tmp_path / 'eval-2')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(bare.SerializeToString())
  return [png, jpeg, path]


def test_decode_batch_equals_decode_per_record(tmp_path):
  files = _mixed_records(tmp_path)
  records = [r.numpy() for r in tf.data.TFRecordDataset(files)]
  decoder = image_format.ImageRecordDecoder()
  batch = decoder.decode_batch(tf.constant(records))
  for i, record in enumerate(records):
    one = decoder.decode(tf.constant(record))
    assert sorted(one) == sorted(batch)
    for item, value in one.items():
      assert batch[item][i].numpy() == value.numpy(), (i, item)
  # The record without the optional keys gets slim's defaults in both.
  assert batch['height'][-1].numpy() == 0 and batch['format'][-1].numpy() == b'jpeg'


@pytest.mark.parametrize('family', ['cifarnet', 'vgg', 'inception'])
def test_batch_parse_gives_what_record_parse_gives(tmp_path, family):
  """Evaluation is deterministic, so both paths must give the same pixels, in order,
  with the short last batch; the batch function gives the same eagerly."""
  files = _mixed_records(tmp_path)
  fns = image_parse.image_parse_fns(is_training=False, num_classes=3, family=family,
                                 image_size=32)
  assert fns['batch_parse_fn'] is not None
  per_record = input_fn.make_input_fn(files, is_training=False, batch_size=3,
                                      parse_fn=fns['parse_fn'])()
  batched = input_fn.make_input_fn(files, is_training=False, batch_size=3, **fns)()
  assert batched.element_spec == per_record.element_spec
  pairs = list(zip(per_record, batched))
  assert [len(b[1]) for _, b in pairs] == [3, 3, 1]
  for (f1, l1), (f2, l2) in pairs:
    np.testing.assert_array_equal(l1.numpy(), l2.numpy())
    np.testing.assert_allclose(f1['image'].numpy(), f2['image'].numpy(), atol=1e-4)
  records = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(files)][:3])
  eager_features, eager_labels = fns['batch_parse_fn'](records)
  np.testing.assert_allclose(eager_features['image'].numpy(),
                             pairs[0][0][0]['image'].numpy(), atol=1e-4)
  assert eager_labels.numpy().tolist() == pairs[0][0][1].numpy().tolist()


def test_batch_parse_is_for_small_images_only():
  kwargs = dict(is_training=True, num_classes=3, family='vgg')
  assert image_parse.image_parse_fns(image_size=32, **kwargs)['batch_parse_fn']
  assert image_parse.image_parse_fns(image_size=224, **kwargs)['batch_parse_fn'] is None


def test_batch_parse_training_draws_a_crop_and_flip_per_image(tmp_path):
  # 16 copies of one asymmetric image: per-image randomness gives different crops in
  # one batch; one draw per batch would give 16 equal images.
  rng = np.random.RandomState(0)
  pixels = rng.randint(0, 256, (32, 32, 3)).astype(np.uint8)
  encoded = tf.io.encode_png(pixels).numpy()
  path = str(tmp_path / 'train-0')
  with tf.io.TFRecordWriter(path) as writer:
    for _ in range(16):
      writer.write(image_example(encoded, 1, 32, 32).SerializeToString())
  fn = input_fn.make_input_fn([path], is_training=True, batch_size=16,
                              **image_parse.image_parse_fns(
                                  is_training=True, num_classes=3, family='cifarnet',
                                  image_size=32, deterministic=True))
  images = next(iter(fn()))[0]['image'].numpy()
  distinct = {images[i].tobytes() for i in range(16)}
  assert len(distinct) > 8, len(distinct)


def test_batch_parse_label_check_names_the_first_bad_label(tmp_path):
  write_image_records(str(tmp_path / 'train-0'), [0, 9, 1, 5])
  fns = image_parse.image_parse_fns(is_training=True, num_classes=3, family='cifarnet',
                                 image_size=32)
  dataset = input_fn.make_input_fn([str(tmp_path / 'train-0')], is_training=False,
                                   batch_size=4, **fns)()
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    _labels(dataset)
  # The same form as the per-record check (inside tf.data), so train_lib's one-line
  # error reads it; of two bad labels in the batch, the first is named.
  assert re.search(re.escape(parse.LABEL_ERROR_MARKER) + r'[^\]]*\] \[9\]',
                   str(e.value)), str(e.value)
