"""Streaming evaluation metrics for sequence models, as basenji defines them.

Pearson R and R2 are per target, accumulated over every batch and every position
(basenji/metrics.py PearsonR and R2): sums of y, y^2, yhat, yhat^2, y*yhat and the count
live in local metric variables, so an Estimator evaluation gives the value over the
whole evaluation set, not a mean of batch values. TensorBoard gets the mean over
targets as a scalar and every target's value in a text summary:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models.seqnn import metrics
  with tf.Graph().as_default():
    y = tf.random.uniform([2, 8, 3]); r, update = metrics.pearson_r(y, 2 * y)
    with tf.compat.v1.Session() as s:
      s.run(tf.compat.v1.local_variables_initializer()); s.run(update); print(s.run(r))"
"""

import numpy as np
import tensorflow as tf

v1 = tf.compat.v1


def _metric_variable(shape, name):
  return v1.Variable(tf.zeros(shape, tf.float32), trainable=False, name=name,
                     collections=[v1.GraphKeys.LOCAL_VARIABLES,
                                  v1.GraphKeys.METRIC_VARIABLES])


class _Moments:
  """Per-target sums over batch and length, updated by one op."""

  def __init__(self, labels, predictions, name):
    labels = tf.cast(labels, tf.float32)
    predictions = tf.cast(predictions, tf.float32)
    num_targets = int(predictions.shape[-1])
    axes = list(range(predictions.shape.rank - 1))
    with v1.variable_scope(None, default_name=name):
      sums = {
          'count': tf.cast(tf.reduce_prod(tf.shape(labels)[:-1]), tf.float32) *
                   tf.ones([num_targets]),
          'true_sum': tf.reduce_sum(labels, axes),
          'true_sumsq': tf.reduce_sum(tf.square(labels), axes),
          'pred_sum': tf.reduce_sum(predictions, axes),
          'pred_sumsq': tf.reduce_sum(tf.square(predictions), axes),
          'product': tf.reduce_sum(labels * predictions, axes),
      }
      self.vars = {k: _metric_variable([num_targets], k) for k in sums}
      self.update_op = tf.group(*[v1.assign_add(self.vars[k], sums[k]) for k in sums])


def _pearson_from(m):
  count = m['count']
  true_mean = tf.math.divide_no_nan(m['true_sum'], count)
  pred_mean = tf.math.divide_no_nan(m['pred_sum'], count)
  covariance = (m['product'] - true_mean * m['pred_sum'] - pred_mean * m['true_sum'] +
                count * true_mean * pred_mean)
  true_var = m['true_sumsq'] - count * tf.square(true_mean)
  pred_var = m['pred_sumsq'] - count * tf.square(pred_mean)
  return tf.math.divide_no_nan(covariance,
                               tf.sqrt(tf.maximum(true_var, 0.)) *
                               tf.sqrt(tf.maximum(pred_var, 0.)))


def _r2_from(m):
  true_mean = tf.math.divide_no_nan(m['true_sum'], m['count'])
  total = m['true_sumsq'] - m['count'] * tf.square(true_mean)
  resid = m['pred_sumsq'] - 2 * m['product'] + m['true_sumsq']
  return 1. - tf.math.divide_no_nan(resid, total)


def pearson_r(labels, predictions, name='pearsonr'):
  """-> (per-target Pearson R [num_targets], update_op), streaming."""
  moments = _Moments(labels, predictions, name)
  return _pearson_from(moments.vars), moments.update_op


def r2(labels, predictions, name='r2'):
  """-> (per-target R2 [num_targets], update_op), streaming (basenji's R2)."""
  moments = _Moments(labels, predictions, name)
  return _r2_from(moments.vars), moments.update_op


def auc_per_target(labels, predictions, curve='ROC', num_thresholds=1000, name=None):
  """-> (per-target AUC [num_targets], update_op) over batch and length."""
  num_targets = int(predictions.shape[-1])
  labels = tf.reshape(tf.cast(labels, tf.float32), [-1, num_targets])
  predictions = tf.reshape(tf.cast(predictions, tf.float32), [-1, num_targets])
  values, updates = [], []
  for t in range(num_targets):
    value, update = v1.metrics.auc(
        labels[:, t] > 0.5, tf.clip_by_value(predictions[:, t], 0., 1.),
        num_thresholds=num_thresholds, curve=curve,
        summation_method='careful_interpolation',
        name='%s_%d' % (name or curve.lower(), t))
    values.append(value)
    updates.append(update)
  return tf.stack(values), tf.group(*updates)


def per_target_text(tag, values, target_names=None):
  """A serialized text summary: one '| target | value |' row per target.

  An Estimator writes an evaluation metric whose value is a serialized Summary as it
  is, so this shows per target in TensorBoard's Text tab beside the scalar mean.
  """
  num = int(values.shape[0])
  names = tf.constant(list(target_names) if target_names else
                      [str(i) for i in range(num)])
  rows = tf.strings.join(['| ', names, ' | ',
                          tf.strings.as_string(values, precision=4), ' |'])
  table = tf.strings.reduce_join(
      tf.concat([['| target | %s |' % tag, '|---|---|'], rows], 0), separator='\n')
  return v1.summary.text(tag + '_per_target', table, collections=[])


def regression_metrics(labels, predictions, target_names=None):
  """eval_metric_ops: pearsonr and r2 (means over targets) + per-target text."""
  moments = _Moments(labels, predictions, 'pearsonr_r2')
  r = _pearson_from(moments.vars)
  r2_value = _r2_from(moments.vars)
  update = moments.update_op
  return {
      'pearsonr': (tf.reduce_mean(r), update),
      'r2': (tf.reduce_mean(r2_value), update),
      'pearsonr_per_target': (per_target_text('pearsonr', r, target_names), update),
      'r2_per_target': (per_target_text('r2', r2_value, target_names), update),
  }


