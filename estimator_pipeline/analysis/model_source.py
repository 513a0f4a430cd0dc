r"""The one loader of "the model" for what users do with a trained sequence model.

  python -m export.variants --saved_model=runs/cage/export/best ...
  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --ensemble_rc --ensemble_shifts=1,0,-1 ...

A model comes either as an export (--saved_model: a version directory or its parent)
or as basenji's params file with a checkpoint (the .h5 basenji's or baskerville's
SeqNN.save wrote, a model_dir, or a checkpoint prefix), as a basenji user passes
`params.json model_best.h5`. The second is built from the plan and checkpoint that
`python -m export` restores (train/exporting.py) and the model's own serving graph,
its ensemble included, without writing an export: both ways run the graph TF Serving
would, each in a TF1 session of its own.

Every command reads the network as the `onehot` signature: float32 one-hot
[n, seq_length, 4] -> [n, bins, targets]. With --saved_model, --ensemble_rc and
--ensemble_shifts average here, around that signature, as basenji's build_ensemble does
(an export holds no strand pairs, so reverse-complemented predictions keep their target
order; export with the flags to have a params file's strand_pair applied).
"""

import queue
import shutil
import tempfile
import threading

import numpy as np
import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.train import exporting

# Batches built ahead of the network by predict_batches' producer thread.
PREFETCH_BATCHES = 2


def load(saved_model='', params_file='', checkpoint='', head='', ensemble_rc=False,
         ensemble_shifts=(0,), batch_size=8, gelu='tanh'):
  """-> SequenceModel, from an export or from a params file and its checkpoint."""
  shifts = tuple(int(s) for s in ensemble_shifts) or (0,)
  if batch_size <= 0:
    raise UserError('--batch_size=%d must be positive.' % batch_size)
  if bool(saved_model) == bool(params_file):
    raise UserError('pass the model either as --saved_model=DIR (an export) or as '
                    '--params_file=params.json with --checkpoint=PATH; %s.' % (
                        'both are set' if saved_model else 'neither is set'))
  if saved_model:
    if checkpoint or head:
      raise UserError('--%s is read with --params_file; --saved_model=%s holds its '
                      'weights and head: leave it out.' % (
                          'checkpoint' if checkpoint else 'head', saved_model))
    path = files.saved_model_version(saved_model)
    session, inputs, outputs = _load_export(path)
    return SequenceModel(session, inputs, outputs, path, path, ensemble_rc, shifts,
                         batch_size)
  if not checkpoint:
    raise UserError('--params_file=%s needs --checkpoint: the .h5 basenji\'s SeqNN.save '
                    'wrote, a model_dir or a checkpoint.' % params_file)
  overrides = {'params_file': params_file, 'head': head, 'gelu': gelu,
               'ensemble_rc': bool(ensemble_rc),
               'ensemble_shifts': ','.join(str(s) for s in shifts)}
  scratch = tempfile.mkdtemp(prefix='model-source-')
  try:
    plan, ckpt = exporting.restore_plan('', checkpoint, scratch, '', overrides)
    session, inputs, outputs = _build(plan, ckpt)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  # The ensemble is in the graph, as in an export of these flags.
  return SequenceModel(session, inputs, outputs, checkpoint,
                       '%s with %s' % (params_file, checkpoint), batch_size=batch_size)


def _load_export(path):
  """An export's `onehot` signature in a session of its own: (session, in, out)."""
  graph = tf.Graph()
  session = tf.compat.v1.Session(graph=graph)
  try:
    with graph.as_default():
      meta = tf.compat.v1.saved_model.load(session, [tf.saved_model.SERVING], path)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    raise UserError('--saved_model=%s does not load (%s).'
                    % (path, short_tf_message(e)))
  signatures = meta.signature_def
  if network.ONEHOT_SIGNATURE not in signatures:
    raise UserError('--saved_model=%s has no %r signature (it has %s): export a '
                    'sequence model (--model_name=seqnn).' % (
                        path, network.ONEHOT_SIGNATURE, ', '.join(sorted(signatures))))
  signature = signatures[network.ONEHOT_SIGNATURE]
  return (session, graph.get_tensor_by_name(signature.inputs['sequence'].name),
          graph.get_tensor_by_name(signature.outputs[network.PREDICTIONS].name))


def _build(plan, checkpoint):
  """The model's serving graph (its ensemble included) fed by a one-hot placeholder,
  built by the model's own code as the export builds it, and restored."""
  seq_length = plan.data.params['model']['seq_length']
  graph = tf.Graph()
  with graph.as_default():
    onehot = tf.compat.v1.placeholder(tf.float32, [None, seq_length, 4], 'onehot')
    model = plan.spec.build(is_training=False, num_classes=plan.num_classes,
                            **plan.model_params)
    features = {'sequence': onehot}
    outputs = model.postprocess(model.predict(model.preprocess(features)))
    outputs, _ = model.serving_outputs(features, outputs)
    saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables())
    session = tf.compat.v1.Session(graph=graph)
    saver.restore(session, checkpoint)
  graph.finalize()
  return session, onehot, outputs[network.PREDICTIONS]


class SequenceModel:
  """A sequence model's one-hot -> predictions graph, its shapes, batched prediction.

  Attributes:
    seq_length, bins, num_targets: Its input length and output shape.
    path: The export's version directory, or the checkpoint given with a params file.
    source: How messages name it.
  """

  def __init__(self, session, inputs, outputs, path, source, ensemble_rc=False,
               ensemble_shifts=(0,), batch_size=8):
    self.path, self.source = path, source
    self._session, self._inputs, self._outputs = session, inputs, outputs
    self.seq_length = int(inputs.shape[1])
    self.bins, self.num_targets = int(outputs.shape[1]), int(outputs.shape[2])
    self.ensemble_rc = bool(ensemble_rc)
    self.ensemble_shifts = tuple(ensemble_shifts) or (0,)
    self.batch_size = batch_size

  def _run(self, one_hot):
    try:
      return self._session.run(self._outputs, {self._inputs: one_hot})
    except (tf.errors.OpError, ValueError) as e:
      raise UserError('the model %s failed on a batch of shape %s: %s' % (
          self.source, list(np.shape(one_hot)), short_tf_message(e)))

  def _ensemble(self, one_hot):
    """basenji's build_ensemble: shifted (zero padded) and reverse-complemented
    copies in one batch, their predictions flipped back and averaged."""
    copies = []
    for shift in self.ensemble_shifts:
      shifted = shift_one_hot(one_hot, shift)
      copies.append(shifted)
      if self.ensemble_rc:
        copies.append(shifted[:, ::-1, ::-1])
    preds = self._run(np.concatenate(copies)).reshape(
        (len(copies), len(one_hot), self.bins, self.num_targets))
    if self.ensemble_rc:
      preds[1::2] = preds[1::2, :, ::-1]
    return preds.mean(axis=0, dtype=np.float32)

  def _predict_one(self, one_hot):
    if self.ensemble_rc or self.ensemble_shifts != (0,):
      return self._ensemble(one_hot)
    return self._run(one_hot)

  def predict(self, one_hot):
    """float32 [n, seq_length, 4] -> float32 [n, bins, targets], --batch_size at a
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
