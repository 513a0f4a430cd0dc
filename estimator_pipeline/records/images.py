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

import dataclasses
import glob
import math
import os
import re
from typing import Dict, List, Tuple

import numpy as np
import tensorflow as tf

from estimator_pipeline.core import files as files_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import image_files
from estimator_pipeline.records import image_format

# Defaults of convert_image_folder; flags/records.py reads them so they live in one place.
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_NUM_SHARDS = 4
DEFAULT_SEED = 0

TRAIN = 'train'
VALIDATION = 'validation'
LABELS_FILE = image_format.LABELS_FILE
MAX_SHARDS = image_files.MAX_SHARDS
# The summary names this many skipped files; the result object holds all of them.
MAX_NAMED_SKIPS = 10

_TMP_SUFFIX = '.tmp'
_SHARD_RE = re.compile(r'^(%s|%s)-\d{5}-of-\d{5}\.tfrecord$' % (TRAIN, VALIDATION))


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
  num_workers = image_files.check_arguments(
      image_dir, output_dir, validation_fraction, num_shards, seed, num_workers)
  label_names, files, empty_dirs = image_files.list_image_folder(image_dir)
  _prepare_output_dir(output_dir, image_dir, overwrite)
  paths = [os.path.join(image_dir, *relpath.split('/')) for relpath, _ in files]
  checked = list(image_files.parallel_map(image_files.check_image, paths, num_workers,
                               'checking images', progress))
  skip_reasons = {files[i][0]: c.reason for i, c in enumerate(checked) if not c.ok}
  good = [i for i, c in enumerate(checked) if c.ok]
  if not good:
    first = sorted(skip_reasons)[0]
    raise UserError('--image_dir=%s has no image that decodes: all %d files were '
                    'skipped (e.g. %s: %s)' % (image_dir, len(files), first,
                                               skip_reasons[first]))
  labels = np.array([files[i][1] for i in good], dtype=np.int64)
  train, validation = split_indices(labels, len(label_names), validation_fraction, seed)
  plan, shard_files = _shard_plan(output_dir, {TRAIN: train, VALIDATION: validation},
                                  num_shards)

  def encode(step):
    index = good[step[3]]
    relpath, label = files[index]
    return image_files.example(paths[index], checked[index], relpath, label,
                               label_names[label])

  written = _write_shards(output_dir, plan, encode, num_workers, progress)
  labels_file = os.path.join(output_dir, LABELS_FILE)
  _commit(output_dir, written, labels_file, label_names)

  def per_class(members):
    return tuple(int(x) for x in np.bincount(labels[members], minlength=len(label_names)))

  return ConversionResult(
      output_dir=output_dir, label_names=tuple(label_names), labels_file=labels_file,
      train_files=shard_files[TRAIN], validation_files=shard_files[VALIDATION],
      num_train=len(train), num_validation=len(validation),
      train_per_class=per_class(train), validation_per_class=per_class(validation),
      num_reencoded=sum(checked[i].reencode for i in good),
      skipped=tuple(sorted(skip_reasons)), skip_reasons=skip_reasons,
      empty_class_dirs=tuple(empty_dirs), validation_fraction=validation_fraction)


def _shard_plan(output_dir, splits, num_shards):
  """Which record goes into which shard.

  Returns ([(split, shard index, shard count, member index)] in writing order,
  {split: the paths of its shards}).
  """
  plan, shard_files = [], {}
  for split, members in splits.items():
    sizes = shard_sizes(len(members), num_shards)
    shard_files[split] = tuple(os.path.join(output_dir, shard_name(split, i, len(sizes)))
                               for i in range(len(sizes)))
    start = 0
    for shard, size in enumerate(sizes):
      plan.extend((split, shard, len(sizes), j) for j in members[start:start + size])
      start += size
  return plan, shard_files


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
  files_lib.make_output_dir(output_dir)


def _write_shards(output_dir, plan, encode, num_workers, progress):
  """Writes plan's records to temporary shard files; returns [(temp, final path)]."""
  written = []
  writer = None
  current = None
  try:
    # The records first, so zip runs the generator to its end (and closes its pool).
    for record, step in zip(image_files.parallel_map(encode, plan, num_workers, 'writing records',
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
      f.write(image_format.labels_text(label_names))
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
