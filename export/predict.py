r"""What does the model predict for these images, or over these genome regions?

  python -m export.predict --saved_model=runs/x/export/best --images='photos/*.jpg' \
      --output=predictions.csv
  python -m export.predict --saved_model=runs/x/export/best/1732458000 \
      --records='data/validation-*' --output=predictions.jsonl
  python -m export.predict --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --bed=regions.bed --output=preds.h5 \
      [--bigwig_dir=tracks/ --targets_file=targets.txt] [--ensemble_rc ...]

Sequence models (--fasta with --bed), as basenji_predict_bed.py: each BED region is
centred in a window of the model's length (N past a chromosome's end), predicted in
batches of --batch_size, and written to --output (.h5: `preds` float16 [regions, bins,
targets], `chrom`, `start`, `end` of the bins); --bigwig_dir adds one bigWig per target
(named by --targets_file's identifiers, which also picks and orders the targets).
The model is --saved_model or --params_file with --checkpoint (analysis/model_source.py);
see estimator_pipeline/analysis/regions.py.

--saved_model takes a version directory or its parent (the newest version is used).
Inputs are --images (a glob or comma list of JPEG/PNG files) or --records (TFRecords in
the training layout; each row's file is `<record file>:<index>`). Whatever the export's
serving input (encoded_image, image_tensor or tf_example), the inputs are sent in its
form, --batch_size at a time, with a progress bar on stderr.

Images: --output ending in .csv or .jsonl gets one row per input: file, best class id, its name
(when the export has labels.txt), its probability, and the top-k ids, names and
probabilities. Without --output the rows go to stdout, tab-separated. Images that do not
read or decode are reported by name and skipped.
"""

import csv
import glob
import json
import os
import sys

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
import tensorflow as tf

import flags
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import regions
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.records import image_format
from estimator_pipeline.serving import image as serving
from flags import analysis as analysis_flags
from flags import common


def define_flags():
  """The command line's flags (defined by __main__ only, so modules import freely)."""
  absl_flags.DEFINE_string('saved_model', '', 'SavedModel version directory, or the '
                           'directory of versions whose newest one is used.')
  absl_flags.DEFINE_string('images', '', 'Glob or comma list of JPEG/PNG files to '
                           'predict.')
  absl_flags.DEFINE_string('records', '', 'Glob or comma list of TFRecord files in the '
                           'training layout (image/encoded, ...) to predict, instead of '
                           '--images.')
  absl_flags.DEFINE_string('output', '', 'File to write, .csv or .jsonl (by its '
                           'extension); empty prints tab-separated rows on stdout.')
  absl_flags.DEFINE_integer('batch_size', 32, 'Inputs sent to the model per call.')
  # Sequence models over genome regions; the model flags are the analysis commands'.
  analysis_flags.define_model_flags()
  for name, text in (
      ('fasta', 'Sequence models: the genome FASTA the --bed regions are on.'),
      ('bed', 'Sequence models: BED regions to predict, each centred in a window of '
       "the model's length."),
      ('bigwig_dir', 'Sequence models: also write one bigWig per target into this '
       'folder.'),
      ('targets_file', "Sequence models: basenji's targets table; its targets, in its "
       'order, are kept and name the bigWigs.')):
    common.define_own(absl_flags.DEFINE_string, name, '', text)
  common.define_own(absl_flags.DEFINE_integer, 'bin_size', 0, 'Sequence models: bp '
                    'per predicted bin, for the coordinates; 0 takes the window '
                    'length / bins (right for a model that does not crop).')

OUTPUT_FORMATS = ('.csv', '.jsonl')


def resolve_version(path):
  """A SavedModel version directory, or the newest integer version below path."""
  return files.saved_model_version(path)


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
  """A loaded SavedModel and the form its serving_default input takes."""

  def __init__(self, saved_model):
    self.path = resolve_version(saved_model)
    try:
      self.loaded = tf.saved_model.load(self.path)
    except (OSError, ValueError, tf.errors.OpError) as e:
      raise UserError('--saved_model=%s does not load (%s).'
                      % (self.path, short_tf_message(e)))
    if 'serving_default' not in self.loaded.signatures:
      raise UserError('--saved_model=%s has no serving_default signature.' % self.path)
    self.signature = self.loaded.signatures['serving_default']
    inputs = self.signature.structured_input_signature[1]
    if len(inputs) != 1:
      raise UserError('--saved_model=%s takes inputs %s; export.predict sends images '
                      'to a model with one input.' % (self.path, sorted(inputs)))
    (self.input_key, self.input_spec), = inputs.items()
    if self.input_key not in (serving.IMAGE_BYTES_KEY, serving.IMAGE_TENSOR_KEY,
                              serving.EXAMPLES_KEY):
      raise UserError('--saved_model=%s takes %r, not an image input of this project.'
                      % (self.path, self.input_key))

  def _feed(self, encoded):
    if self.input_key == serving.IMAGE_BYTES_KEY:
      return tf.constant(encoded, tf.string)
    if self.input_key == serving.EXAMPLES_KEY:
      return tf.constant([image_format.make_example(e).SerializeToString()
                          for e in encoded], tf.string)
    return tf.stack([_decode(e) for e in encoded])

  def __call__(self, encoded):
    """A batch of encoded images -> list of {output: numpy value} per image."""
    outputs = self.signature(**{self.input_key: self._feed(encoded)})
    outputs = {k: v.numpy() for k, v in outputs.items()}
    return [{k: v[i] for k, v in outputs.items()} for i in range(len(encoded))]

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
      outputs = self.signature(**{self.input_key: tf.stack([p for _, p in group])})
      outputs = {k: v.numpy() for k, v in outputs.items()}
      done += [(name, {k: v[i] for k, v in outputs.items()})
               for i, (name, _) in enumerate(group)]
    order = {name: i for i, (name, _) in enumerate(items)}
    return sorted(done, key=lambda d: order[d[0]]), skipped


def _decode(encoded):
  return tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                            expand_animations=False)


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


def main(argv):
  if len(argv) > 1:
    raise UserError('unexpected argument %r: every option is a --flag.' % argv[1])
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  if FLAGS.fasta or FLAGS.bed:
    if FLAGS.images or FLAGS.records:
      raise UserError('--fasta and --bed predict a sequence model; --images and '
                      '--records are for image classifiers: pass one kind.')
    if not (FLAGS.fasta and FLAGS.bed and FLAGS.output):
      raise UserError('sequence predictions need --fasta, --bed and --output=preds.h5 '
                      'together.')
    for name in ('fasta', 'bed', 'targets_file'):
      if FLAGS[name].value and not os.path.isfile(FLAGS[name].value):
        raise UserError('--%s=%s is not a file.' % (name, FLAGS[name].value))
    model = model_source.load(**analysis_flags.model_kwargs())
    regions.predict_regions(model, FLAGS.fasta, FLAGS.bed, FLAGS.output,
                            FLAGS.targets_file, FLAGS.bigwig_dir, FLAGS.bin_size)
    return
  if not FLAGS.saved_model:
    raise UserError('--saved_model is empty: pass e.g. runs/x/export/best.')
  run(FLAGS.saved_model, FLAGS.images, FLAGS.records, FLAGS.output, FLAGS.batch_size)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
