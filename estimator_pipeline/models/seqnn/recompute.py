"""--recompute_trunk: gradient checkpointing of the SeqNN's trunk in graph mode.

Each trunk block (each repetition of a tower, models/seqnn/blocks.py's
RECOMPUTED_BY_REPETITION) keeps its input and output only; the backward pass builds
it again, once the gradient of its output exists, and differentiates that.

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import layers, recompute
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [2, 64, 4])
    ctx = layers.Context(True, recompute=True)
    y = recompute.recomputed(ctx, lambda x, c: layers.conv1d(x, 8, 5, ctx=c), x)
    print(y, tf.gradients(tf.reduce_sum(y), x))"

Why not tf.recompute_grad: its recomputation is meant to wait for the output's
gradient through a data dependency, x + where(g == g, 0, nan). In a TF1 graph `==`
between two tensors is Python's identity test, so the condition is the constant True,
nothing makes the recomputation wait, and the session runs it during the forward
pass: every activation is kept anyway (peak memory unchanged; bench/CHANGES.md 13).
Here the recomputation's input waits for the gradient by a control dependency.
"""

import tensorflow as tf

from estimator_pipeline.models.seqnn import layers

v1 = tf.compat.v1

# The name scope of every recomputation (tests find its ops by it).
SCOPE = 'recomputed'


def recomputed(ctx, fn, x):
  """fn(x, ctx) -> y, with ctx.recompute its activations kept only at x and y and
  recomputed in the backward pass. The recomputation must be the same function: its
  dropout takes stateless seeds drawn once per step, and only the forward build adds
  the batch-norm updates. The representations fn adds to ctx.reprs (a tower's, for the
  U-net blocks) are outputs of the checkpoint too: a gradient that reached them
  through the forward build would keep its activations and differentiate it twice."""
  if not (ctx.recompute and ctx.is_training):
    return fn(x, ctx)
  scope = v1.get_variable_scope()
  seed = tf.random.uniform([2], maxval=2 ** 31 - 1, dtype=tf.int64)
  earlier = list(ctx.reprs)  # as the forward build sees them, in both builds
  builds = []

  def block(inputs):
    inner = layers.Context(ctx.is_training, ctx.gelu, list(earlier), ctx.adapters)
    inner.seed, inner.updates = seed, not builds
    builds.append(inner)
    with v1.variable_scope(scope, reuse=v1.AUTO_REUSE, auxiliary_name_scope=False):
      y = fn(inputs, inner)
    return [y] + inner.reprs[len(earlier):]

  outputs = checkpointed(block, x)
  ctx.reprs.extend(outputs[1:])
  return outputs[0]


def checkpointed(fn, x):
  """fn(x) (a list of tensors) whose gradient rebuilds fn on x once the gradients of
  its outputs are known."""

  @tf.custom_gradient
  def forward(inputs):
    outputs = fn(inputs)

    def backward(*d_outputs, variables=None):
      variables = list(variables or [])
      with tf.name_scope(SCOPE):
        # The control dependency is what makes this a recomputation: without it the
        # session may run fn(again) as soon as `inputs` exists, in the forward pass.
        with tf.control_dependencies(d_outputs[:1]):
          again = tf.identity(inputs)
        # An output nothing downstream reads gets tf.gradients' ZerosLike, which
        # would run (and hold a zero tensor) as soon as the output exists: leave it.
        used = [(y, d) for y, d in zip(fn(again), d_outputs)
                if d.op.type != 'ZerosLike']
        grads = tf.gradients([y for y, _ in used], [again] + variables,
                             grad_ys=[d for _, d in used],
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)
      return grads[0], grads[1:]

    return outputs, backward

  return forward(x)
