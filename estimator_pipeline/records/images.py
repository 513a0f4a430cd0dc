r"""A folder of images, one sub-folder per class, -> sharded TFRecords in tf-slim's layout.

  python -m estimator_pipeline.records images --image_dir=photos/ --output_dir=data/ \
      --validation_fraction=0.1 --num_shards=4

photos/daisy/1.jpg, photos/roses/2.png, ... become

  data/train-00000-of-00004.tfrecord ... data/train-00003-of-00004.tfrecord
  data/validation-00000-of-00004.tfrecord ...
  data/labels.txt                      0:daisy, 1:roses, ... (class folders, sorted)

Each record is a tf.train.Example with the slim keys `image/encoded`, `image/format`
(b'jpeg' or b'png', from the bytes, not the file name), `image/class/label`,
`image/height`, `image/width`, plus `image/filename` (relative to image_dir) and
`image/class/text`. JPEG and PNG files that TensorFlow decodes are stored as they are;
anything else Pillow can read (BMP, GIF, TIFF, CMYK JPEG, 16-bit PNG, ...) is stored as
an 8-bit RGB PNG; files that do not decode are skipped and named in the summary.

The same folder and --seed give byte-identical files, whatever --num_workers is. From
Python:

  from estimator_pipeline.records import images
  print(images.convert_image_folder('photos', 'data').summary())
"""

import collections
import dataclasses
import glob
import io
import math
import numbers
import os
import re
from concurrent import futures
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image
import tensorflow as tf

from estimator_pipeline.errors import UserError
from estimator_pipeline import console

# Defaults of convert_image_folder; flags/records.py reads them so they live in one place.
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_NUM_SHARDS = 4
DEFAULT_SEED = 0

TRAIN = 'train'
VALIDATION = 'validation'
LABELS_FILE = 'labels.txt'
# Shard names have five digits (slim's `%05d`), so more shards would break the layout.
MAX_SHARDS = 99999
# The summary names this many skipped files; the result object holds all of them.
MAX_NAMED_SKIPS = 10

_TMP_SUFFIX = '.tmp'
_SHARD_RE = re.compile(r'^(%s|%s)-\d{5}-of-\d{5}\.tfrecord$' % (TRAIN, VALIDATION))
_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'
_JPEG = 'jpeg'
_PNG = 'png'
# Pillow's convert('RGB') clips these to 255 instead of scaling them down.
_SIXTEEN_BIT_MODES = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')


def shard_name(split, index, num_shards):
  """slim's shard name: shard_name('train', 0, 4) == 'train-00000-of-00004.tfrecord'."""
  return '%s-%05d-of-%05d.tfrecord' % (split, index, num_shards)


