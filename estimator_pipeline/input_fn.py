"""Files -> tf.data: list, interleave, shuffle, parallel decode, batch, prefetch.

`make_input_fn` returns the `input_fn` an Estimator calls; it never imports model code:
the model's record layout and preprocessing arrive as plain values.

  python -c "
  import estimator_pipeline
  from estimator_pipeline import input_fn as i
  fn = i.make_image_input_fn('data/train-*', is_training=True, batch_size=8,
                             num_classes=5, family='vgg', image_size=224)
  print(fn().element_spec)"
"""

import tensorflow as tf

from estimator_pipeline import decoders
from estimator_pipeline import preprocessing
from estimator_pipeline.errors import UserError

# The first words of the in-graph assertion on labels; train_lib turns the error it
# raises into one line naming the label and the flag to change.
LABEL_ERROR_MARKER = 'label out of range'
# With skip_bad_records, training features carry each record's running number here;
# train_lib takes it out before the model sees the features and counts the gaps.
RECORD_INDEX_KEY = 'pipeline/record_index'


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


def make_input_fn(files, *, is_training, batch_size, parse_fn, compression_type=None,
                  shuffle_buffer_size=2048, num_parallel_reads=0, seed=None,
                  default_input_context=None, skip_bad_records=False,
                  batch_parse_fn=None):
  """Builds an Estimator input_fn over TFRecord files.

  Args:
    files: the record files (see list_files).
    is_training: shuffle and repeat forever (training), or read every record exactly
      once in file order with a short last batch (evaluation).
    batch_size: the per-replica batch size.
    parse_fn: serialized tf.Example -> (features, label); runs in parallel.
    compression_type: None or 'ZLIB'/'GZIP', as the records were written.
    shuffle_buffer_size: records held for shuffling when training.
    num_parallel_reads: training files read at once; 0 reads up to 8.
    seed: shuffle seed, for reproducible runs.
    default_input_context: the split to use when the Estimator passes no
      input_context (classic between-graph training; see distribute.py).
    skip_bad_records: drop records parse_fn fails on (its label check included) and
      the rest of a file after a corrupt or truncated record, instead of failing.
      Training features then carry RECORD_INDEX_KEY so the drops can be counted.
    batch_parse_fn: optional [B] serialized records -> (features, labels) of a batch,
      equivalent to parse_fn on each record. When given (and skip_bad_records is off:
      skipping needs record granularity), records are batched first and parsed a
      batch per call, which spares tf.data's per-element cost when each record is
      cheap to decode (small images).

  Returns:
    input_fn(params=None, input_context=None) -> tf.data.Dataset.
  """
  files = list(files)
  autotune = tf.data.AUTOTUNE

  def input_fn(params=None, input_context=None):
    del params  # Everything is bound above; the Estimator's params are not needed.
    context = input_context or default_input_context
    pipelines = context.num_input_pipelines if context else 1
    dataset = tf.data.Dataset.from_tensor_slices(files)
    def read(f):
      records = tf.data.TFRecordDataset(f, compression_type=compression_type)
      if skip_bad_records:
        # TFRecordDataset moves on to the next file after a DataLoss error, so this
        # drops the rest of a corrupt file, not the whole run.
        records = records.apply(tf.data.experimental.ignore_errors())
      return records
    if pipelines > 1 and len(files) < pipelines:
      # Too few files to give every worker one: every worker reads all of them in one
      # fixed order and keeps every n-th record, so each record has exactly one reader.
      # (The order must not depend on timing, or the workers' picks would overlap.)
      dataset = dataset.flat_map(read).shard(pipelines, context.input_pipeline_id)
    else:
      if pipelines > 1:
        # Each worker reads its own files, so no record is read twice in an epoch.
        dataset = dataset.shard(pipelines, context.input_pipeline_id)
      if is_training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        # Several files at once, taking whichever is ready: mixes the shards and hides
        # slow reads. Decoding is parallel below either way.
        dataset = dataset.interleave(
            read, cycle_length=num_parallel_reads or min(len(files), 8),
            block_length=1, num_parallel_calls=autotune, deterministic=False)
      else:
        # Evaluation reads the files one after the other, so prediction i is record i.
        dataset = dataset.flat_map(read)
    if is_training:
      dataset = dataset.shuffle(shuffle_buffer_size, seed=seed,
                                reshuffle_each_iteration=True)
      dataset = dataset.repeat()
    if batch_parse_fn is not None and not skip_bad_records:
      # Batches are the parallel unit: several are parsed at once, each in one call.
      dataset = dataset.batch(batch_size, drop_remainder=is_training)
      dataset = dataset.map(batch_parse_fn, num_parallel_calls=autotune,
                            deterministic=not is_training)
      return dataset.prefetch(autotune)
    if skip_bad_records and is_training:
      # Numbered before parsing and parsed in order: a missing number downstream is a
      # dropped record, so the drops can be counted exactly.
      def parse_numbered(number, serialized):
        features, label = parse_fn(serialized)
        return dict(features, **{RECORD_INDEX_KEY: number}), label
      dataset = dataset.enumerate().map(parse_numbered, num_parallel_calls=autotune,
                                        deterministic=True)
    else:
      dataset = dataset.map(parse_fn, num_parallel_calls=autotune,
                            deterministic=not is_training)
    if skip_bad_records:
      dataset = dataset.apply(tf.data.experimental.ignore_errors())
    # A static batch dimension when training lets every layer see fixed shapes; an
    # evaluation must not drop the last records.
    dataset = dataset.batch(batch_size, drop_remainder=is_training)
    return dataset.prefetch(autotune)

  return input_fn


