"""Tests of the model registry, the slim nets behind the Model contract, and model_fn.

  .venv/bin/python -m pytest -q tests/test_models.py -p no:logging

Every registered slim net is built at its default size with slim's variable names, so a
published slim checkpoint loads into it and the documented head scopes are the ones to
exclude. The Model contract and model_fn are checked on cifarnet, in a session, against
numpy on the same numbers.
"""

import functools

import estimator_pipeline  # pylint: disable=unused-import  (compat fixes before TF)
import numpy as np
import pytest
import tensorflow as tf
import tf_slim as slim
from tf_slim.nets import resnet_v1

from estimator_pipeline.models import model_fn
from estimator_pipeline import models
from estimator_pipeline.data import image_ops as preprocessing
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import image_format

SLIM_NETS = (
    'alexnet_v2', 'cifarnet', 'inception_v1', 'inception_v2', 'inception_v3',
    'resnet_v1_50', 'resnet_v1_101', 'resnet_v1_152', 'resnet_v2_50', 'resnet_v2_101',
    'resnet_v2_152', 'vgg_16', 'vgg_19')
# A class count no slim net has in any other dimension's last axis, so a variable whose
# last axis is this long belongs to the classifier head.
NUM_CLASSES = 7


def _predict(spec, size, autograph=True, **build_kwargs):
  """spec's Model on a [2, size, size, 3] placeholder in the default graph."""
  model = spec.build(**build_kwargs)
  images = tf.compat.v1.placeholder(tf.float32, [2, size, size, 3])

  def build():
    return model.predict(model.preprocess({'image': images}))

  if not autograph:
    # tf_keras 2.15 takes its own legacy batch_norm layer for a user subclass and runs
    # autograph over every call, which makes building a batch-normalized net ~10x
    # slower; test_autograph_does_not_change_the_graph shows the graph is the same.
    build = tf.autograph.experimental.do_not_convert(build)
  return build()


@functools.lru_cache(maxsize=None)
def _built(name):
  """(prediction shapes, {variable name: shape}) of a net in training mode."""
  spec = models.get(name)
  with tf.Graph().as_default():
    prediction = _predict(spec, spec.default_image_size, autograph=False,
                          is_training=True, num_classes=NUM_CLASSES)
    shapes = {k: v.shape.as_list() for k, v in prediction.items()}
    variables = {v.op.name: v.shape.as_list()
                 for v in tf.compat.v1.global_variables()}
  return shapes, variables


def test_registry_names_every_slim_net():
  names = models.names()
  assert set(SLIM_NETS) <= set(names)
  # A net registered later must be added to SLIM_NETS, or the build test skips it.
  assert set(SLIM_NETS) == {n for n in names if models.get(n).layout == 'image'}
  assert names == sorted(names)
  for name in SLIM_NETS:
    spec = models.get(name)
    assert spec.name == name
    assert spec.preprocessing in preprocessing.FAMILIES
    assert spec.default_image_size > 0 and spec.head_scopes


def test_unknown_model_is_a_user_error_that_lists_the_known_ones():
  with pytest.raises(UserError) as e:
    models.get('nope')
  message = str(e.value)
  assert '--model_name=nope' in message
  for name in SLIM_NETS:
    assert name in message


@pytest.mark.parametrize('name', SLIM_NETS)
def test_net_builds_at_default_size_and_head_scopes_exist(name):
  spec = models.get(name)
  shapes, variables = _built(name)
  assert shapes['logits'] == [2, NUM_CLASSES]
  if 'aux_logits' in shapes:  # inception_v3 in training mode.
    assert shapes['aux_logits'] == [2, NUM_CLASSES]
  for scope in spec.head_scopes:
    assert [v for v in variables if model_fn.in_scopes(v, (scope,))], (
        '%s: head scope %s holds no variable' % (name, scope))
  # A checkpoint trained on another number of classes loads once the head scopes are
  # excluded only if every class-sized variable lies in one of them.
  class_sized = [v for v, shape in variables.items() if shape[-1] == NUM_CLASSES]
  assert class_sized
  assert [v for v in class_sized if not model_fn.in_scopes(v, spec.head_scopes)] == []


def _slim_resnet_v1_50_variables():
  with tf.Graph().as_default():
    images = tf.compat.v1.placeholder(tf.float32, [2, 224, 224, 3])
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
      tf.autograph.experimental.do_not_convert(resnet_v1.resnet_v1_50)(
          images, num_classes=NUM_CLASSES, is_training=True)
    return {v.op.name: v.shape.as_list() for v in tf.compat.v1.global_variables()}