@dataclasses.dataclass(frozen=True)
class ConversionResult:
  """What convert_image_folder wrote and what it skipped.

  Attributes:
    output_dir: The folder that holds the shards and labels.txt.
    label_names: Class names; the label id of a class is its index here.
    labels_file: Path of labels.txt (`0:daisy` lines).
    train_files: Paths of the train shards, in order.
    validation_files: Paths of the validation shards (empty if there are no
      validation images).
    num_train: Records written to the train shards.
    num_validation: Records written to the validation shards.
    train_per_class: num_train split by label id.
    validation_per_class: num_validation split by label id.
    num_reencoded: Records whose image was re-encoded as PNG because it was not a
      JPEG or PNG that TensorFlow decodes as it is.
    skipped: Files (relative to image_dir) that did not decode, sorted.
    skip_reasons: Why each skipped file did not decode.
    empty_class_dirs: Sub-folders of image_dir without files; they are not classes.
    validation_fraction: The fraction that was asked for.
  """

  output_dir: str
  label_names: Tuple[str, ...]
  labels_file: str
  train_files: Tuple[str, ...]
  validation_files: Tuple[str, ...]
  num_train: int
  num_validation: int
  train_per_class: Tuple[int, ...]
  validation_per_class: Tuple[int, ...]
  num_reencoded: int
  skipped: Tuple[str, ...]
  skip_reasons: Dict[str, str]
  empty_class_dirs: Tuple[str, ...]
  validation_fraction: float

  def summary_lines(self) -> List[str]:
    """The closing summary of the command, one fact per line."""
    lines = ['wrote %d train (%d %s) and %d validation (%d %s) images of %d classes '
             'to %s (labels in %s)' % (
                 self.num_train, len(self.train_files), _plural(self.train_files, 'shard'),
                 self.num_validation, len(self.validation_files),
                 _plural(self.validation_files, 'shard'), len(self.label_names),
                 self.output_dir, LABELS_FILE)]
    if self.validation_fraction > 0 and not self.num_validation:
      lines.append('no validation images: --validation_fraction=%g of %d images rounds '
                   'to 0; raise it or add images' % (self.validation_fraction,
                                                    self.num_train))
    missing = [name for name, n in zip(self.label_names, self.train_per_class) if not n]
    if missing:
      lines.append('no train images for %d %s (none of their files decode): %s' % (
          len(missing), _plural(missing, 'class'), _name_some(missing)))
    if self.num_reencoded:
      lines.append('re-encoded %d %s as PNG (not a JPEG or PNG that TensorFlow decodes '
                   'as it is)' % (self.num_reencoded, _plural(self.num_reencoded, 'image')))
    if self.empty_class_dirs:
      lines.append('ignored %d empty %s: %s' % (
          len(self.empty_class_dirs), _plural(self.empty_class_dirs, 'sub-folder'),
          _name_some(self.empty_class_dirs)))
    if self.skipped:
      lines.append('skipped %d %s that did not decode: %s' % (
          len(self.skipped), _plural(self.skipped, 'file'), _name_some(self.skipped)))
    else:
      lines.append('skipped 0 files')
    return lines

  def summary(self) -> str:
    return '\n'.join(self.summary_lines())


@dataclasses.dataclass(frozen=True)
class _Checked:
  """The first pass's verdict on one file; no pixels, so a million of them fit in memory."""

  ok: bool
  reason: str = ''
  image_format: str = ''
  reencode: bool = False
  height: int = 0
  width: int = 0
  # (size, mtime): the second pass re-reads the file and must see the same one.
  stamp: Tuple[int, int] = (0, 0)


