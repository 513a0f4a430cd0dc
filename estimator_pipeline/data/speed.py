"""Input-side speed: batches stacked for several steps per call, and a private pool.

  python train.py --model_name=cifarnet --steps_per_loop=20 --data_threads=2 ...

`stack_batches` feeds models/loops.py's in-graph training loop; `with_data_threads`
gives tf.data a thread pool of its own, so decoding and the training step stop queueing
behind each other on the shared inter-op threads.
"""

import tensorflow as tf


def stack_batches(input_fn, steps_per_loop):
  """input_fn yielding batches -> input_fn yielding `steps_per_loop` batches stacked.

  Every tensor gains a leading dimension of steps_per_loop; the body of the training
  loop takes slice i of each. The source must have a static batch size (training
  batches drop the remainder).
  """
  if steps_per_loop <= 1:
    return input_fn

  def stacked_input_fn(params=None, input_context=None):
    dataset = input_fn(params=params, input_context=input_context)
    return dataset.batch(steps_per_loop, drop_remainder=True).prefetch(1)

  return stacked_input_fn


def with_data_threads(input_fn, data_threads):
  """Runs the dataset on a private pool of `data_threads` threads (0: the shared pool).

  By default tf.data's parallel map shares the session's inter-op threads with the
  training step; a pool of its own stops the two from queueing behind each other.
  """
  if not data_threads:
    return input_fn

  def threaded_input_fn(params=None, input_context=None):
    dataset = input_fn(params=params, input_context=input_context)
    options = tf.data.Options()
    options.threading.private_threadpool_size = data_threads
    return dataset.with_options(options)

  return threaded_input_fn