def test_resnet_v1_50_has_slim_variable_names():
  # Built as model_fn builds it (autograph on), not through the faster _built path.
  spec = models.get('resnet_v1_50')
  with tf.Graph().as_default():
    _predict(spec, 224, is_training=True, num_classes=NUM_CLASSES)
    variables = {v.op.name: v.shape.as_list()
                 for v in tf.compat.v1.global_variables()}
  for name in ('resnet_v1_50/conv1/weights', 'resnet_v1_50/conv1/BatchNorm/moving_mean',
               'resnet_v1_50/conv1/BatchNorm/moving_variance',
               'resnet_v1_50/block1/unit_1/bottleneck_v1/shortcut/weights',
               'resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/gamma',
               'resnet_v1_50/logits/weights', 'resnet_v1_50/logits/biases'):
    assert name in variables, name
  assert variables['resnet_v1_50/logits/weights'] == [1, 1, 2048, NUM_CLASSES]
  reference = _slim_resnet_v1_50_variables()
  assert len(variables) == len(reference)
  assert variables == reference


def test_autograph_does_not_change_the_graph():
  # What justifies building the other nets with autograph off: the same ops come out.
  spec = models.get('resnet_v1_50')
  ops = []
  for autograph in (True, False):
    with tf.Graph().as_default() as graph:
      _predict(spec, 64, autograph=autograph, is_training=True, num_classes=3)
      ops.append([(op.name, op.type) for op in graph.get_operations()])
  assert ops[0] == ops[1]


def test_inception_v3_and_vgg_16_have_slim_variable_names():
  _, inception = _built('inception_v3')
  for name in ('InceptionV3/Conv2d_1a_3x3/weights',
               'InceptionV3/Conv2d_1a_3x3/BatchNorm/moving_mean',
               'InceptionV3/Mixed_5b/Branch_0/Conv2d_0a_1x1/weights',
               'InceptionV3/AuxLogits/Conv2d_1b_1x1/weights',
               'InceptionV3/AuxLogits/Conv2d_2b_1x1/weights',
               'InceptionV3/Logits/Conv2d_1c_1x1/weights'):
    assert name in inception, name
  _, vgg = _built('vgg_16')
  for name in ('vgg_16/conv1/conv1_1/weights', 'vgg_16/conv5/conv5_3/biases',
               'vgg_16/fc6/weights', 'vgg_16/fc8/weights', 'vgg_16/fc8/biases'):
    assert name in vgg, name
  assert vgg['vgg_16/fc8/weights'] == [1, 1, 4096, NUM_CLASSES]