def convert_image_folder(image_dir,
                         output_dir,
                         validation_fraction=DEFAULT_VALIDATION_FRACTION,
                         num_shards=DEFAULT_NUM_SHARDS,
                         seed=DEFAULT_SEED,
                         num_workers=None,
                         overwrite=False,
                         progress=True) -> ConversionResult:
  """Writes image_dir's images as sharded train/validation TFRecords into output_dir.

  Files are sorted, checked (a file that does not decode is skipped), shuffled with
  numpy's RandomState(seed) and split per class: validation gets round(fraction * n)
  of the n good images, spread over the classes in proportion to their size, except
  that every class keeps at least one train image. Each split is cut into
  min(num_shards, its size) shards of consecutive records. Shards and labels.txt are
  written under temporary names and renamed only when everything is written, so a
  failed run leaves earlier output as it was.

  Args:
    image_dir: Folder with one sub-folder of images per class (folders inside those
      are not read); class names sorted alphabetically become labels 0..K-1.
    output_dir: Folder for the shards and labels.txt; created if missing.
    validation_fraction: Fraction of the images for validation, in [0, 1).
    num_shards: Shards per split (fewer when a split has fewer images).
    seed: Seed of the shuffle and split; the same seed gives the same bytes.
    num_workers: Threads that read and check images; None or 0 for one per CPU.
    overwrite: Replace the *.tfrecord files output_dir holds instead of refusing.
    progress: Show progress on stderr (a bar on a terminal, a line now and then
      elsewhere).

  Returns:
    A ConversionResult.

  Raises:
    UserError: bad arguments, an unusable folder, or output that exists already.
  """
  num_workers = _check_arguments(image_dir, output_dir, validation_fraction, num_shards,
                                 seed, num_workers)
  label_names, files, empty_dirs = _list_image_folder(image_dir)
  _prepare_output_dir(output_dir, image_dir, overwrite)

  paths = [os.path.join(image_dir, *relpath.split('/')) for relpath, _ in files]
  checked = list(_parallel_map(_check_image, paths, num_workers,
                               'checking images', progress))
  skipped = sorted(files[i][0] for i, c in enumerate(checked) if not c.ok)
  skip_reasons = {files[i][0]: c.reason for i, c in enumerate(checked) if not c.ok}
  good = [i for i, c in enumerate(checked) if c.ok]
  if not good:
    raise UserError('--image_dir=%s has no image that decodes: all %d files were '
                    'skipped (e.g. %s: %s)' % (image_dir, len(files), skipped[0],
                                               skip_reasons[skipped[0]]))

  labels = np.array([files[i][1] for i in good], dtype=np.int64)
  train, validation = split_indices(labels, len(label_names), validation_fraction, seed)
  plan = []  # (split, shard index, shard count, index into good), in writing order.
  shard_counts = {}
  for split, members in ((TRAIN, train), (VALIDATION, validation)):
    sizes = shard_sizes(len(members), num_shards)
    shard_counts[split] = len(sizes)
    start = 0
    for shard, size in enumerate(sizes):
      plan.extend((split, shard, len(sizes), j) for j in members[start:start + size])
      start += size

  def encode(step):
    index = good[step[3]]
    relpath, label = files[index]
    return _example(paths[index], checked[index], relpath, label, label_names[label])

  written = _write_shards(output_dir, plan, encode, num_workers, progress)
  labels_file = os.path.join(output_dir, LABELS_FILE)
  _commit(output_dir, written, labels_file, label_names)

  def per_class(members):
    return tuple(int(x) for x in np.bincount(labels[members], minlength=len(label_names)))

  return ConversionResult(
      output_dir=output_dir,
      label_names=tuple(label_names),
      labels_file=labels_file,
      train_files=tuple(os.path.join(output_dir, shard_name(TRAIN, i, shard_counts[TRAIN]))
                        for i in range(shard_counts[TRAIN])),
      validation_files=tuple(
          os.path.join(output_dir, shard_name(VALIDATION, i, shard_counts[VALIDATION]))
          for i in range(shard_counts[VALIDATION])),
      num_train=len(train),
      num_validation=len(validation),
      train_per_class=per_class(train),
      validation_per_class=per_class(validation),
      num_reencoded=sum(checked[i].reencode for i in good),
      skipped=tuple(skipped),
      skip_reasons=skip_reasons,
      empty_class_dirs=tuple(empty_dirs),
      validation_fraction=validation_fraction)


def split_indices(labels, num_classes, validation_fraction, seed):
  """Shuffles 0..n-1 with RandomState(seed) and splits them per class.

  Validation gets round(fraction * n) indices (halves round up): each class its floor
  of fraction * class size, and the rest go one each to the classes with the largest
  remainders (ties broken by the seed, not by class order), skipping a class that
  would be left without a train image.

  Args:
    labels: int array, the label of each item.
    num_classes: Number of classes (labels are in [0, num_classes)).
    validation_fraction: In [0, 1).
    seed: Seed of numpy's RandomState.

  Returns:
    (train, validation): lists of indices into labels, each in shuffled order.
  """
  rng = np.random.RandomState(seed)
  labels = np.asarray(labels)
  order = rng.permutation(len(labels))
  tie_break = rng.permutation(num_classes)
  counts = np.bincount(labels, minlength=num_classes)
  quotas = validation_fraction * counts
  take = np.floor(quotas).astype(np.int64)
  left = _round_half_up(validation_fraction * len(labels)) - int(take.sum())
  by_remainder = sorted(range(num_classes),
                        key=lambda c: (-(quotas[c] - take[c]), tie_break[c]))
  for c in by_remainder:
    if left <= 0:
      break
    if take[c] + 1 < counts[c]:
      take[c] += 1
      left -= 1
  taken = np.zeros(num_classes, dtype=np.int64)
  train, validation = [], []
  for i in order:
    c = labels[i]
    if taken[c] < take[c]:
      taken[c] += 1
      validation.append(int(i))
    else:
      train.append(int(i))
  return train, validation


