r"""A loaded sequence model: one-hot -> predictions in batches, its ensemble, saliency.

  python -c "
  import numpy as np
  from estimator_pipeline.analysis import model_source
  model = model_source.load(saved_model='runs/cage/export/best')
  print(model.predict(np.zeros((1, model.seq_length, 4), np.float32)).shape)"

model_source.load makes one, from an export or from a params file and its checkpoint;
every analysis command reads the network through it as float32 one-hot [n,
seq_length, 4] -> [n, bins, targets]. With an export, --ensemble_rc and
--ensemble_shifts average here, around the `onehot` signature, as basenji's
build_ensemble does; with a params file the ensemble is in the graph.
"""

import queue
import threading

import numpy as np
import tensorflow as tf

from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message

# Batches built ahead of the network by predict_batches' producer thread.
PREFETCH_BATCHES = 2


class SequenceModel:
  """A sequence model's one-hot -> predictions graph, its shapes, batched prediction.

  Attributes:
    seq_length, bins, num_targets: Its input length and output shape.
    path: The export's version directory, or the checkpoint given with a params file.
    source: How messages name it.
    batch_size: Sequences per network call (each ensemble copy is one more batch).
    strand_pair: The output each output becomes on the other strand (a permutation
      of the outputs), or None for an unstranded model; a reverse-complemented
      copy's predictions are permuted by it in the ensemble averaged here.
    targets: The targets a command reports (targets.TargetTable): --targets_file's
      rows, or every output of the model.
  """

  def __init__(self, session, inputs, outputs, path, source, ensemble_rc=False,
               ensemble_shifts=(0,), batch_size=8, saliency=None, strand_pair=None):
    """saliency: (target_index tensor, saliency tensor, scores tensor) of the graph,
    input x gradient with respect to `inputs`, or None when it has none."""
    self.path, self.source = path, source
    self._session, self._inputs, self._outputs = session, inputs, outputs
    self._saliency = saliency
    self.seq_length = int(inputs.shape[1])
    self.bins, self.num_targets = int(outputs.shape[1]), int(outputs.shape[2])
    self.ensemble_rc = bool(ensemble_rc)
    self.ensemble_shifts = tuple(ensemble_shifts) or (0,)
    self.batch_size = batch_size
    self.strand_pair = tuple(strand_pair) if strand_pair is not None else None
    self.targets = targets_lib.model_targets(self.num_targets)

  def use_targets(self, table):
    """Reports table's targets from now on (targets.read(..., self.num_targets))."""
    self.targets = table

  def _run(self, fetches, feeds):
    try:
      return self._session.run(fetches, feeds)
    except (tf.errors.OpError, ValueError) as e:
      raise UserError('the model %s failed on a batch of shape %s: %s' % (
          self.source, list(np.shape(feeds[self._inputs])), short_tf_message(e)))

  def _ensemble(self, one_hot):
    """basenji's build_ensemble: shifted (zero padded) and reverse-complemented
    copies in one batch, their predictions flipped back and averaged."""
    copies = []
    for shift in self.ensemble_shifts:
      shifted = shift_one_hot(one_hot, shift)
      copies.append(shifted)
      if self.ensemble_rc:
        copies.append(shifted[:, ::-1, ::-1])
    preds = self._run(self._outputs, {self._inputs: np.concatenate(copies)}).reshape(
        (len(copies), len(one_hot), self.bins, self.num_targets))
    if self.ensemble_rc:
      preds[1::2] = preds[1::2, :, ::-1]
      if self.strand_pair is not None:
        # On the other strand each stranded target is its pair's.
        preds[1::2] = preds[1::2][..., self.strand_pair]
    return preds.mean(axis=0, dtype=np.float32)

  def _around(self):
    """Whether the ensemble is averaged here, around the graph."""
    return self.ensemble_rc or self.ensemble_shifts != (0,)

  def _predict_one(self, one_hot):
    if self._around():
      return self._ensemble(one_hot)
    return self._run(self._outputs, {self._inputs: one_hot})

  def predict(self, one_hot):
    """float32 [n, seq_length, 4] -> float32 [n, bins, targets], batch_size at a
    time."""
    one_hot = np.asarray(one_hot, np.float32)
    self.check_shape(one_hot)
    if not len(one_hot):
      return np.zeros((0, self.bins, self.num_targets), np.float32)
    return np.concatenate([self._predict_one(one_hot[i:i + self.batch_size])
                           for i in range(0, len(one_hot), self.batch_size)])

  def check_shape(self, one_hot):
    if one_hot.ndim != 3 or one_hot.shape[1:] != (self.seq_length, 4):
      raise UserError('the model %s takes one-hot sequences of shape [n, %d, 4], not '
                      '%s.' % (self.source, self.seq_length, list(one_hot.shape)))

  def check_target(self, target_index):
    if not 0 <= target_index < self.num_targets:
      raise UserError('--target_index=%d is out of range: the model predicts %d '
                      'targets (0 to %d).' % (target_index, self.num_targets,
                                              self.num_targets - 1))

  def saliency(self, one_hot, target_index):
    """Input x gradient of the sum over bins of one target's prediction.

    one_hot: float32 [n, seq_length, 4] (n at most batch_size is one network call).
    Returns (saliency float32 [n, L, 4], scores float32 [n, L], its sum over bases).
    """
    if self._saliency is None:
      raise UserError('the model %s has no saliency signature: export it again with '
                      'this version of the pipeline, or pass it as --params_file with '
                      '--checkpoint.' % self.source)
    if self._around():
      raise UserError('--ensemble_rc and --ensemble_shifts average predictions around '
                      'an export, not its saliency: export the model with them, or '
                      'pass it as --params_file with --checkpoint.')
    self.check_target(target_index)
    one_hot = np.asarray(one_hot, np.float32)
    self.check_shape(one_hot)
    index, saliency, scores = self._saliency
    return self._run((saliency, scores), {
        self._inputs: one_hot, index: np.full(len(one_hot), target_index, np.int32)})

  def predict_batches(self, batches):
    """Iterable of one-hot arrays -> iterator of their predictions, in order.

    The iterable is consumed on a second thread, PREFETCH_BATCHES ahead, so building
    the next windows (reading the genome, one-hot encoding) overlaps the network,
    which releases the interpreter while it runs.
    """
    for _, preds in self.predict_pairs((None, b) for b in batches):
      yield preds

  def predict_pairs(self, items):
    """Iterable of (anything, one-hot array) -> iterator of (that, predictions)."""
    for extra, one_hot in prefetch(items, PREFETCH_BATCHES):
      yield extra, self.predict(one_hot)


