"""Tests of the image-folder -> TFRecords converter and its command line.

  .venv/bin/python -m pytest -q tests/test_records.py

Every image is made here, in tmp_path: JPEG and PNG in RGB, grayscale, RGBA and
palette, BMP, GIF, CMYK JPEG, 16-bit PNG, a PNG named .jpg, garbage named .jpg and a
truncated PNG, in two sizes.
"""

import io
import os

import estimator_pipeline  # pylint: disable=unused-import  (compat fixes before TF)
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tf_slim.data import tfexample_decoder

from conftest import run_cli
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import images

KEYS = {'image/encoded', 'image/format', 'image/class/label', 'image/class/text',
        'image/height', 'image/width', 'image/filename'}
SIZES = ((20, 30), (41, 17))  # (width, height)

# (class, file name, kind). Kinds ending in _kept must be stored byte for byte,
# _reencoded ones as PNG; bad ones are skipped.
FILES = (
    ('daisy', 'a.jpg', 'jpeg_rgb_kept'),
    ('daisy', 'b.png', 'png_rgb_kept'),
    ('daisy', 'c.png', 'png_gray_kept'),
    ('daisy', 'd.png', 'png_rgba_kept'),
    ('daisy', 'e.jpg', 'jpeg_gray_kept'),
    ('daisy', 'f.bmp', 'bmp_reencoded'),
    ('daisy', 'bad.jpg', 'garbage'),
    ('roses', 'a.jpg', 'jpeg_rgb_kept'),
    ('roses', 'b.gif', 'gif_reencoded'),
    ('roses', 'c.jpg', 'png_named_jpg_kept'),
    ('roses', 'd.jpg', 'jpeg_cmyk_reencoded'),
    ('roses', 'e.png', 'png_rgb_kept'),
    ('roses', 'trunc.png', 'truncated_png'),
    ('tulips', 'a.png', 'png16_reencoded'),
    ('tulips', 'b.png', 'png_palette_kept'),
    ('tulips', 'c.jpg', 'jpeg_rgb_kept'),
    ('tulips', 'd.png', 'png_rgb_kept'),
    ('tulips', 'e.jpg', 'jpeg_rgb_kept'),
)
BAD = ('daisy/bad.jpg', 'roses/trunc.png')
NUM_GOOD = len(FILES) - len(BAD)  # 16
FRACTION = 0.25  # 4 validation images: fewer than NUM_SHARDS, so fewer shards.
NUM_SHARDS = 5


def _encode(image, image_format, **kwargs):
  buffer = io.BytesIO()
  image.save(buffer, image_format, **kwargs)
  return buffer.getvalue()