def shard_sizes(count, num_shards):
  """Sizes of min(num_shards, count) shards holding count records; [] for none."""
  k = min(num_shards, count)
  return [count // k + (1 if i < count % k else 0) for i in range(k)]


def _round_half_up(x):
  # Python's round() rounds halves to even (round(2.5) == 2), which surprises people
  # who asked for a 0.5 share of 5 images.
  return int(math.floor(x + 0.5))


def _plural(n, word):
  n = n if isinstance(n, int) else len(n)
  return word if n == 1 else word + 's'


def _name_some(names):
  shown = ', '.join(names[:MAX_NAMED_SKIPS])
  if len(names) > MAX_NAMED_SKIPS:
    shown += ', ... (%d more)' % (len(names) - MAX_NAMED_SKIPS)
  return shown


def _check_arguments(image_dir, output_dir, validation_fraction, num_shards, seed,
                     num_workers):
  """Raises UserError for bad arguments; returns the number of workers to use."""
  if not image_dir:
    raise UserError('--image_dir is required: the folder with one sub-folder of images '
                    'per class, e.g. --image_dir=photos/')
  if not os.path.exists(image_dir):
    raise UserError('--image_dir=%s does not exist' % image_dir)
  if not os.path.isdir(image_dir):
    raise UserError('--image_dir=%s is a file; pass the folder that holds one '
                    'sub-folder of images per class' % image_dir)
  if not output_dir:
    raise UserError('--output_dir is required: the folder for the TFRecords and '
                    'labels.txt, e.g. --output_dir=data/')
  if isinstance(validation_fraction, bool) or not isinstance(
      validation_fraction, numbers.Real) or not 0 <= validation_fraction < 1:
    raise UserError('--validation_fraction=%s must be in [0, 1)' % (validation_fraction,))
  if not _is_int(num_shards) or num_shards < 1:
    raise UserError('--num_shards=%s must be positive' % (num_shards,))
  if num_shards > MAX_SHARDS:
    raise UserError('--num_shards=%d must be at most %d (shard names have five digits)'
                    % (num_shards, MAX_SHARDS))
  if not _is_int(seed) or not 0 <= seed < 2**32:
    raise UserError('--seed=%s must be an integer in [0, 2**32)' % (seed,))
  if num_workers is None or num_workers == 0:
    return os.cpu_count() or 1
  if not _is_int(num_workers) or num_workers < 0:
    raise UserError('--num_workers=%s must be positive, or 0 for one per CPU'
                    % (num_workers,))
  return int(num_workers)


def _is_int(value):
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _list_image_folder(image_dir):
  """Returns (class names, [(relative path, label)] sorted, empty sub-folders)."""
  label_names, files, empty_dirs = [], [], []
  for name in _sub_folders(image_dir):
    class_files = _list_files(image_dir, name)
    if not class_files:
      empty_dirs.append(name)
      continue
    label = len(label_names)
    label_names.append(name)
    files.extend((name + '/' + f, label) for f in class_files)
  if not label_names:
    top = image_dir.rstrip('/\\') or image_dir
    # The usual slip is pointing one level too high, at the folder above the classes.
    deeper = [d for d in empty_dirs
              if any(_list_files(os.path.join(image_dir, d), c)
                     for c in _sub_folders(os.path.join(image_dir, d)))]
    hint = (' (did you mean --image_dir=%s?)' % os.path.join(top, deeper[0])
            if deeper else '')
    raise UserError('--image_dir=%s has no class sub-folders with images (expected '
                    '%s/<class>/<image>, e.g. %s/daisy/1.jpg)%s' % (image_dir, top, top,
                                                                    hint))
  for name in label_names:
    check_class_name(name, image_dir)
    if '\n' in name or '\r' in name:
      raise UserError('class folder %r in --image_dir=%s has a line break in its name, '
                      'which labels.txt cannot hold; rename it' % (name, image_dir))
  return label_names, files, empty_dirs


def check_class_name(name, image_dir):
  """Refuses a class name that is not one plain path component.

  Class names only ever become labels.txt lines, never paths, so nothing is written
  outside --output_dir either way; a name like '../x' still means the listing came
  from somewhere it should not, and is refused rather than trusted.
  """
  separators = {'/', '\\', os.sep, os.altsep or '/'}
  if (name in (os.curdir, os.pardir) or '\0' in name or
      any(sep in name for sep in separators)):
    raise UserError('class folder name %r in --image_dir=%s is not a plain folder name; '
                    'rename it' % (name, image_dir))


def _check_inside(path, image_dir, what):
  """Refuses a symlink that leads out of image_dir: the input stays the input folder."""
  if not os.path.islink(path):
    return
  root = os.path.realpath(image_dir)
  target = os.path.realpath(path)
  if os.path.commonpath([root, target]) != root:
    raise UserError('%s %s is a symlink to %s, outside --image_dir=%s: copy the images '
                    'in, or point --image_dir at the folder that holds them'
                    % (what, path, target, image_dir))


def _sub_folders(folder):
  """Sorted non-hidden sub-folders of folder."""
  try:
    entries = sorted(os.listdir(folder))
  except OSError as e:
    raise UserError('cannot read --image_dir=%s: %s' % (folder, e.strerror or e))
  # Hidden entries are tool litter (.DS_Store, ._x.jpg, .ipynb_checkpoints), not data.
  found = [e for e in entries
           if not e.startswith('.') and os.path.isdir(os.path.join(folder, e))]
  for name in found:
    _check_inside(os.path.join(folder, name), folder, 'class folder')
  return found


def _list_files(image_dir, class_name):
  """Sorted non-hidden files directly in image_dir/class_name.

  Like slim's converters, files in deeper folders are not read: walking down would
  turn a --image_dir one level too high into a single class of everything.
  """
  folder = os.path.join(image_dir, class_name)
  try:
    entries = os.listdir(folder)
  except OSError as e:
    raise UserError('cannot read class folder %s: %s' % (folder, e.strerror or e))
  found = sorted(e for e in entries
                 if not e.startswith('.') and os.path.isfile(os.path.join(folder, e)))
  for name in found:
    _check_inside(os.path.join(folder, name), image_dir, 'image')
  return found


def _prepare_output_dir(output_dir, image_dir, overwrite):
  """Creates output_dir; refuses one inside image_dir or holding records already."""
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UserError('--output_dir=%s is a file; pass a folder' % output_dir)
  try:
    inside = os.path.relpath(os.path.realpath(output_dir), os.path.realpath(image_dir))
  except ValueError:  # Different drives on Windows: not inside.
    inside = os.pardir
  outside = inside == os.pardir or inside.startswith(os.pardir + os.sep)
  if inside != os.curdir and not outside and not os.path.isabs(inside):
    raise UserError('--output_dir=%s is inside --image_dir=%s, where it would be read as '
                    'a class next time; pick a folder outside it' % (output_dir, image_dir))
  existing = sorted(glob.glob(os.path.join(glob.escape(output_dir), '*.tfrecord')))
  if existing and not overwrite:
    raise UserError('--output_dir=%s already holds %d .tfrecord %s (e.g. %s); pass '
                    '--overwrite to replace them or pick another --output_dir' % (
                        output_dir, len(existing), _plural(existing, 'file'),
                        os.path.basename(existing[0])))
  try:
    os.makedirs(output_dir, exist_ok=True)
  except OSError as e:
    raise UserError('cannot create --output_dir=%s: %s' % (output_dir, e.strerror or e))
  if not os.access(output_dir, os.W_OK):
    raise UserError('cannot write to --output_dir=%s: permission denied' % output_dir)


def _sniff(head):
  if head.startswith(_JPEG_MAGIC):
    return _JPEG
  if head.startswith(_PNG_MAGIC):
    return _PNG
  return ''


def _stamp(path):
  st = os.stat(path)
  return (st.st_size, st.st_mtime_ns)


def _stored_as_is(data, image_format):
  """Whether a JPEG/PNG can go into a record unchanged (given that TensorFlow decodes it)."""
  if image_format == _PNG:
    # The bit depth is byte 24: signature (8), IHDR length and type (8), width and
    # height (8). 16-bit PNGs are twice the size for nothing, as readers want 8 bits.
    return len(data) > 24 and data[12:16] == b'IHDR' and data[24] <= 8
  try:
    mode = Image.open(io.BytesIO(data)).mode
  except Exception:  # pylint: disable=broad-except
    # Pillow cannot parse the header (e.g. too many pixels for its bomb check), so
    # TensorFlow's decoder decides alone.
    return True
  # TensorFlow decodes CMYK JPEGs too, but Adobe's inverted CMYK comes out with wrong
  # colours; Pillow converts it properly.
  return mode in ('L', 'RGB')


def _check_image(path):
  """Decodes one file fully and says how it will be stored; never raises for bad data."""
  try:
    stamp = _stamp(path)
    with open(path, 'rb') as f:
      head = f.read(len(_PNG_MAGIC))
      image_format = _sniff(head)
      data = head + f.read() if image_format else None
  except OSError as e:
    return _Checked(ok=False, reason='cannot read: %s' % (e.strerror or e))
  tf_error = ''
  if image_format and _stored_as_is(data, image_format):
    try:
      shape = tf.io.decode_image(data, channels=3, expand_animations=False).shape
      return _Checked(ok=True, image_format=image_format, height=int(shape[0]),
                      width=int(shape[1]), stamp=stamp)
    except tf.errors.OpError as e:
      # Pillow may still read it (e.g. a PNG without its end chunk); if it does, a
      # re-encoded copy is what TensorFlow will be able to read when training.
      tf_error = 'TensorFlow: %s; ' % _first_line(e.message)
  try:
    rgb = _pillow_rgb(path)
  except Exception as e:  # pylint: disable=broad-except
    # Pillow reports corrupt files with many exception types (OSError, SyntaxError,
    # ValueError, struct.error, EOFError, DecompressionBombError...): any of them
    # means "skip this file", and one bad file must not end a long run.
    return _Checked(ok=False, reason='%sPillow: %s' % (
        tf_error, _first_line('%s: %s' % (type(e).__name__, e))))
  return _Checked(ok=True, image_format=_PNG, reencode=True, height=rgb.height,
                  width=rgb.width, stamp=stamp)


def _first_line(text, limit=200):
  line = str(text).strip().splitlines()[0] if str(text).strip() else ''
  return line[:limit]


def _pillow_rgb(path):
  """The image at path as an 8-bit RGB Pillow image (first frame of an animation)."""
  with Image.open(path) as img:
    img.load()  # Decodes everything now, so a truncated file fails here.
    if img.mode in _SIXTEEN_BIT_MODES:
      scaled = np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257.0), 0, 255)
      return Image.fromarray(scaled.astype(np.uint8), 'L').convert('RGB')
    if img.mode in ('P', 'PA'):
      # Palette transparency has to go through RGBA or Pillow warns about it.
      return img.convert('RGBA').convert('RGB')
    # Dropping alpha here matches what tf.io.decode_image(channels=3) does to RGBA PNGs.
    return img.convert('RGB')


