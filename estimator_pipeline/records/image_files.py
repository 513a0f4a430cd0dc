"""The input side of the image converter: a folder of class folders, checked file by file.

`list_image_folder` finds the classes and their files (refusing symlinks that lead out
of the folder), and `check_image` decodes each file once to decide how it is stored:
as it is (JPEG and PNG that TensorFlow decodes), as an 8-bit RGB PNG (anything else
Pillow reads), or not at all. `example` then builds its record with the layout's own
`make_example` (records/image_format.py):

  python -c "
  import estimator_pipeline
  from estimator_pipeline.records import image_files
  print(image_files.list_image_folder('photos')[0])"
"""

import collections
import dataclasses
import io
import numbers
import os
from concurrent import futures
from typing import Tuple

import numpy as np
from PIL import Image
import tensorflow as tf

from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import image_format as image_format_lib

# Enough bytes to tell a JPEG from a PNG (the PNG signature is 8 bytes).
_SIGNATURE_LENGTH = 8
# Shard names have five digits (slim's `%05d`), so more shards would break the layout.
MAX_SHARDS = 99999
# Pillow's convert('RGB') clips these to 255 instead of scaling them down.
_SIXTEEN_BIT_MODES = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')


@dataclasses.dataclass(frozen=True)
class Checked:
  """The first pass's verdict on one file; no pixels, so a million of them fit in memory."""

  ok: bool
  reason: str = ''
  image_format: str = ''
  reencode: bool = False
  height: int = 0
  width: int = 0
  # (size, mtime): the second pass re-reads the file and must see the same one.
  stamp: Tuple[int, int] = (0, 0)


def list_image_folder(image_dir):
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


def _stamp(path):
  st = os.stat(path)
  return (st.st_size, st.st_mtime_ns)


def _stored_as_is(data, image_format):
  """Whether a JPEG/PNG can go into a record unchanged (given that TensorFlow decodes it)."""
  if image_format == 'png':
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


def check_image(path):
  """Decodes one file fully and says how it will be stored; never raises for bad data."""
  try:
    stamp = _stamp(path)
    with open(path, 'rb') as f:
      head = f.read(_SIGNATURE_LENGTH)
      image_format = image_format_lib.sniff(head)
      if image_format not in ('jpeg', 'png'):
        image_format = ''  # GIF and BMP are re-encoded: they go through Pillow.
      data = head + f.read() if image_format else None
  except OSError as e:
    return Checked(ok=False, reason='cannot read: %s' % (e.strerror or e))
  tf_error = ''
  if image_format and _stored_as_is(data, image_format):
    try:
      shape = tf.io.decode_image(data, channels=3, expand_animations=False).shape
      return Checked(ok=True, image_format=image_format, height=int(shape[0]),
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
    return Checked(ok=False, reason='%sPillow: %s' % (
        tf_error, _first_line('%s: %s' % (type(e).__name__, e))))
  return Checked(ok=True, image_format='png', reencode=True, height=rgb.height,
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
  """The bytes to store for a file that passed check_image."""
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


def example(path, checked, relpath, label, class_name):
  """The serialized record for one image that passed check_image."""
  record = image_format_lib.make_example(
      _encoded_image(path, checked), label=label, image_format=checked.image_format,
      height=checked.height, width=checked.width, class_text=class_name,
      filename=relpath)
  # Map fields serialize in hash order unless asked; byte-identical output needs this.
  return record.SerializeToString(deterministic=True)


def check_arguments(image_dir, output_dir, validation_fraction, num_shards, seed,
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


def parallel_map(fn, items, num_workers, description, progress):
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