def binary_metrics(labels, predictions, target_names=None):
  """eval_metric_ops for bce: auroc and auprc (means over targets) + per-target text."""
  roc, roc_update = auc_per_target(labels, predictions, 'ROC', name='auroc')
  pr, pr_update = auc_per_target(labels, predictions, 'PR', name='auprc')
  return {
      'auroc': (tf.reduce_mean(roc), roc_update),
      'auprc': (tf.reduce_mean(pr), pr_update),
      'auroc_per_target': (per_target_text('auroc', roc, target_names), roc_update),
      'auprc_per_target': (per_target_text('auprc', pr, target_names), pr_update),
  }


def poisson_loss(labels, predictions):
  """Keras Poisson (basenji's 'poisson'): mean(yhat - y * log(yhat + 1e-7))."""
  return tf.reduce_mean(predictions - labels * tf.math.log(predictions + 1e-7))


def mse_loss(labels, predictions):
  return tf.reduce_mean(tf.square(predictions - labels))


def bce_loss(labels, predictions):
  """Keras BinaryCrossentropy on probabilities (basenji's 'bce', sigmoid head)."""
  p = tf.clip_by_value(predictions, 1e-7, 1 - 1e-7)
  return -tf.reduce_mean(labels * tf.math.log(p) + (1 - labels) * tf.math.log(1 - p))


def _keras_poisson(labels, predictions, axis=None):
  return tf.reduce_mean(predictions - labels * tf.math.log(predictions + 1e-7),
                        axis=axis)


def poisson_multinomial_loss(labels, predictions, total_weight=1.0, weight_range=1.0,
                             weight_exp=1, epsilon=1e-7):
  """baskerville's poisson_mn: a Poisson term on each target's total over length
  (times total_weight) plus a multinomial term on how the total spreads over the
  positions, both per position (optionally weighted towards the center by
  weight_range > 1); the mean over batch and targets."""
  labels = tf.cast(labels, tf.float32)
  length = int(predictions.shape[1])
  if weight_range > 1:
    positions = tf.range(-(length / 2 - 0.5), length / 2 + 0.5, dtype=tf.float32)
    sigma = (length / 2 - 0.5) / np.log(weight_range) ** (1 / weight_exp)
    weights = tf.exp(-(positions / sigma) ** weight_exp)
    weights = (weights / tf.reduce_max(weights))[tf.newaxis, :, tf.newaxis]
  else:
    weights = tf.ones([1, length, 1])
  labels, predictions = labels * weights, predictions * weights
  true_total = tf.reduce_sum(labels, axis=-2)
  pred_total = tf.reduce_sum(predictions, axis=-2)
  poisson_term = (pred_total - true_total * tf.math.log(pred_total + epsilon)
                  ) / tf.reduce_sum(weights)
  shares = (predictions + epsilon) / pred_total[:, tf.newaxis, :]
  multinomial = tf.reduce_sum(-(labels + epsilon) * tf.math.log(shares), axis=-2)
  multinomial /= tf.reduce_sum(weights)
  return tf.reduce_mean(multinomial + total_weight * poisson_term)


def poisson_kl_loss(labels, predictions, spec_weight=1.0, epsilon=1e-7):
  """baskerville's poisson_kl: Poisson plus spec_weight x the KL divergence of the
  targets' shares at each position."""
  labels = tf.cast(labels, tf.float32)
  poisson_term = _keras_poisson(labels, predictions, axis=-1)
  labels, predictions = labels + epsilon, predictions + epsilon
  true_share = labels / tf.reduce_sum(labels, axis=-1, keepdims=True)
  pred_share = predictions / tf.reduce_sum(predictions, axis=-1, keepdims=True)
  true_share = tf.clip_by_value(true_share, 1e-7, 1.)
  pred_share = tf.clip_by_value(pred_share, 1e-7, 1.)
  kl_term = tf.reduce_sum(true_share * tf.math.log(true_share / pred_share), axis=-1)
  return tf.reduce_mean(poisson_term + spec_weight * kl_term)


def mse_udot_loss(labels, predictions, spec_weight=1.0):
  """basenji's mse_udot: MSE minus spec_weight x the mean product of targets and
  predictions centered across targets (a specificity term)."""
  labels = tf.cast(labels, tf.float32)
  mse_term = tf.reduce_mean(tf.square(predictions - labels), axis=-1)
  centered_true = labels - tf.reduce_mean(labels, axis=-1, keepdims=True)
  centered_pred = predictions - tf.reduce_mean(predictions, axis=-1, keepdims=True)
  udot_term = -tf.reduce_mean(centered_true * centered_pred, axis=-1)
  return tf.reduce_mean(mse_term + spec_weight * udot_term)


LOSSES = {'poisson': poisson_loss, 'mse': mse_loss, 'bce': bce_loss,
          'poisson_mn': poisson_multinomial_loss, 'poisson_kl': poisson_kl_loss,
          'mse_udot': mse_udot_loss}
# The train section keys each loss reads.
LOSS_PARAMS = {'poisson_mn': ('total_weight', 'weight_range', 'weight_exp'),
               'poisson_kl': ('spec_weight',), 'mse_udot': ('spec_weight',)}


def loss_params(name, train_section):
  """The keyword arguments of loss `name` that a params file's train section gives."""
  return {k: train_section[k] for k in LOSS_PARAMS.get(name, ()) if k in train_section}