def _encoded_image(path, checked):
  """The bytes to store for a file that passed _check_image."""
  try:
    changed = _stamp(path) != checked.stamp
    if not changed and not checked.reencode:
      with open(path, 'rb') as f:
        data = f.read()
      changed = len(data) != checked.stamp[0]
    elif not changed:
      buffer = io.BytesIO()
      _pillow_rgb(path).save(buffer, 'PNG')
      data = buffer.getvalue()
  except Exception as e:  # pylint: disable=broad-except
    # It decoded a moment ago, so something else is writing to image_dir.
    raise UserError('%s changed while it was being converted (%s); run again when '
                    'nothing writes to --image_dir' % (path, _first_line(e)))
  if changed:
    raise UserError('%s changed while it was being converted; run again when nothing '
                    'writes to --image_dir' % path)
  return data


def _example(path, checked, relpath, label, class_name):
  """The serialized tf.train.Example for one image."""
  def to_bytes(text):
    # surrogateescape gives back the exact bytes of a file name that is not UTF-8.
    return text.encode('utf-8', 'surrogateescape')

  feature = {
      'image/encoded': _bytes_feature(_encoded_image(path, checked)),
      'image/format': _bytes_feature(checked.image_format.encode('ascii')),
      'image/class/label': _int64_feature(label),
      'image/class/text': _bytes_feature(to_bytes(class_name)),
      'image/height': _int64_feature(checked.height),
      'image/width': _int64_feature(checked.width),
      'image/filename': _bytes_feature(to_bytes(relpath)),
  }
  example = tf.train.Example(features=tf.train.Features(feature=feature))
  # Map fields serialize in hash order unless asked; byte-identical output needs this.
  return example.SerializeToString(deterministic=True)


