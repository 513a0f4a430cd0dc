r"""What an image classifier's export predicts for image files or records, as rows.

  python -m export.predict --saved_model=runs/flowers/export/best \
      --images='photos/*/*.jpg' --output=predictions.csv

The export is loaded by exports.load_export (a version directory or its parent,
whose newest version is used). Whatever its serving input (encoded_image,
image_tensor or tf_example), the inputs are sent in its form, --batch_size at a time,
with a progress bar. --output ending in .csv or .jsonl gets one row per input: file,
best class id, its name (when the export has labels.txt), its probability, and the
top-k ids, names and probabilities; without --output the rows go to stdout,
tab-separated. Inputs that do not read or decode are named and skipped; with records,
a row's file is `<record file>:<index>`.
"""

import csv
import glob
import json
import os
import sys

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import exports
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import image_format
from estimator_pipeline.serving import image as serving

OUTPUT_FORMATS = ('.csv', '.jsonl')
_SEQUENCE_HINT = (': a sequence model predicts over genome regions, with --fasta and '
                  '--bed')


def _glob(pattern, flag):
  paths = sorted({p for part in pattern.split(',') if part.strip()
                  for p in glob.glob(part.strip()) if os.path.isfile(p)})
  if not paths:
    raise UserError('%s=%r matches no file.' % (flag, pattern))
  return paths


def image_inputs(paths):
  """(name, encoded bytes or None, error) per image file, read lazily."""
  for path in paths:
    try:
      with open(path, 'rb') as f:
        yield path, f.read(), None
    except OSError as e:
      yield path, None, e.strerror or str(e)


def record_inputs(paths):
  """(file:index, encoded bytes, None) per record; the record layout's own decoder."""
  decoder = image_format.ImageRecordDecoder()
  for path in paths:
    index = 0
    try:
      for serialized in tf.data.TFRecordDataset(path):
        try:
          encoded = decoder.decode(serialized)['encoded'].numpy()
          yield '%s:%d' % (path, index), encoded, None
        except tf.errors.OpError as e:
          yield '%s:%d' % (path, index), None, short_tf_message(e)
        index += 1
    except tf.errors.OpError as e:
      yield '%s:%d' % (path, index), None, 'unreadable record (%s)' % (
          short_tf_message(e))


class Predictor:
  """An image classifier's export and the form its serving_default input takes."""

  def __init__(self, saved_model):
    self.export = exports.load_export(saved_model)
    self.path = self.export.path
    default = tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY
    if default not in self.export.signatures:
      raise UserError('--saved_model=%s has no serving_default signature.' % self.path)
    inputs, self.outputs = self.export.tensors(default)
    if len(inputs) != 1:
      raise UserError('--saved_model=%s takes inputs %s; export.predict sends images '
                      'to a model with one input.' % (self.path, sorted(inputs)))
    (self.input_key, self.input_tensor), = inputs.items()
    if self.input_key not in (serving.IMAGE_BYTES_KEY, serving.IMAGE_TENSOR_KEY,
                              serving.EXAMPLES_KEY):
      raise UserError('--saved_model=%s takes %r, not an image input of this project%s.'
                      % (self.path, self.input_key, _SEQUENCE_HINT
                         if self.input_key == 'sequence' else ''))

  def _run(self, feed):
    outputs = self.export.session.run(self.outputs, {self.input_tensor: feed})
    return [{k: v[i] for k, v in outputs.items()} for i in range(len(feed))]

  def _feed(self, encoded):
    if self.input_key == serving.IMAGE_BYTES_KEY:
      return np.array(encoded, dtype=object)
    if self.input_key == serving.EXAMPLES_KEY:
      return np.array([image_format.make_example(e).SerializeToString()
                       for e in encoded], dtype=object)
    return np.stack([_decode(e) for e in encoded])

  def __call__(self, encoded):
    """A batch of encoded images -> list of {output: numpy value} per image."""
    return self._run(self._feed(encoded))

  def predict_batch(self, items):
    """[(name, encoded)] -> ([(name, outputs)], [(name, reason)]).

    One undecodable image fails the whole batch in the graph; then each image is sent
    alone, so only the bad ones are skipped.
    """
    if self.input_key == serving.IMAGE_TENSOR_KEY:
      return self._predict_pixels(items)
    try:
      return list(zip([n for n, _ in items], self([e for _, e in items]))), []
    except tf.errors.InvalidArgumentError:
      if len(items) == 1:
        return [], [(items[0][0], 'does not decode as an image')]
    done, skipped = [], []
    for item in items:
      ok, bad = self.predict_batch([item])
      done += ok
      skipped += bad
    return done, skipped

  def _predict_pixels(self, items):
    # uint8 [N, H, W, 3] needs one size per call: images are decoded here and sent in
    # groups of equal size.
    by_shape, skipped = {}, []
    for name, encoded in items:
      try:
        pixels = _decode(encoded)
      except tf.errors.InvalidArgumentError:
        skipped.append((name, 'does not decode as an image'))
        continue
      by_shape.setdefault(tuple(pixels.shape), []).append((name, pixels))
    done = []
    for group in by_shape.values():
      outputs = self._run(np.stack([p for _, p in group]))
      done += [(name, out) for (name, _), out in zip(group, outputs)]
    order = {name: i for i, (name, _) in enumerate(items)}
    return sorted(done, key=lambda d: order[d[0]]), skipped