def _softmax(logits):
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def test_cifarnet_model_contract_matches_numpy():
  num_classes = 10
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    model = models.get('cifarnet').build(is_training=False, num_classes=num_classes)
    images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    labels = tf.compat.v1.placeholder(tf.int64, [None])
    prediction = model.predict(model.preprocess({'image': images}))
    outputs = model.postprocess(prediction)
    losses = model.loss(prediction, labels)
    metrics = model.accuracy(outputs, labels)
    assert set(metrics) == {'accuracy', 'mean_per_class_accuracy', 'top_5_accuracy',
                            'confusion_matrix'}
    assert losses['loss'].shape.rank == 0
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.local_variables_initializer()])

      # The real forward pass: postprocess and loss agree with the logits it gives.
      batch_labels = np.arange(6) % num_classes
      logits, out, loss = sess.run(
          [prediction['logits'], outputs, losses['loss']],
          {images: rng.uniform(0, 255, [6, 32, 32, 3]), labels: batch_labels})
      assert logits.shape == (6, num_classes)
      np.testing.assert_array_equal(out['classes'], logits.argmax(axis=-1))
      np.testing.assert_allclose(out['probabilities'].sum(axis=-1), 1.0, rtol=1e-6)
      np.testing.assert_allclose(out['probabilities'], _softmax(logits), rtol=1e-5)
      assert np.isfinite(loss)
      expected = -np.log(_softmax(logits)[np.arange(6), batch_labels]).mean()
      np.testing.assert_allclose(loss, expected, rtol=1e-5)

      # Metrics on hand-made logits fed in place of the net's, over two batches, since
      # they must stream. Distinct values per row: ties would make top-5 ambiguous.
      batches = []
      for size in (12, 9):
        hand_logits = np.stack([rng.permutation(num_classes) for _ in range(size)])
        hand_logits = hand_logits.astype(np.float32) + rng.uniform(0, 0.5, (size, 1))
        hand_labels = rng.randint(0, num_classes, size)
        if not batches:
          # Every class appears, so "mean per class" has one meaning (TF counts a
          # class that never appeared as 0 in the mean).
          hand_labels[:num_classes] = np.arange(num_classes)
        batches.append((hand_logits, hand_labels))
        sess.run({k: update for k, (_, update) in metrics.items()},
                 {prediction['logits']: hand_logits, labels: hand_labels})
      values = sess.run({k: value for k, (value, _) in metrics.items()})

  all_logits = np.concatenate([b[0] for b in batches])
  all_labels = np.concatenate([b[1] for b in batches])
  assert set(all_labels) == set(range(num_classes))
  correct = all_logits.argmax(axis=-1) == all_labels
  per_class = [correct[all_labels == c].mean() for c in range(num_classes)]
  top5 = [label in np.argsort(-row)[:5] for row, label in zip(all_logits, all_labels)]
  # Hand-made numbers must not make the checks trivial.
  assert 0 < correct.mean() < 1 and 0 < np.mean(top5) < 1
  np.testing.assert_allclose(values['accuracy'], correct.mean(), rtol=1e-6)
  np.testing.assert_allclose(values['mean_per_class_accuracy'], np.mean(per_class),
                             rtol=1e-6)
  np.testing.assert_allclose(values['top_5_accuracy'], np.mean(top5), rtol=1e-6)
  # The confusion matrix streams too: an image and, for 10 classes, a counts table.
  summary = tf.compat.v1.Summary.FromString(values['confusion_matrix'])
  image, text = summary.value
  assert image.HasField('image') and text.HasField('tensor')
  table = tf.make_ndarray(text.tensor).item().decode()
  counts = [[int(c) for c in row.split('|')[2:-1]] for row in table.splitlines()[2:]]
  np.testing.assert_array_equal(
      counts, np.bincount(all_labels * num_classes + all_logits.argmax(axis=-1),
                          minlength=num_classes ** 2).reshape(num_classes, num_classes))


def test_no_top_5_accuracy_with_five_classes_or_fewer():
  with tf.Graph().as_default():
    model = models.get('cifarnet').build(is_training=False, num_classes=5)
    logits = tf.zeros([2, 5])
    metrics = model.accuracy(model.postprocess({'logits': logits}),
                             tf.constant([0, 1], tf.int64))
  assert set(metrics) == {'accuracy', 'mean_per_class_accuracy', 'confusion_matrix'}


CLASS_NAMES = ('a', 'b', 'c')


def _cifarnet_model_fn(**kwargs):
  return model_fn.make_model_fn(models.get('cifarnet'), num_classes=3, **kwargs)


def _batch(size, seed=0):
  """Images on the 0..255 scale and labels 0..2, as the input_fn gives them."""
  rng = np.random.RandomState(seed)
  labels = np.arange(size) % 3
  base = np.array([(220, 40, 40), (40, 200, 40), (40, 40, 220)], np.float32)[labels]
  images = base[:, None, None, :] + rng.normal(0, 25, (size, 32, 32, 3))
  return np.clip(images, 0, 255).astype(np.float32), labels.astype(np.int64)


def test_model_fn_predict_exports_classes_probabilities_and_names(tmp_path):
  images, _ = _batch(4)
  names_file = image_format.write_class_names(str(tmp_path), CLASS_NAMES, 3)
  with tf.Graph().as_default():
    features = {'image': tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])}
    spec = _cifarnet_model_fn(model_params={'class_names_file': names_file})(
        features, None, tf.estimator.ModeKeys.PREDICT)
    assert spec.train_op is None and spec.loss is None
    serving = spec.export_outputs[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY]
    assert isinstance(serving, tf.estimator.export.PredictOutput)
    assert set(serving.outputs) == {
        'classes', 'probabilities', 'class_names', 'top_k_classes',
        'top_k_probabilities', 'top_k_class_names'}
    # The names come from the file, registered for the export to copy into assets/.
    assert tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.ASSET_FILEPATHS)
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.tables_initializer()])
      out = sess.run(serving.outputs, {features['image']: images})
  assert out['probabilities'].shape == (4, 3)
  np.testing.assert_array_equal(out['classes'], out['probabilities'].argmax(axis=-1))
  expected = [CLASS_NAMES[c].encode() for c in out['classes']]
  assert list(out['class_names']) == expected


