"""--recompute_trunk: gradient checkpointing of the SeqNN's trunk in graph mode.

Each trunk block (each repetition of a tower, models/seqnn/blocks.py's
RECOMPUTED_BY_REPETITION) goes through tf.recompute_grad: the forward pass keeps its
input and output only, and the backward pass builds it again to differentiate it.

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import layers, recompute
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 64, 4])
    ctx = layers.Context(True, recompute=True)
    y = recompute.recomputed(ctx, lambda x, c: layers.conv1d(x, 8, 5, ctx=c), x)
    print(y, tf.gradients(tf.reduce_sum(y), x))"
"""

import tensorflow as tf

from estimator_pipeline.models.seqnn import layers

v1 = tf.compat.v1


def recomputed(ctx, fn, x):
  """fn(x, ctx) -> y, with ctx.recompute its activations kept only at x and y and
  recomputed in the backward pass (tf.recompute_grad). The recomputation must be the
  same function: its dropout takes stateless seeds drawn once per step, and only the
  forward build adds the batch-norm updates."""
  if not (ctx.recompute and ctx.is_training):
    return fn(x, ctx)
  scope = v1.get_variable_scope()
  seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int64)
  builds = []

  def block(inputs):
    inner = layers.Context(ctx.is_training, ctx.gelu, ctx.reprs, ctx.adapters)
    inner.seed, inner.updates = seed, not builds
    builds.append(inner)
    with v1.variable_scope(scope, reuse=v1.AUTO_REUSE, auxiliary_name_scope=False):
      return fn(inputs, inner)

  return tf.recompute_grad(block)(x)
