"""The `integrated_gradients` serving signature: attributions computed inside the graph.

  saved_model_cli run --dir runs/cage/export/best/<version> \
      --signature_def integrated_gradients \
      --input_exprs 'sequence=["ACGT..."];target_index=[0]'

Integrated gradients of one target's prediction summed over bins, of the network
itself (an export's test-time ensemble is not looped over), from an all-zero baseline, by Gauss-Legendre quadrature of IG_STEPS nodes on the path (captum's default
rule; export.attribution --method=ig --steps=IG_STEPS computes the same numbers).
The steps run in a loop inside the graph, one network pass per step, so a request
costs IG_STEPS forward and backward passes of its batch. Outputs:

  attributions  float32 [N, L, 4]: one-hot x mean path gradient (zero off the base)
  hypothetical  float32 [N, L, 4]: the mean path gradient (TF-MoDISco's hypothetical
                contributions for a zero baseline)
  scores        float32 [N, L]: attributions summed over the bases
"""

import numpy as np
import tensorflow as tf

IG_SIGNATURE = 'integrated_gradients'
IG_STEPS = 50


def quadrature(steps):
  """Gauss-Legendre nodes and weights on [0, 1] (the weights sum to 1)."""
  nodes, weights = np.polynomial.legendre.leggauss(steps)
  return ((nodes + 1) / 2).astype(np.float32), (weights / 2).astype(np.float32)


def integrated_gradients(predict, onehot, target_index, steps=IG_STEPS):
  """-> {output: tensor} of the signature.

  predict: one-hot [n, L, 4] -> predictions [n, bins, targets] of the network,
  sharing the serving graph's variables; target_index: int32 [n].
  """
  alphas, weights = quadrature(steps)
  alphas, weights = tf.constant(alphas), tf.constant(weights)
  target_index = tf.cast(target_index, tf.int32)

  def body(step, total):
    point = tf.gather(alphas, step) * onehot
    chosen = tf.gather(predict(point), target_index, axis=2, batch_dims=1)
    gradient = tf.gradients(tf.reduce_sum(chosen), point)[0]
    return step + 1, total + tf.gather(weights, step) * gradient

  _, mean_gradient = tf.compat.v1.while_loop(
      lambda step, _: step < steps, body, (tf.constant(0), tf.zeros_like(onehot)),
      name='integrated_gradients')
  attributions = tf.identity(onehot * mean_gradient, name='ig_attributions')
  return {'attributions': attributions,
          'hypothetical': tf.identity(mean_gradient, name='ig_hypothetical'),
          'scores': tf.reduce_sum(attributions, axis=-1, name='ig_scores')}