def _decode(encoded):
  return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                            expand_animations=False).numpy()


def predict_inputs(predictor, inputs, batch_size=32, on_skip=None, progress=None):
  """Yields (name, outputs) per readable input, in order; on_skip(name, reason)."""
  batch = []

  def flush():
    done, skipped = predictor.predict_batch(batch)
    for name, reason in skipped:
      if on_skip:
        on_skip(name, reason)
    if progress is not None:
      progress.update(len(batch))
    batch.clear()
    return done

  for name, encoded, error in inputs:
    if error is not None:
      if on_skip:
        on_skip(name, error)
      if progress is not None:
        progress.update(1)
      continue
    batch.append((name, encoded))
    if len(batch) >= batch_size:
      yield from flush()
  if batch:
    yield from flush()


def predict_images(saved_model, paths, batch_size=32, on_skip=None):
  """Yields (path, outputs dict of numpy values for that image) per readable image."""
  yield from predict_inputs(Predictor(saved_model), image_inputs(paths), batch_size,
                            on_skip)


def row(name, out):
  """One output row: file, best class, its name and probability, and the top-k."""
  cls = int(out['classes'])
  top_classes = [int(c) for c in out.get('top_k_classes', [cls])]
  if 'top_k_class_names' in out:
    top_names = [n.decode() for n in out['top_k_class_names']]
  else:
    top_names = [str(c) for c in top_classes]
  name_of_cls = (out['class_names'].decode() if 'class_names' in out else str(cls))
  probabilities = out['probabilities']
  top_probs = [float(p) for p in out.get('top_k_probabilities',
                                         [probabilities[cls]])]
  return {'file': name, 'class': cls, 'class_name': name_of_cls,
          'probability': float(probabilities[cls]), 'top_k_classes': top_classes,
          'top_k_class_names': top_names, 'top_k_probabilities': top_probs}


class Writer:
  """Writes rows as .csv, .jsonl or (no path) tab-separated lines on stdout."""

  def __init__(self, path):
    self.path = path
    ext = os.path.splitext(path)[1].lower() if path else ''
    if path and ext not in OUTPUT_FORMATS:
      raise UserError('--output=%s: name a .csv or .jsonl file.' % path)
    self.format = ext
    self._csv = None
    if path:
      directory = os.path.dirname(os.path.abspath(path))
      if not os.path.isdir(directory):
        raise UserError('--output=%s: directory %s does not exist.' % (path, directory))
      self._atomic = files.AtomicFile(path, 'w', newline='')
      self._file = self._atomic.file
    else:
      self._file = sys.stdout

  def write(self, r):
    if self.format == '.jsonl':
      self._file.write(json.dumps(r) + '\n')
    elif self.format == '.csv':
      k = len(r['top_k_classes'])
      if self._csv is None:
        header = ['file', 'class', 'class_name', 'probability']
        for i in range(1, k + 1):
          header += ['class_%d' % i, 'class_name_%d' % i, 'probability_%d' % i]
        self._csv = csv.writer(self._file)
        self._csv.writerow(header)
      values = [r['file'], r['class'], r['class_name'], '%.6f' % r['probability']]
      for c, n, p in zip(r['top_k_classes'], r['top_k_class_names'],
                         r['top_k_probabilities']):
        values += [c, n, '%.6f' % p]
      self._csv.writerow(values)
    else:
      self._file.write('%s\t%d\t%s\t%.4f\n' % (r['file'], r['class'], r['class_name'],
                                               r['probability']))

  def close(self, keep=True):
    if self._file is sys.stdout:
      self._file.flush()
      return
    if keep:
      self._atomic.commit()
    else:
      self._atomic.discard()


def run(saved_model, images='', records='', output='', batch_size=32):
  """Predicts every input; returns (rows written, [(name, reason) skipped])."""
  if bool(images) == bool(records):
    raise UserError('pass exactly one of --images and --records.')
  if batch_size <= 0:
    raise UserError('--batch_size=%d must be positive.' % batch_size)
  if images:
    paths = _glob(images, '--images')
    inputs, total = image_inputs(paths), len(paths)
  else:
    inputs, total = record_inputs(_glob(records, '--records')), None
  predictor = Predictor(saved_model)
  writer = Writer(output)
  skipped = []
  count = 0

  with console.Progress(total, 'predicting', unit='image') as progress:
    def on_skip(name, reason):
      skipped.append((name, reason))
      console.line('skipped %s: %s' % (name, reason))

    try:
      for name, out in predict_inputs(predictor, inputs, batch_size, on_skip,
                                      progress):
        writer.write(row(name, out))
        count += 1
    except BaseException:
      writer.close(keep=False)
      raise
  writer.close()
  if skipped:
    console.line('%d of %d inputs skipped (unreadable): %s' % (
        len(skipped), count + len(skipped),
        ', '.join(n for n, _ in skipped[:10]) + (' ...' if len(skipped) > 10 else '')))
  if output:
    console.line('Wrote %d rows to %s (model %s).' % (count, output, predictor.path))
  if not count:
    raise UserError('no input could be predicted: every one of them was unreadable.')
  return count, skipped
