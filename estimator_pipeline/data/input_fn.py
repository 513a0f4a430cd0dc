"""Files -> tf.data: list, interleave, shuffle, parallel decode, batch, prefetch.

`make_input_fn` returns the `input_fn` an Estimator calls; it never imports model code:
the record layout's parse function arrives ready-made (data/image_parse.py,
data/sequence_parse.py), and the files as a list (core/files.py's list_files expands
the flags' globs).

  python -c "
  import estimator_pipeline
  from estimator_pipeline.core import files
  from estimator_pipeline.data import input_fn, image_parse
  fn = input_fn.make_input_fn(files.list_files('data/train-*'), is_training=True,
      batch_size=8, **image_parse.image_parse_fns(
          is_training=True, num_classes=5, family='vgg', image_size=224))
  print(fn().element_spec)"
"""

import threading

import tensorflow as tf

from estimator_pipeline.records import inspect as inspect_lib

# With skip_bad_records, features carry each record's running number here;
# train/safety.py takes it out before the model sees the features and counts the gaps.
RECORD_INDEX_KEY = 'pipeline/record_index'


class RecordTally:
  """What the reader of one input_fn passed with skip_bad_records (thread-safe).

  positions: every record it read, good or bad (a bad CRC, a truncated last record,
  the point where a file's framing broke: one each). unreadable: {file: where reading
  stopped and why} for the files whose rest could not be read as records.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self.positions = 0
    self.unreadable = {}

  def count(self, path, index, problem):
    with self._lock:
      self.positions += 1
      if problem is not None and not problem.startswith('bad CRC'):
        self.unreadable[path] = 'record %d: %s' % (index, problem)


def _salvaged(path, compression, tally):
  """The records of one file as records inspect reads them: past a bad CRC the framing
  is followed on; each bad record or break becomes b'' (parsing drops it, and the
  count sees it)."""
  path = path.decode() if isinstance(path, bytes) else path
  for index, raw, problem in inspect_lib.iter_records(path, compression):
    if tally is not None:
      tally.count(path, index, problem)
    yield b'' if raw is None else raw


def make_input_fn(files, *, is_training, batch_size, parse_fn, compression_type=None,
                  shuffle_buffer_size=2048, num_parallel_reads=0, seed=None,
                  default_input_context=None, skip_bad_records=False,
                  batch_parse_fn=None, tally=None):
  """Builds an Estimator input_fn over TFRecord files.

  Args:
    files: the record files (core/files.py's list_files).
    is_training: shuffle and repeat forever (training), or read every record exactly
      once in file order with a short last batch (evaluation).
    batch_size: the per-replica batch size.
    parse_fn: serialized tf.Example -> (features, label); runs in parallel.
    compression_type: None or 'ZLIB'/'GZIP', as the records were written.
    shuffle_buffer_size: records held for shuffling when training.
    num_parallel_reads: training files read at once; 0 reads up to 8.
    seed: shuffle seed, for reproducible runs.
    default_input_context: the split to use when the Estimator passes no
      input_context (classic between-graph training; see train/strategies.py).
    skip_bad_records: drop records parse_fn fails on (its label check included),
      records with a bad CRC (reading goes on after them), and the point where a
      file's framing breaks (a truncated file, a corrupt length header: the rest of
      that file cannot be read), instead of failing. Features then carry
      RECORD_INDEX_KEY so the drops can be counted.
    tally: with skip_bad_records, a RecordTally the reader counts into.
    batch_parse_fn: optional [B] serialized records -> (features, labels) of a batch,
      equivalent to parse_fn on each record. When given (and skip_bad_records is off:
      skipping needs record granularity), records are batched first and parsed a
      batch per call, which spares tf.data's per-element cost when each record is
      cheap to decode (small images).

  Returns:
    input_fn(params=None, input_context=None) -> tf.data.Dataset.
  """
  files = list(files)

  def input_fn(params=None, input_context=None):
    del params  # Everything is bound above; the Estimator's params are not needed.
    dataset = _records(files, input_context or default_input_context, is_training,
                       compression_type, num_parallel_reads, seed,
                       skip_bad_records and (tally or RecordTally()))
    if is_training:
      dataset = dataset.shuffle(shuffle_buffer_size, seed=seed,
                                reshuffle_each_iteration=True)
      dataset = dataset.repeat()
    if batch_parse_fn is not None and not skip_bad_records:
      # Batches are the parallel unit: several are parsed at once, each in one call.
      dataset = dataset.batch(batch_size, drop_remainder=is_training)
      dataset = dataset.map(batch_parse_fn, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=not is_training)
      return dataset.prefetch(tf.data.AUTOTUNE)
    dataset = _parsed(dataset, parse_fn, is_training, skip_bad_records)
    # A static batch dimension when training lets every layer see fixed shapes; an
    # evaluation must not drop the last records.
    dataset = dataset.batch(batch_size, drop_remainder=is_training)
    return dataset.prefetch(tf.data.AUTOTUNE)

  return input_fn


def _records(files, context, is_training, compression_type, num_parallel_reads, seed,
             salvage):
  """The serialized records of this input pipeline's share of files.

  salvage: a RecordTally to read past bad records and count into (skip_bad_records),
  or False for TensorFlow's reader, which stops at the first one.
  """
  pipelines = context.num_input_pipelines if context else 1
  dataset = tf.data.Dataset.from_tensor_slices(files)

  def read(f):
    if not salvage:
      return tf.data.TFRecordDataset(f, compression_type=compression_type)
    # TensorFlow's reader gives up on a file at its first bad record; records inspect
    # reads on past a bad CRC, and names where a file cannot be read further.
    return tf.data.Dataset.from_generator(
        lambda path: _salvaged(path, compression_type or 'NONE', salvage), args=(f,),
        output_signature=tf.TensorSpec([], tf.string))

  if pipelines > 1 and len(files) < pipelines:
    # Too few files to give every worker one: every worker reads all of them in one
    # fixed order and keeps every n-th record, so each record has exactly one reader.
    # (The order must not depend on timing, or the workers' picks would overlap.)
    return dataset.flat_map(read).shard(pipelines, context.input_pipeline_id)
  if pipelines > 1:
    # Each worker reads its own files, so no record is read twice in an epoch.
    dataset = dataset.shard(pipelines, context.input_pipeline_id)
  if not is_training:
    # Evaluation reads the files one after the other, so prediction i is record i.
    return dataset.flat_map(read)
  dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
  # Several files at once, taking whichever is ready: mixes the shards and hides slow
  # reads. Decoding is parallel below either way.
  return dataset.interleave(read, cycle_length=num_parallel_reads or min(len(files), 8),
                            block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                            deterministic=False)


def _parsed(dataset, parse_fn, is_training, skip_bad_records):
  """Records -> (features, label) in parallel; with skip_bad_records, numbered and
  without the records parse_fn fails on."""
  if skip_bad_records:
    # Numbered before parsing and parsed in order: a missing number downstream is a
    # dropped record, so the drops can be counted exactly.
    def parse_numbered(number, serialized):
      features, label = parse_fn(serialized)
      return dict(features, **{RECORD_INDEX_KEY: number}), label
    dataset = dataset.enumerate().map(parse_numbered, num_parallel_calls=tf.data.AUTOTUNE,
                                      deterministic=True)
  else:
    dataset = dataset.map(parse_fn, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=not is_training)
  if skip_bad_records:
    dataset = dataset.apply(tf.data.experimental.ignore_errors())
  return dataset
