"""baskerville's own training loop, timed step by step (run in the peer virtualenv).

What hound_train.py does with one data directory, for one epoch of WARMUP + STEPS
batches, with a clock on each step and nothing else changed: `fit` is its --keras_fit
path (Trainer.fit_keras, Keras model.fit with its callbacks), `tape` the default
(Trainer.fit_tape, a tf.GradientTape step per batch). Prints {"examples_per_sec": ...}
over the steps after WARMUP. Imports only the standard library, TensorFlow and
baskerville: bench/seqnn_peer.py runs it with the virtualenv's python.

  python bench/peer_baskerville.py tape OUT_DIR params.json DATA_DIR 3 12
"""

import json
import os
import sys
import time


def main(mode, out_dir, params_file, data_dir, warmup, steps):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from baskerville import dataset  # pylint: disable=g-import-not-at-top
  from baskerville import seqnn  # pylint: disable=g-import-not-at-top
  from baskerville import trainer  # pylint: disable=g-import-not-at-top
  with open(params_file) as f:
    params = json.load(f)
  params_train = dict(params['train'], train_epochs_min=1, train_epochs_max=1)
  params_model = dict(params['model'], strand_pair=[])
  batch = params_train['batch_size']
  total = warmup + steps
  os.makedirs(out_dir, exist_ok=True)
  # As hound_train.py builds them.
  train_data = dataset.SeqDataset(data_dir, split_label='train', batch_size=batch,
                                  shuffle_buffer=params_train.get('shuffle_buffer', 128),
                                  mode='train')
  eval_data = dataset.SeqDataset(data_dir, split_label='valid', batch_size=batch,
                                 mode='eval')
  model = seqnn.SeqNN(params_model)
  seqnn_trainer = trainer.Trainer(params_train, [train_data], [eval_data], out_dir,
                                  os.path.join(out_dir, 'logs'))
  seqnn_trainer.compile(model)
  # One epoch of exactly `total` batches; its evaluation (after the clock) one batch.
  seqnn_trainer.train_epoch_batches = [total]
  seqnn_trainer.eval_epoch_batches = [1]
  times = []
  if mode == 'tape':
    # fit_tape fetches each batch through trainer.safe_next right before its step: the
    # time of fetch k + 1 is when step k ended.
    safe_next = trainer.safe_next

    def timed_next(iterator, *args, **kwargs):
      times.append(time.perf_counter())
      return safe_next(iterator, *args, **kwargs)
    trainer.safe_next = timed_next
    seqnn_trainer.fit_tape(model)
    start, end = times[warmup], times[total - 1]
    measured = total - 1 - warmup
  else:
    class Clock(tf.keras.callbacks.Callback):

      def on_train_batch_end(self, batch_index, logs=None):
        times.append(time.perf_counter())

    fit = model.model.fit

    def timed_fit(*args, **kwargs):
      kwargs['callbacks'] = list(kwargs.get('callbacks') or []) + [Clock()]
      return fit(*args, **kwargs)
    model.model.fit = timed_fit
    seqnn_trainer.fit_keras(model)
    start, end = times[warmup - 1], times[total - 1]
    measured = steps
  print(json.dumps({'examples_per_sec': measured * batch / (end - start)}))


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
       int(sys.argv[6]))