def _bytes_feature(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _parallel_map(fn, items, num_workers, description, progress):
  """Yields fn(item) for items, in their order, from num_workers threads.

  Threads rather than processes: TensorFlow's and Pillow's decoders release the GIL,
  and a forked process that inherits TensorFlow's thread pools can hang. At most a few
  results per worker wait in memory, so a folder of any size streams through.

  Args:
    fn: Function of one item.
    items: A list.
    num_workers: Number of threads.
    description: What the progress display calls the work.
    progress: Whether to show progress.

  Yields:
    fn(item) for each item, in order.
  """
  window = 4 * num_workers
  pending = collections.deque()
  meter = console.Progress(len(items), description, unit='img', enabled=progress)
  with futures.ThreadPoolExecutor(max_workers=num_workers,
                                  thread_name_prefix='records') as executor:
    try:
      for item in items:
        pending.append(executor.submit(fn, item))
        if len(pending) >= window:
          result = pending.popleft().result()
          meter.update()
          yield result
      while pending:
        result = pending.popleft().result()
        meter.update()
        yield result
    finally:
      for future in pending:
        future.cancel()
      meter.close()


def _write_shards(output_dir, plan, encode, num_workers, progress):
  """Writes plan's records to temporary shard files; returns [(temp, final path)]."""
  written = []
  writer = None
  current = None
  try:
    # The records first, so zip runs the generator to its end (and closes its pool).
    for record, step in zip(_parallel_map(encode, plan, num_workers, 'writing records',
                                          progress), plan):
      if step[:3] != current:
        if writer is not None:
          writer.close()
        current = step[:3]
        final = os.path.join(output_dir, shard_name(*current))
        written.append((final + _TMP_SUFFIX, final))
        # A leftover (or planted) symlink at the temporary name must not redirect
        # the write outside output_dir.
        _remove_quietly(written[-1][0])
        writer = tf.io.TFRecordWriter(written[-1][0])
      writer.write(record)
    if writer is not None:
      writer.close()
      writer = None
  except BaseException:
    if writer is not None:
      writer.close()
    for temp, _ in written:
      _remove_quietly(temp)
    raise
  return written


def _commit(output_dir, written, labels_file, label_names):
  """Renames the finished shards into place, then removes shards of an earlier run."""
  temp_labels = labels_file + _TMP_SUFFIX
  _remove_quietly(temp_labels)
  try:
    with open(temp_labels, 'w', encoding='utf-8', errors='surrogateescape') as f:
      f.writelines('%d:%s\n' % (label, name) for label, name in enumerate(label_names))
  except BaseException:
    for temp, _ in written:
      _remove_quietly(temp)
    _remove_quietly(temp_labels)
    raise
  for temp, final in written:
    os.replace(temp, final)
  os.replace(temp_labels, labels_file)
  # Only now is it safe to drop an earlier run's extra shards (say, 8 of them where this
  # run wrote 4): `train-*.tfrecord` would otherwise read both runs. Temporary files a
  # killed run left behind go too.
  keep = {os.path.basename(final) for _, final in written}
  for name in os.listdir(output_dir):
    base = name[:-len(_TMP_SUFFIX)] if name.endswith(_TMP_SUFFIX) else name
    if name not in keep and _SHARD_RE.match(base):
      _remove_quietly(os.path.join(output_dir, name))


def _remove_quietly(path):
  try:
    os.remove(path)
  except OSError:
    pass