def _make_file(kind, size, rng):
  """Bytes of one test file and, for lossless kinds, the RGB pixels a reader must see."""
  w, h = size
  rgb = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
  gray = rng.randint(0, 256, (h, w), dtype=np.uint8)
  if kind == 'jpeg_rgb_kept':
    return _encode(Image.fromarray(rgb), 'JPEG'), None
  if kind == 'jpeg_gray_kept':
    return _encode(Image.fromarray(gray), 'JPEG'), None
  if kind in ('png_rgb_kept', 'png_named_jpg_kept'):
    return _encode(Image.fromarray(rgb), 'PNG'), rgb
  if kind == 'png_gray_kept':
    return _encode(Image.fromarray(gray), 'PNG'), np.stack([gray] * 3, axis=-1)
  if kind == 'png_rgba_kept':
    alpha = rng.randint(0, 256, (h, w, 1), dtype=np.uint8)
    return _encode(Image.fromarray(np.concatenate([rgb, alpha], -1), 'RGBA'), 'PNG'), rgb
  if kind == 'png_palette_kept':
    palette = Image.fromarray(rgb).quantize(16)
    return (_encode(palette, 'PNG', transparency=0),
            np.asarray(palette.convert('RGB')))
  if kind == 'bmp_reencoded':
    return _encode(Image.fromarray(rgb), 'BMP'), rgb
  if kind == 'gif_reencoded':
    palette = Image.fromarray(rgb).quantize(16)
    return _encode(palette, 'GIF'), np.asarray(palette.convert('RGB'))
  if kind == 'jpeg_cmyk_reencoded':
    return _encode(Image.fromarray(rgb).convert('CMYK'), 'JPEG'), None
  if kind == 'png16_reencoded':
    # 8-bit values times 257 fill the 16-bit range; scaling back must give them again.
    wide = Image.fromarray(gray.astype(np.uint16) * 257)
    return _encode(wide, 'PNG'), np.stack([gray] * 3, axis=-1)
  if kind == 'garbage':
    return b'this is not an image at all\n' * 3, None
  if kind == 'truncated_png':
    data = _encode(Image.fromarray(rgb), 'PNG')
    return data[:len(data) // 2], None
  raise ValueError(kind)


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
  """The photo folder; returns (path, {relative path: (kind, expected pixels)})."""
  root = tmp_path_factory.mktemp('photos')
  rng = np.random.RandomState(7)
  expected = {}
  for i, (class_name, name, kind) in enumerate(FILES):
    (root / class_name).mkdir(exist_ok=True)
    data, pixels = _make_file(kind, SIZES[i % 2], rng)
    (root / class_name / name).write_bytes(data)
    expected['%s/%s' % (class_name, name)] = (kind, pixels)
  # Litter that must be ignored without being reported as skipped.
  (root / 'daisy' / '.DS_Store').write_bytes(b'\0\0\0\1Bud1')
  (root / 'README.txt').write_text('files beside the class folders are not read')
  (root / 'empty').mkdir()
  return str(root), expected


@pytest.fixture(scope='module')
def converted(image_dir, tmp_path_factory):
  output_dir = str(tmp_path_factory.mktemp('records'))
  result = images.convert_image_folder(image_dir[0], output_dir,
                                       validation_fraction=FRACTION,
                                       num_shards=NUM_SHARDS, seed=0, num_workers=3,
                                       progress=False)
  return result


def _records(paths):
  """Parsed tf.train.Examples of the given shards, in order."""
  examples = []
  for record in tf.data.TFRecordDataset(list(paths)):
    examples.append(tf.train.Example.FromString(record.numpy()))
  return examples


def _value(example, key):
  feature = example.features.feature[key]
  if feature.HasField('int64_list'):
    (value,) = feature.int64_list.value
  else:
    (value,) = feature.bytes_list.value
  return value


def _folder_bytes(folder):
  return {name: open(os.path.join(folder, name), 'rb').read()
          for name in sorted(os.listdir(folder))}


def _run_cli(*args):
  return run_cli(['-m', 'estimator_pipeline.records'] + list(args), timeout=120)


def test_writes_slim_layout_and_labels(converted):
  out = converted.output_dir
  assert sorted(os.listdir(out)) == sorted(
      ['labels.txt'] + ['train-%05d-of-00005.tfrecord' % i for i in range(5)] +
      ['validation-%05d-of-00004.tfrecord' % i for i in range(4)])
  assert open(os.path.join(out, 'labels.txt')).read() == '0:daisy\n1:roses\n2:tulips\n'
  assert converted.label_names == ('daisy', 'roses', 'tulips')
  assert converted.empty_class_dirs == ('empty',)
  assert [os.path.basename(p) for p in converted.train_files] == [
      'train-%05d-of-00005.tfrecord' % i for i in range(5)]
  for path in converted.train_files + converted.validation_files:
    assert os.path.getsize(path) > 0


def test_counts_add_up_and_validation_fraction_is_honoured(converted):
  assert converted.num_train + converted.num_validation == NUM_GOOD
  assert converted.num_validation == round(FRACTION * NUM_GOOD) == 4
  # Stratified: 6, 5 and 5 good images per class, so every class is in validation.
  assert converted.validation_per_class == (2, 1, 1)
  assert converted.train_per_class == (4, 4, 4)
  assert len(_records(converted.train_files)) == converted.num_train
  assert len(_records(converted.validation_files)) == converted.num_validation
  sizes = [len(_records([p])) for p in converted.train_files]
  assert sizes == [3, 3, 2, 2, 2]


def test_bad_files_are_skipped_and_named(converted):
  assert converted.skipped == BAD
  assert set(converted.skip_reasons) == set(BAD)
  summary = converted.summary()
  assert 'skipped 2 files that did not decode: daisy/bad.jpg, roses/trunc.png' in summary
  assert '.DS_Store' not in summary and 'README' not in summary
  assert converted.num_reencoded == 4


def test_every_record_has_the_slim_keys_and_decodes(converted, image_dir):
  root, expected = image_dir
  seen = set()
  for example in _records(converted.train_files + converted.validation_files):
    assert set(example.features.feature) == KEYS
    relpath = _value(example, 'image/filename').decode()
    kind, pixels = expected[relpath]
    class_name = relpath.split('/')[0]
    label = _value(example, 'image/class/label')
    assert _value(example, 'image/class/text').decode() == class_name
    assert converted.label_names[label] == class_name
    encoded = _value(example, 'image/encoded')
    image_format = _value(example, 'image/format')
    assert image_format == (b'jpeg' if encoded.startswith(b'\xff\xd8\xff') else b'png')
    source = open(os.path.join(root, relpath), 'rb').read()
    if kind.endswith('_kept'):
      assert encoded == source, relpath
    else:
      assert image_format == b'png' and encoded != source, relpath
    decoded = tf.io.decode_image(encoded, channels=3).numpy()
    assert decoded.shape == (_value(example, 'image/height'),
                             _value(example, 'image/width'), 3)
    width, height = Image.open(io.BytesIO(source)).size
    assert decoded.shape[:2] == (height, width)
    if pixels is not None:
      np.testing.assert_array_equal(decoded, pixels, err_msg=relpath)
    seen.add(relpath)
  assert seen == set(expected) - set(BAD)


def test_tf_slim_decoder_reads_the_records(converted):
  keys_to_features = {
      'image/encoded': tf.io.FixedLenFeature((), tf.string, default_value=''),
      'image/format': tf.io.FixedLenFeature((), tf.string, default_value='jpeg'),
      'image/class/label': tf.io.FixedLenFeature((), tf.int64, default_value=-1),
  }
  decoder = tfexample_decoder.TFExampleDecoder(keys_to_features, {
      'image': tfexample_decoder.Image(image_key='image/encoded',
                                       format_key='image/format', channels=3),
      'label': tfexample_decoder.Tensor('image/class/label'),
  })

  def decode(record):
    try:
      return tuple(decoder.decode(record, ['image', 'label']))
    except AttributeError as e:
      pytest.fail('tf_slim 1.1.0 calls control_flow_ops.case/cond, which TensorFlow 2.15 '
                  'moved to control_flow_case.case and cond.cond; '
                  'estimator_pipeline/compat.py has to alias them (%s)' % e)

  # Inside Dataset.map, i.e. in graph mode, the way an input_fn runs it.
  dataset = tf.data.TFRecordDataset(list(converted.validation_files)).map(decode)
  examples = _records(converted.validation_files)
  for (image, label), example in zip(dataset, examples):
    assert image.shape == (_value(example, 'image/height'),
                           _value(example, 'image/width'), 3)
    assert int(label) == _value(example, 'image/class/label')
  assert len(examples) == converted.num_validation


def test_same_seed_gives_identical_bytes_whatever_the_workers(converted, image_dir,
                                                               tmp_path):
  again = images.convert_image_folder(image_dir[0], str(tmp_path / 'again'),
                                      validation_fraction=FRACTION,
                                      num_shards=NUM_SHARDS, seed=0, num_workers=1,
                                      progress=False)
  assert _folder_bytes(again.output_dir) == _folder_bytes(converted.output_dir)

  other = images.convert_image_folder(image_dir[0], str(tmp_path / 'other'),
                                      validation_fraction=FRACTION,
                                      num_shards=NUM_SHARDS, seed=1, progress=False)
  names = lambda paths: {_value(e, 'image/filename') for e in _records(paths)}
  assert names(other.validation_files) != names(converted.validation_files)
  assert other.validation_per_class == converted.validation_per_class


def test_refuses_existing_records_unless_overwrite(converted, image_dir, tmp_path):
  out = str(tmp_path / 'out')
  images.convert_image_folder(image_dir[0], out, num_shards=4, progress=False)
  before = _folder_bytes(out)
  with pytest.raises(UserError, match='--overwrite'):
    images.convert_image_folder(image_dir[0], out, num_shards=2, progress=False)
  assert _folder_bytes(out) == before

  result = images.convert_image_folder(image_dir[0], out, num_shards=2, overwrite=True,
                                       progress=False)
  # The earlier run's four train shards must go, or train-*.tfrecord would read both.
  assert sorted(os.listdir(out)) == sorted(
      ['labels.txt'] + [os.path.basename(p)
                        for p in result.train_files + result.validation_files])
  assert [os.path.basename(p) for p in result.validation_files] == [
      'validation-00000-of-00002.tfrecord', 'validation-00001-of-00002.tfrecord']
  assert not [n for n in os.listdir(out) if n.endswith('.tmp')]


@pytest.mark.parametrize('change, message', [
    (dict(image_dir='/no/such/photos/'), '--image_dir=/no/such/photos/ does not exist'),
    (dict(image_dir=''), '--image_dir is required'),
    (dict(output_dir=''), '--output_dir is required'),
    (dict(validation_fraction=1.5), r'--validation_fraction=1.5 must be in \[0, 1\)'),
    (dict(validation_fraction=-0.1), r'--validation_fraction=-0.1 must be in \[0, 1\)'),
    (dict(num_shards=0), '--num_shards=0 must be positive'),
    (dict(seed=-1), '--seed=-1 must be'),
    (dict(num_workers=-2), '--num_workers=-2 must be positive'),
])
def test_bad_arguments_are_one_line_user_errors(image_dir, tmp_path, change, message):
  args = dict(image_dir=image_dir[0], output_dir=str(tmp_path / 'out'))
  args.update(change)
  with pytest.raises(UserError, match=message) as raised:
    images.convert_image_folder(progress=False, **args)
  assert '\n' not in str(raised.value)
  assert not os.path.exists(tmp_path / 'out')


def test_unusable_folders_are_user_errors(image_dir, tmp_path):
  flat = tmp_path / 'flat'
  flat.mkdir()
  (flat / 'a.jpg').write_bytes(b'images beside each other, no class folders')
  with pytest.raises(UserError, match='has no class sub-folders with images'):
    images.convert_image_folder(str(flat), str(tmp_path / 'out'), progress=False)

  # One level too high: wrapper/photos/daisy/a.jpg.
  wrapper = tmp_path / 'wrapper'
  (wrapper / 'photos' / 'daisy').mkdir(parents=True)
  (wrapper / 'photos' / 'daisy' / 'a.jpg').write_bytes(
      open(os.path.join(image_dir[0], 'daisy', 'a.jpg'), 'rb').read())
  with pytest.raises(UserError, match='did you mean --image_dir=.*wrapper/photos'):
    images.convert_image_folder(str(wrapper), str(tmp_path / 'out'), progress=False)

  junk = tmp_path / 'junk'
  (junk / 'cats').mkdir(parents=True)
  (junk / 'cats' / 'x.jpg').write_bytes(b'not a jpeg')
  with pytest.raises(UserError, match='has no image that decodes'):
    images.convert_image_folder(str(junk), str(tmp_path / 'out'), progress=False)

  with pytest.raises(UserError, match='is inside --image_dir'):
    images.convert_image_folder(image_dir[0], os.path.join(image_dir[0], 'records'),
                                progress=False)


def test_split_is_stratified_and_keeps_a_train_image_per_class():
  labels = np.repeat([0, 1, 2], [10, 3, 3])
  for seed in range(5):
    train, validation = images.split_indices(labels, 3, 0.1, seed)
    assert sorted(train + validation) == list(range(16))
    assert len(validation) == 2  # round(1.6)
    per_class = np.bincount(labels[validation], minlength=3)
    assert per_class[0] == 1 and per_class[1:].sum() == 1
  # A one-image class never goes to validation alone.
  train, validation = images.split_indices(np.array([0, 0, 1]), 2, 0.5, 0)
  assert 2 in train and len(validation) == 1
  assert images.shard_sizes(10, 4) == [3, 3, 2, 2]
  assert images.shard_sizes(2, 4) == [1, 1]
  assert images.shard_sizes(0, 4) == []


def test_cli_writes_what_the_library_writes(converted, image_dir, tmp_path):
  out = str(tmp_path / 'cli')
  run = _run_cli('images', '--image_dir=' + image_dir[0], '--output_dir=' + out,
                 '--validation_fraction=%g' % FRACTION, '--num_shards=%d' % NUM_SHARDS,
                 '--seed=0', '--num_workers=2')
  assert run.returncode == 0, run.stderr
  assert 'wrote 12 train (5 shards) and 4 validation (4 shards) images of 3 classes' in (
      run.stdout)
  assert 'skipped 2 files that did not decode: daisy/bad.jpg, roses/trunc.png' in (
      run.stdout)
  assert _folder_bytes(out) == _folder_bytes(converted.output_dir)

  refused = _run_cli('images', '--image_dir=' + image_dir[0], '--output_dir=' + out)
  assert refused.returncode == 2
  assert 'Traceback' not in refused.stderr
  assert refused.stderr.strip().splitlines()[-1].startswith(
      'error: --output_dir=%s already holds 9 .tfrecord files' % out)
  assert _folder_bytes(out) == _folder_bytes(converted.output_dir)


def test_cli_bad_input_is_one_error_line_and_exit_2(tmp_path):
  run = _run_cli('images', '--output_dir=' + str(tmp_path / 'out'))
  assert run.returncode == 2
  assert 'Traceback' not in run.stderr
  assert run.stderr.strip().splitlines()[-1].startswith('error: --image_dir is required')
  unknown = _run_cli('imgs')
  assert unknown.returncode == 2
  assert unknown.stderr.strip().splitlines()[-1].startswith(
      "error: unknown subcommand 'imgs'; known: images")
  # Last: nothing but that one line may reach the user. Import-time chatter of the
  # TensorFlow stack (see estimator_pipeline/compat.py) would break it.
  assert run.stderr.strip().splitlines() == [run.stderr.strip().splitlines()[-1]], (
      'stderr has more than the error line:\n' + run.stderr)