def shift_one_hot(one_hot, shift):
  """[n, L, 4] moved `shift` positions right (left if negative), zero padded."""
  if not shift:
    return one_hot
  out = np.zeros_like(one_hot)
  if shift > 0:
    out[:, shift:] = one_hot[:, :-shift]
  else:
    out[:, :shift] = one_hot[:, -shift:]
  return out


_DONE = object()


def prefetch(iterable, depth=PREFETCH_BATCHES):
  """Yields iterable's items, produced up to depth ahead on a daemon thread.

  An exception of the producer (a bad line of an input file) is raised here, in the
  consumer, after the items before it; closing the generator stops the producer.
  """
  buffer = queue.Queue(maxsize=max(1, depth))
  stop = threading.Event()

  def produce():
    try:
      for item in iterable:
        if not _put(buffer, (item, None), stop):
          return
      _put(buffer, (_DONE, None), stop)
    except BaseException as e:  # pylint: disable=broad-except
      _put(buffer, (_DONE, e), stop)

  thread = threading.Thread(target=produce, daemon=True, name='prefetch')
  thread.start()
  try:
    while True:
      item, error = buffer.get()
      if item is _DONE:
        if error is not None:
          raise error
        return
      yield item
  finally:
    stop.set()
    thread.join(timeout=10)


def _put(buffer, item, stop):
  while not stop.is_set():
    try:
      buffer.put(item, timeout=0.1)
      return True
    except queue.Full:
      continue
  return False
