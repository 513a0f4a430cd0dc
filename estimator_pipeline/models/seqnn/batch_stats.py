"""A training batch's statistics for batch normalization (layers.normalize): op by op,
synchronized across replicas, or by TensorFlow's fused kernel.

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import batch_stats
  x = tf.random.normal([2, 64, 8])
  print(batch_stats.batch_moments(x, False)[1].shape)"
"""

import tensorflow as tf

v1 = tf.compat.v1


def batch_moments(x, synchronized):
  """Mean and (biased) variance over every axis but channels; with synchronized and a
  multi-replica strategy, over every replica's batch (Keras' synchronized
  BatchNormalization: the replicas' sums, squared sums and counts all-reduced)."""
  axes = list(range(x.shape.rank - 1))
  replica = tf.distribute.get_replica_context() if synchronized else None
  if replica is None or replica.num_replicas_in_sync <= 1:
    return tf.nn.moments(x, axes=axes)
  count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), x.dtype)
  total = replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(x, axes))
  squares = replica.all_reduce(tf.distribute.ReduceOp.SUM,
                               tf.reduce_sum(tf.square(x), axes))
  count = replica.all_reduce(tf.distribute.ReduceOp.SUM, count)
  mean = total / count
  return mean, squares / count - tf.square(mean)


# Training-mode batch norm as one fused kernel (forward and backward) instead of the
# dozen elementwise ops and reductions of moments + batch_normalization, which took
# about 44% of a params_small step's op time on 2 CPU cores (bench/CHANGES.md).
# The same numbers to float32 rounding; False restores the op-by-op form.
FUSED_BATCH_NORM = True


def synchronized(norm_type):
  """Whether batch statistics are pooled across replicas (batch-sync under a strategy
  with several): then they are computed op by op (batch_moments)."""
  if norm_type != 'batch-sync':
    return False
  replica = tf.distribute.get_replica_context()
  return replica is not None and replica.num_replicas_in_sync > 1


def fused_batch_norm(x, scale, offset, epsilon):
  """(normalized x, batch mean, biased batch variance) of x [..., C] over every axis
  but the last, by FusedBatchNorm on x seen as [batch, 1, -1, C].

  The kernel returns the unbiased variance (for its own moving averages); Keras'
  BatchNormalization on 3-D inputs (basenji's, never fused) averages the biased one,
  so it is scaled back by (n - 1) / n.
  """
  shape = tf.shape(x)
  y, mean, var = v1.nn.fused_batch_norm(
      tf.reshape(x, [shape[0], 1, -1, x.shape[-1]]), scale, offset, epsilon=epsilon,
      is_training=True)
  count = tf.cast(tf.reduce_prod(shape[:-1]), var.dtype)
  biased = var * (count - 1.0) / tf.maximum(count, 1.0)
  y = tf.reshape(y, shape)
  y.set_shape(x.shape)
  return y, mean, biased