def test_model_fn_eval_reports_metrics_and_total_loss():
  images, labels = _batch(6)
  with tf.Graph().as_default():
    spec = _cifarnet_model_fn()({'image': tf.constant(images)}, tf.constant(labels),
                                tf.estimator.ModeKeys.EVAL)
    assert spec.train_op is None
    assert set(spec.eval_metric_ops) == {
        'accuracy', 'mean_per_class_accuracy', 'classification_loss',
        'regularization_loss', 'confusion_matrix'}
    with tf.compat.v1.Session() as sess:
      sess.run([tf.compat.v1.global_variables_initializer(),
                tf.compat.v1.local_variables_initializer()])
      sess.run({k: update for k, (_, update) in spec.eval_metric_ops.items()})
      values, loss = sess.run(
          [{k: value for k, (value, _) in spec.eval_metric_ops.items()}, spec.loss])
  # The confusion matrix is a serialized Summary (image + counts) for TensorBoard;
  # the Estimator renames its values confusion_matrix/0 and /1 in eval/.
  matrix = tf.compat.v1.Summary.FromString(values['confusion_matrix'])
  assert [v.WhichOneof('value') for v in matrix.value] == ['image', 'tensor']
  assert matrix.value[0].image.width > 0
  assert matrix.value[1].metadata.plugin_data.plugin_name == 'text'
  # cifarnet's fully connected layers carry weight decay, so there is one to add.
  assert values['regularization_loss'] > 0
  np.testing.assert_allclose(
      loss, values['classification_loss'] + values['regularization_loss'], rtol=1e-5)


def _variable(name):
  # By object, not by tensor name: 'x:0' of a resource variable is its handle.
  return [v for v in tf.compat.v1.global_variables() if v.op.name == name][0]


def test_model_fn_train_leaves_frozen_scopes_alone():
  images, labels = _batch(6)
  with tf.Graph().as_default():
    fn = _cifarnet_model_fn(scopes_to_freeze=('CifarNet/conv1',), learning_rate=0.05)
    spec = fn({'image': tf.constant(images)}, tf.constant(labels),
              tf.estimator.ModeKeys.TRAIN)
    assert spec.train_op is not None
    # The optimizer got no frozen variable: momentum makes a slot for each it trains.
    slots = [v.op.name for v in tf.compat.v1.global_variables()
             if v.op.name.endswith('/Momentum')]
    assert 'CifarNet/fc3/weights/Momentum' in slots
    assert 'CifarNet/conv2/weights/Momentum' in slots
    assert [s for s in slots if model_fn.in_scopes(s, ('CifarNet/conv1',))] == []

    watched = ('CifarNet/conv1/weights', 'CifarNet/conv1/biases',
               'CifarNet/fc3/weights')
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      before = sess.run({n: _variable(n) for n in watched})
      losses = [sess.run(spec.train_op) for _ in range(3)]
      after = sess.run({n: _variable(n) for n in watched})
      step = sess.run(tf.compat.v1.train.get_global_step())
  assert step == 3
  assert all(np.isfinite(losses))
  np.testing.assert_array_equal(after['CifarNet/conv1/weights'],
                                before['CifarNet/conv1/weights'])
  np.testing.assert_array_equal(after['CifarNet/conv1/biases'],
                                before['CifarNet/conv1/biases'])
  assert not np.array_equal(after['CifarNet/fc3/weights'],
                            before['CifarNet/fc3/weights'])


@pytest.mark.parametrize('name, expected', [
    ('a/b', True),
    ('a/b/c', True),
    ('a/b:0', True),
    ('a/b/c/d:0', True),
    ('a/bc/d', False),
    ('a/bc', False),
    ('x/a/b/c', False),
    ('a', False),
])
def test_in_scopes(name, expected):
  assert model_fn.in_scopes(name, ('a/b',)) is expected


def test_in_scopes_takes_scopes_literally():
  # A '.' in a scope is not a regex wildcard.
  assert not model_fn.in_scopes('axb/c', ('a.b',))
  assert model_fn.in_scopes('a.b/c', ('a.b',))
  assert model_fn.in_scopes('q/r', ('a/b', 'q'))
  assert not model_fn.in_scopes('a/b', ())