def make_image_parse_fn(*, is_training, num_classes, family, image_size,
                        random_flip=True):
  """serialized slim image record -> ({'image': float32 [S, S, 3]}, int64 label)."""
  decoder = decoders.get_decoder('image')

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    label = item['label']
    in_range = tf.logical_and(label >= 0, label < num_classes)
    check = tf.debugging.Assert(
        in_range, ['%s [0, %d) of --num_classes=%d:' % (
            LABEL_ERROR_MARKER, num_classes, num_classes), label], summarize=1)
    with tf.control_dependencies([check]):
      label = tf.identity(label)
    image = preprocessing.decode_and_preprocess(
        item['encoded'], family, image_size, image_size, is_training,
        random_flip=random_flip)
    return {'image': image}, label

  return parse_fn


def make_image_batch_parse_fn(*, is_training, num_classes, family, image_size,
                              random_flip=True, parallel_iterations=32):
  """[B] serialized slim image records -> ({'image': float32 [B, S, S, 3]}, int64 [B]).

  The batch counterpart of make_image_parse_fn, with the same values: the records are
  parsed with one tf.io.parse_example, the labels checked with one assertion, and each
  image goes through the same per-image preprocessing (its own random crop and flip)
  in a tf.map_fn. parallel_iterations=1 draws the random values in record order,
  which --deterministic needs.
  """
  decoder = decoders.get_decoder('image')

  def batch_parse_fn(serialized):
    items = decoder.decode_batch(serialized)
    labels = items['label']
    in_range = tf.logical_and(labels >= 0, labels < num_classes)
    first_bad = tf.boolean_mask(labels, tf.logical_not(in_range))[:1]
    check = tf.debugging.Assert(
        tf.reduce_all(in_range), ['%s [0, %d) of --num_classes=%d:' % (
            LABEL_ERROR_MARKER, num_classes, num_classes), first_bad], summarize=1)
    with tf.control_dependencies([check]):
      labels = tf.identity(labels)
    images = tf.map_fn(
        lambda encoded: preprocessing.decode_and_preprocess(
            encoded, family, image_size, image_size, is_training,
            random_flip=random_flip),
        items['encoded'],
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
        parallel_iterations=parallel_iterations)
    return {'image': images}, labels

  return batch_parse_fn


# Output sides up to this parse a batch of records per call (make_input_fn's
# batch_parse_fn). Measured on 2 cores (bench/CHANGES.md): at 32x32 the per-record path
# spends more in tf.data's per-element machinery than in decoding, and batching first
# doubles the images/sec; at 224x224 decoding dominates and the per-record path's
# finer parallelism is faster.
BATCH_PARSE_MAX_IMAGE_SIZE = 64


def image_parse_fns(*, is_training, num_classes, family, image_size, random_flip=True,
                    deterministic=False):
  """make_input_fn's parse_fn and batch_parse_fn for slim image records."""
  kwargs = dict(is_training=is_training, num_classes=num_classes, family=family,
                image_size=image_size, random_flip=random_flip)
  batch_parse_fn = None
  if image_size <= BATCH_PARSE_MAX_IMAGE_SIZE:
    batch_parse_fn = make_image_batch_parse_fn(
        parallel_iterations=1 if deterministic else 32, **kwargs)
  return {'parse_fn': make_image_parse_fn(**kwargs), 'batch_parse_fn': batch_parse_fn}


def make_image_input_fn(file_pattern, *, is_training, batch_size, num_classes, family,
                        image_size, random_flip=True, flag_name='--train_record_path',
                        deterministic=False, **kwargs):
  """make_input_fn for slim image records (file glob in, batches of images out)."""
  return make_input_fn(list_files(file_pattern, flag_name), is_training=is_training,
                       batch_size=batch_size, **image_parse_fns(
                           is_training=is_training, num_classes=num_classes,
                           family=family, image_size=image_size,
                           random_flip=random_flip, deterministic=deterministic),
                       **kwargs)


def make_sequence_parse_fn(layout, *, is_training, augment_rc=False, augment_shift=0,
                           seed=None):
  """serialized basenji record -> ({'sequence': float32 [L, 4]}, float32 [T, N]).

  layout: a sequence_records.SequenceLayout. Training applies the params' augment_rc
  (reverse complement, targets flipped along length) and augment_shift (random shift
  in [-k, k], zero padded); evaluation reads the records as they are.
  """
  decoder = decoders.get_decoder('sequence', sequence_layout=layout)

  def parse_fn(serialized):
    item = decoder.decode(serialized)
    sequence, target = item['sequence'], item['target']
    if is_training:
      sequence, target = preprocessing.augment_sequence(
          sequence, target, augment_rc=augment_rc, augment_shift=augment_shift,
          seed=seed)
    return {'sequence': sequence}, target

  return parse_fn
