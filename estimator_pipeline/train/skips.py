"""The --skip_corrupt_records count: exact, for training and evaluation apart.

  python train.py ... --skip_corrupt_records
  # Done: step 2000 in 4m12s.
  #   --skip_corrupt_records: skipped 12 of 24000 training records read in this run ...
  #   --skip_corrupt_records: skipped 2 of 300 evaluation records in the last evaluation

The input pipeline (data/input_fn.py) numbers every record its reader passes, good or
bad, before parsing, and keeps them in order; the model never sees the numbers
(without_record_index). By the time record n reaches a batch every record before it
was batched or dropped, so dropped = (largest number batched + 1) - records batched.
An evaluation reads its records to the end, so there the reader's own tally also
counts the records dropped after the last batch. A bad CRC, a truncated last record
and the point where a file's framing breaks (the rest of it cannot be read as
records) each count as one record; the files read only partly are named.
"""

import weakref

import tensorflow as tf

from estimator_pipeline.data import input_fn as input_lib

_RECORD_INDEX_COLLECTION = 'pipeline_record_index'
# Graph -> the RecordTally of the input_fn called in it (a Python object: kept out of
# the graph's collections, which the Saver writes into every .meta file).
_TALLIES = weakref.WeakKeyDictionary()


def without_record_index(input_fn, tally=None):
  """Takes the record numbers out of the features (the model must not see them) and
  leaves them, and the reader's tally, where SkipCounter finds them."""

  def wrapped(params=None, input_context=None):
    dataset = input_fn(params, input_context)
    features, labels = tf.compat.v1.data.make_one_shot_iterator(dataset).get_next()
    features = dict(features)
    tf.compat.v1.add_to_collection(_RECORD_INDEX_COLLECTION,
                                   features.pop(input_lib.RECORD_INDEX_KEY))
    if tally is not None:
      _TALLIES[tf.compat.v1.get_default_graph()] = tally
    return features, labels

  return wrapped


class SkipCounter(tf.compat.v1.train.SessionRunHook):
  """Counts the records one training run, or one evaluation, dropped.

  whole_pass: the data is read to its end (an evaluation without --eval_steps), so the
  tally of what the reader passed is the number read.
  """

  def __init__(self, whole_pass=False):
    self._whole = whole_pass
    self.ran = False
    self.largest = -1
    self.batched = 0
    self.unreadable = {}
    self._index = self._tally = self._passed = None
    self._start = 0

  def begin(self):
    # Each evaluation builds a new graph and calls begin again: counts start afresh.
    self._index = tf.compat.v1.get_collection(_RECORD_INDEX_COLLECTION)[-1]
    self._tally = _TALLIES.get(tf.compat.v1.get_default_graph())
    self._start = self._tally.positions if self._tally else 0
    self.ran, self.largest, self.batched, self._passed = True, -1, 0, None

  def before_run(self, run_context):
    del run_context
    return tf.compat.v1.train.SessionRunArgs(self._index)

  def after_run(self, run_context, run_values):
    del run_context
    numbers = run_values.results
    if len(numbers):
      self.largest = max(self.largest, int(numbers.max()))
      self.batched += len(numbers)

  def end(self, session):
    del session
    if self._tally is not None:
      if self._whole:
        self._passed = self._tally.positions - self._start
      self.unreadable = dict(self._tally.unreadable)

  @property
  def read(self):
    return max(self.largest + 1, self._passed or 0)

  @property
  def skipped(self):
    return max(0, self.read - self.batched)


class SkipCounters:
  """A run's counters: its training records and its last evaluation's (none when
  --skip_corrupt_records is off)."""

  def __init__(self, enabled, eval_steps=0):
    self.train = SkipCounter() if enabled else None
    self.eval = SkipCounter(whole_pass=not eval_steps) if enabled else None

  def training_hooks(self):
    return [self.train] if self.train else []

  def evaluation_hooks(self):
    return [self.eval] if self.eval else []

  def result_fields(self):
    """The summary.Result fields of the counts that were taken."""
    fields = {}
    if not self.train:
      return fields
    unreadable = {}
    for counter, prefix in ((self.train, ''), (self.eval, 'eval_')):
      if counter.ran:
        fields.update({prefix + 'skipped_records': counter.skipped,
                       prefix + 'records_read': counter.read})
        unreadable.update(counter.unreadable)
    fields['unreadable'] = tuple('%s %s' % kv for kv in sorted(unreadable.items()))
    return fields
