"""Files every layer reads and writes: atomic writes, record globs, checkpoints, events.

Everything the pipeline writes for a user (config.json, flags.txt, params.json,
class_names.txt, warm-up files, predictions, reports) goes through `atomic_path` or
`atomic_write`: the data lands under a temporary name beside the target and is renamed
over it only when complete, so a run killed at any moment leaves the old file or the
new one, never half of either:

  python -c "
  from estimator_pipeline.core import files
  files.atomic_write('/tmp/x.json', '{}\\n')
  print(files.checkpoint_step('runs/x/model.ckpt-1200'))"
"""

import contextlib
import os
import re
import shutil

import tensorflow as tf

from estimator_pipeline.core.errors import UserError

# What atomic writes append to the target's name while writing; train/safety.py
# removes such leftovers of a killed run from model_dir.
TMP_SUFFIX = '.tmp'


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; renames it over `path` on success.

  For writers that want a file name (TFRecordWriter, numpy, h5py). On an exception
  the temporary file is removed and `path` is left as it was. Works on local paths and
  on the remote file systems tf.io.gfile knows (gs://, ...).
  """
  directory = os.path.dirname(path)
  if directory:
    tf.io.gfile.makedirs(directory)
  tmp = path + TMP_SUFFIX
  try:
    yield tmp
  except BaseException:
    if tf.io.gfile.exists(tmp):
      tf.io.gfile.remove(tmp)
    raise
  tf.io.gfile.rename(tmp, path, overwrite=True)


class AtomicFile:
  """A file written under a temporary name beside `path`: commit() renames it over
  `path`, discard() removes it. For writers that write as they go (predictions)."""

  def __init__(self, path, mode='w', **kwargs):
    """kwargs go to open() (encoding, newline, ...) for local paths; remote paths
    (gs://) are written through tf.io.gfile, which takes none."""
    self.path = path
    self._tmp = path + TMP_SUFFIX
    directory = os.path.dirname(path)
    if directory:
      tf.io.gfile.makedirs(directory)
    if '://' in path:
      self.file = tf.io.gfile.GFile(self._tmp, mode)
    else:
      self.file = open(self._tmp, mode, **kwargs)  # pylint: disable=unspecified-encoding

  def commit(self):
    self.file.close()
    tf.io.gfile.rename(self._tmp, self.path, overwrite=True)

  def discard(self):
    self.file.close()
    if tf.io.gfile.exists(self._tmp):
      tf.io.gfile.remove(self._tmp)


@contextlib.contextmanager
def atomic_open(path, mode='w', **kwargs):
  """Like open(path, mode), but the file appears at `path` only once it is closed."""
  atomic = AtomicFile(path, mode, **kwargs)
  try:
    yield atomic.file
  except BaseException:
    atomic.discard()
    raise
  atomic.commit()


def atomic_write(path, data):
  """Writes text or bytes to path atomically; returns path."""
  with atomic_open(path, 'wb' if isinstance(data, bytes) else 'w') as f:
    f.write(data)
  return path


def make_output_dir(path, flag='--output_dir'):
  """Creates a command's output folder (and its parents); UserError if it cannot be
  created or written to."""
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise UserError('cannot create %s=%s: %s' % (flag, path, e.strerror or e))
  if not os.access(path, os.W_OK):
    raise UserError('cannot write to %s=%s: permission denied' % (flag, path))
  return path


def fresh_dir(path):
  """An empty folder at path (what was there is removed); returns its absolute path."""
  path = os.path.abspath(path)
  if os.path.exists(path):
    shutil.rmtree(path)
  os.makedirs(path)
  return path


# The first bytes of every HDF5 file (what Keras' .h5 files are).
HDF5_SIGNATURE = b'\x89HDF\r\n\x1a\n'


def is_hdf5(path):
  """Whether path is an HDF5 file: a checkpoint flag can name a Keras .h5 or a
  TensorFlow checkpoint, and only the bytes tell them apart."""
  if not path or not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
    return False
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def list_files(pattern, flag_name='--train_record_path'):
  """Expands a glob or a comma list of globs to a sorted list of existing files."""
  files = []
  for part in str(pattern).split(','):
    part = part.strip()
    if not part:
      continue
    matched = tf.io.gfile.glob(part)
    if not matched:
      raise UserError('%s=%s matches no file: check the path, and quote the glob so '
                      'the shell does not expand it.' % (flag_name, part))
    directories = [m for m in matched if tf.io.gfile.isdir(m)]
    if len(directories) == len(matched):
      raise UserError("%s=%s is a directory, not record files: pass a glob of the "
                      "files in it, e.g. %s='%s'" % (
                          flag_name, part, flag_name,
                          part.rstrip('/') + '/train-*.tfrecord'))
    files.extend(m for m in matched if m not in directories)
  if not files:
    raise UserError('%s=%r names no record file.' % (flag_name, pattern))
  return sorted(set(files))


def checkpoint_step(path, default=0):
  """The global step in a checkpoint prefix ('.../model.ckpt-1200' -> 1200).

  `default` when the path is empty or carries no step (a slim checkpoint such as
  resnet_v1_50.ckpt, or no checkpoint at all).
  """
  match = re.search(r'-(\d+)$', path or '')
  return int(match.group(1)) if match else default


def export_step(version_dir):
  """The global step of the checkpoint a SavedModel version was exported from, or None."""
  try:
    reader = tf.train.load_checkpoint(os.path.join(version_dir, 'variables',
                                                   'variables'))
    return int(reader.get_tensor('global_step'))
  except (tf.errors.OpError, ValueError):
    return None


def versions(directory):
  """The integer version sub-directories of an export directory, oldest first."""
  if not tf.io.gfile.isdir(directory):
    return []
  numbers = sorted(int(d.strip('/')) for d in tf.io.gfile.listdir(directory)
                   if d.strip('/').isdigit())
  return [os.path.join(directory, str(n)) for n in numbers]


def newest_version(directory):
  """The newest integer version directory under `directory`, or None."""
  found = versions(directory)
  return found[-1] if found else None


def saved_model_version(path, flag='--saved_model'):
  """A SavedModel version directory, or the newest integer version below path that
  holds one; UserError naming the flag otherwise."""
  if tf.io.gfile.exists(os.path.join(path, 'saved_model.pb')):
    return path
  for candidate in reversed(versions(path)):
    if tf.io.gfile.exists(os.path.join(candidate, 'saved_model.pb')):
      return candidate
  raise UserError('%s=%s holds no saved_model.pb nor integer version directories '
                  'with one.' % (flag, path))


def iter_events(path):
  """tf.compat.v1.Event records of one events file, stopping quietly at a torn tail.

  A writer killed mid-record leaves a truncated last record; TensorFlow's iterator
  raises DataLossError there, which would make every later run fail to read the file.
  """
  try:
    for raw in tf.compat.v1.io.tf_record_iterator(path):
      yield tf.compat.v1.Event.FromString(raw)
  except tf.errors.DataLossError:
    return


def scalar_history(directory):
  """{step: {tag: value}} of every scalar in the events files of one directory."""
  history = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(directory, 'events.*'))):
    for event in iter_events(path):
      for value in event.summary.value:
        if value.HasField('simple_value'):
          history.setdefault(int(event.step), {})[value.tag] = value.simple_value
  return history


def eval_history(model_dir):
  """{step: {metric: value}} from every evaluation in model_dir/eval, all runs included.

  BestExporter judges "best" over the same events, so the closing summary and
  export/best agree after a resume.
  """
  return scalar_history(os.path.join(model_dir, 'eval'))
