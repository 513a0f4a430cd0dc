"""Schedules, optimizers and the train op: numbers checked against their formulas.

  .venv/bin/python -m pytest -q tests/test_optimization.py
"""

import math

import numpy as np
import pytest

import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.models import optimization
from estimator_pipeline.models.optimization import TrainOptions


def _lr(options, steps):
  with tf.Graph().as_default():
    step = tf.compat.v1.placeholder(tf.int64, [])
    lr = optimization.learning_rate(options, step)
    with tf.compat.v1.Session() as sess:
      return [float(sess.run(lr, {step: s})) for s in steps]


def test_schedules_follow_their_formulas_in_graph_mode():
  steps = [0, 99, 100, 250, 1000, 2000]
  const = _lr(TrainOptions(lr_schedule='constant', learning_rate=0.1), steps)
  np.testing.assert_allclose(const, [0.1] * len(steps), rtol=1e-6)
  exp = _lr(TrainOptions(lr_schedule='exponential', learning_rate=0.1,
                         decay_steps=100, decay_rate=0.5), steps)
  np.testing.assert_allclose(exp, [0.1 * 0.5 ** (s // 100) for s in steps], rtol=1e-5)
  poly = _lr(TrainOptions(lr_schedule='polynomial', learning_rate=0.1,
                          decay_steps=1000, end_learning_rate=0.01), steps)
  np.testing.assert_allclose(
      poly, [0.01 + 0.09 * (1 - min(s, 1000) / 1000) for s in steps], rtol=1e-5)
  cos = _lr(TrainOptions(lr_schedule='cosine', learning_rate=0.1, decay_steps=1000,
                         end_learning_rate=0.0), steps)
  np.testing.assert_allclose(
      cos, [0.05 * (1 + math.cos(math.pi * min(s, 1000) / 1000)) for s in steps],
      rtol=1e-5, atol=1e-7)
  piece = _lr(TrainOptions(lr_schedule='piecewise', lr_boundaries=(100, 1000),
                           lr_values=(0.1, 0.01, 0.001)), steps)
  np.testing.assert_allclose(piece, [0.1, 0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


def test_warmup_ramps_linearly_then_the_schedule_starts():
  options = TrainOptions(lr_schedule='cosine', learning_rate=0.2, decay_steps=1000,
                         warmup_steps=100)
  values = _lr(options, [0, 25, 50, 100, 600, 1100, 1500])
  np.testing.assert_allclose(values[:3], [0.0, 0.05, 0.1], rtol=1e-5, atol=1e-7)
  # The decay starts where warmup ends, so the peak is --learning_rate.
  np.testing.assert_allclose(values[3], 0.2, rtol=1e-5)
  np.testing.assert_allclose(values[4], 0.1, rtol=1e-4)
  np.testing.assert_allclose(values[5:], [0.0, 0.0], atol=1e-7)


def test_piecewise_values_default_to_decay_rate_steps():
  cfg = config.Config(model_dir='m', train_record_path='t', lr_schedule='stepwise',
                      lr_boundaries='10, 20', learning_rate=0.1, decay_rate=0.1)
  options = TrainOptions.from_config(cfg)
  assert options.lr_schedule == 'piecewise'
  assert options.lr_boundaries == (10, 20)
  np.testing.assert_allclose(options.lr_values, [0.1, 0.01, 0.001])


def _linear_problem(seed=0, n=16):
  rng = np.random.RandomState(seed)
  x = rng.normal(size=(n, 3)).astype(np.float32)
  y = (x @ np.array([[1.5], [-2.0], [0.5]], np.float32) + 0.3 +
       rng.normal(0, 0.1, (n, 1)).astype(np.float32))
  return x, y


def _linear_graph(options, batch):
  """A linear model on a placeholder batch; returns (x, y, train_op, w, b, step)."""
  x = tf.compat.v1.placeholder(tf.float32, [batch, 3])
  y = tf.compat.v1.placeholder(tf.float32, [batch, 1])
  w = tf.compat.v1.get_variable('w', initializer=tf.constant([[0.1], [0.2], [-0.3]]))
  b = tf.compat.v1.get_variable('b', initializer=tf.constant([0.05]))
  loss = tf.reduce_mean(tf.square(tf.matmul(x, w) + b - y))
  step = tf.compat.v1.train.get_or_create_global_step()
  lr = optimization.learning_rate(options, step)
  train_op = optimization.build_train_op(loss, options, lr, step, [w, b],
                                         summaries=False)
  return x, y, train_op, w, b, step


def _train(options, batches):
  """Runs one train op per batch; returns (w, b, global step, losses)."""
  with tf.Graph().as_default():
    x, y, train_op, w, b, step = _linear_graph(options, len(batches[0][0]))
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.local_variables_initializer()])
      losses = [sess.run(train_op, {x: bx, y: by}) for bx, by in batches]
      return sess.run(w), sess.run(b), sess.run(step), losses


@pytest.mark.parametrize('name', ['sgd', 'momentum', 'rmsprop', 'adam', 'adamw'])
def test_gradient_accumulation_equals_one_large_batch(name):
  x, y = _linear_problem(n=16)
  common = dict(optimizer=name, learning_rate=0.05, lr_schedule='constant',
                clip_gradient_norm=1.0, decoupled_weight_decay=0.1)
  # Two updates, so optimizer state (momentum, Adam moments) is carried over too.
  big_batches = [(x, y), (x[::-1], y[::-1])]
  big_w, big_b, big_step, _ = _train(TrainOptions(**common), big_batches)
  micro = [(bx[i:i + 4], by[i:i + 4]) for bx, by in big_batches
           for i in range(0, 16, 4)]
  acc_w, acc_b, acc_step, _ = _train(TrainOptions(grad_accum_steps=4, **common), micro)
  assert big_step == 2 and acc_step == 2
  np.testing.assert_allclose(acc_w, big_w, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(acc_b, big_b, rtol=1e-5, atol=1e-6)
  # It trained at all (a test of equality between two no-ops proves nothing).
  assert not np.allclose(big_w, [[0.1], [0.2], [-0.3]])


def test_global_step_advances_once_per_accumulated_update():
  x, y = _linear_problem(n=4)
  options = TrainOptions(optimizer='sgd', learning_rate=0.1, lr_schedule='constant',
                         grad_accum_steps=3)
  with tf.Graph().as_default():
    xp, yp, train_op, w, _, step = _linear_graph(options, 4)
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.local_variables_initializer()])
      seen = []
      for _ in range(7):
        before = sess.run(w)
        sess.run(train_op, {xp: x, yp: y})
        seen.append((int(sess.run(step)), not np.array_equal(before, sess.run(w))))
  assert seen == [(0, False), (0, False), (1, True), (1, False), (1, False),
                  (2, True), (2, False)]


def test_clip_gradient_norm_bounds_the_update():
  x, y = _linear_problem(n=16)
  y = y * 100  # A large gradient.
  w0 = np.array([[0.1], [0.2], [-0.3]])
  for clip, expect_norm in ((0.0, None), (0.5, 0.5)):
    options = TrainOptions(optimizer='sgd', learning_rate=1.0, lr_schedule='constant',
                           clip_gradient_norm=clip)
    w, b, _, _ = _train(options, [(x, y)])
    norm = math.sqrt(float(np.sum((w - w0) ** 2) + (b[0] - 0.05) ** 2))
    if expect_norm is None:
      assert norm > 10
    else:
      np.testing.assert_allclose(norm, expect_norm, rtol=1e-5)


def test_adamw_decays_weights_but_not_biases():
  # A loss with zero gradient: only the decoupled decay moves the variables.
  options = TrainOptions(optimizer='adamw', learning_rate=0.1, lr_schedule='constant',
                         decoupled_weight_decay=0.5)
  with tf.Graph().as_default():
    w = tf.compat.v1.get_variable('w', initializer=tf.ones([2, 2]))
    b = tf.compat.v1.get_variable('b', initializer=tf.ones([2]))
    loss = 0.0 * (tf.reduce_sum(w) + tf.reduce_sum(b))
    step = tf.compat.v1.train.get_or_create_global_step()
    op = optimization.build_train_op(loss, options, tf.constant(0.1), step, [w, b],
                                     summaries=False)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(op)
      np.testing.assert_allclose(sess.run(w), np.full([2, 2], 1 - 0.1 * 0.5), rtol=1e-6)
      np.testing.assert_allclose(sess.run(b), [1.0, 1.0])


def test_moving_averages_follow_the_slim_formula():
  x, y = _linear_problem(n=8)
  options = TrainOptions(optimizer='sgd', learning_rate=0.1, lr_schedule='constant',
                         moving_average_decay=0.99)
  with tf.Graph().as_default():
    xp, yp, train_op, w, _, step = _linear_graph(options, 8)
    shadow = [v for v in tf.compat.v1.global_variables()
              if v.op.name == 'w/ExponentialMovingAverage']
    assert shadow, [v.op.name for v in tf.compat.v1.global_variables()]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      expected = sess.run(w)
      for _ in range(3):
        sess.run(train_op, {xp: x, yp: y})
        s = sess.run(step)  # The average moves after the update, at the new step.
        decay = min(0.99, (1.0 + s) / (10.0 + s))
        expected = decay * expected + (1 - decay) * sess.run(w)
      np.testing.assert_allclose(sess.run(shadow[0]), expected, rtol=1e-5)
      assert not np.allclose(sess.run(shadow[0]), sess.run(w))
