"""Model -> EstimatorSpec: losses, train op, warm start, frozen scopes, summaries,
eval metrics and export outputs.

`make_model_fn` binds everything a run decided (model, optimizer, warm-start map, frozen
scopes) and returns the model_fn the Estimator calls in every mode:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import model_fn, models
  fn = model_fn.make_model_fn(models.get('cifarnet'), num_classes=10)
  print(fn)"
"""

import re

import tensorflow as tf
import tf_slim

from estimator_pipeline import optimization

PREDICT = tf.estimator.ModeKeys.PREDICT
TOTAL_LOSS_NAME = 'pipeline/total_loss'
LEARNING_RATE_NAME = 'pipeline/learning_rate'
TRAIN = tf.estimator.ModeKeys.TRAIN


def in_scopes(name, scopes):
  """True if a variable or op name lies in one of the scopes ('a/b' holds 'a/b/c:0')."""
  return any(re.match(re.escape(s) + r'(/|:|$)', name) for s in scopes)


def variables_to_train(all_trainable, trainable_scopes=(), scopes_to_freeze=()):
  """slim's --trainable_scopes (keep only these) minus --scopes_to_freeze."""
  chosen = [v for v in all_trainable
            if (not trainable_scopes or in_scopes(v.op.name, trainable_scopes))
            and not in_scopes(v.op.name, scopes_to_freeze)]
  return chosen


def make_model_fn(spec, *, num_classes, model_params=None, optimizer='momentum',
                  learning_rate=0.01, decay_steps=1000, decay_rate=0.94, momentum=0.9,
                  warm_start_checkpoint=None, warm_start_map=None, trainable_scopes=(),
                  scopes_to_freeze=(), class_names=None, clip_gradient_norm=0.0):
  """Builds the Estimator model_fn for a registered model.

  Args:
    spec: the models.ModelSpec to build.
    num_classes: classes of a classifier.
    model_params: extra keyword arguments for the Model (image_size, weight_decay, ...).
    optimizer, learning_rate, decay_steps, decay_rate, momentum: see optimization.py.
    warm_start_checkpoint: a checkpoint to initialize from, or None. train_lib passes
      it only when model_dir holds no checkpoint yet, so a restart resumes instead.
    warm_start_map: {name in checkpoint: variable name} checked by train_lib.
    trainable_scopes, scopes_to_freeze: tuples of variable scopes.
    class_names: names for class ids, exported beside them when given.
    clip_gradient_norm: clip gradients to this norm (slim's create_train_op); 0 = off.

  Returns:
    model_fn(features, labels, mode, params, config) -> tf.estimator.EstimatorSpec.
  """
  model_params = dict(model_params or {})

  def model_fn(features, labels, mode, params=None, config=None):
    del params, config
    is_training = mode == TRAIN
    model = spec.build(is_training=is_training, num_classes=num_classes, **model_params)
    preprocessed = model.preprocess(features)
    prediction = model.predict(preprocessed)
    outputs = model.postprocess(prediction)
    if class_names:
      # --num_classes may exceed the names in labels.txt: unnamed ids get their number,
      # so a prediction of such a class is not an out-of-range gather in serving.
      names = list(class_names) + [str(i) for i in range(len(class_names),
                                                          num_classes)]
      outputs['class_names'] = tf.gather(tf.constant(names), outputs['classes'])

    if mode == PREDICT:
      return tf.estimator.EstimatorSpec(
          mode, predictions=outputs,
          export_outputs={
              tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
                  tf.estimator.export.PredictOutput(outputs)})

    losses = model.loss(prediction, labels)
    regularization_loss = tf.compat.v1.losses.get_regularization_loss()
    # Named in their own scope: the summaries below take the plain names as tags, and
    # an op of the same name would make TensorFlow rename the tag ('total_loss_1').
    total_loss = tf.identity(losses['loss'] + regularization_loss,
                             name=TOTAL_LOSS_NAME)

    if mode != TRAIN:
      metrics = model.accuracy(outputs, labels)
      for name, value in losses.items():
        if name != 'loss':  # The Estimator reports 'loss' (the total) itself.
          metrics[name] = tf.compat.v1.metrics.mean(value)
      metrics['regularization_loss'] = tf.compat.v1.metrics.mean(regularization_loss)
      return tf.estimator.EstimatorSpec(mode, loss=total_loss,
                                        eval_metric_ops=metrics)

    if warm_start_checkpoint and warm_start_map:
      # bert's pattern: the variables' initializers read the checkpoint. A restored
      # model_dir checkpoint runs after initialization, so it always wins.
      tf.compat.v1.train.init_from_checkpoint(warm_start_checkpoint,
                                              dict(warm_start_map))

    global_step = tf.compat.v1.train.get_or_create_global_step()
    lr = tf.identity(
        optimization.learning_rate(learning_rate, global_step,
                                   decay_steps=decay_steps, decay_rate=decay_rate),
        name=LEARNING_RATE_NAME)
    opt = optimization.optimizer(optimizer, lr, momentum=momentum)
    train_vars = variables_to_train(tf.compat.v1.trainable_variables(),
                                    trainable_scopes, scopes_to_freeze)
    # Batch-norm moving statistics are updated by UPDATE_OPS, not the optimizer: a
    # frozen scope must not run its own, or it would change while "frozen". (slim's
    # --trainable_scopes keeps them running, as slim does.)
    update_ops = [op for op in tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS) if not in_scopes(op.name, scopes_to_freeze)]
    train_op = tf_slim.learning.create_train_op(
        total_loss, opt, global_step=global_step, update_ops=update_ops,
        variables_to_train=train_vars, clip_gradient_norm=clip_gradient_norm)

    summary = tf.compat.v1.summary
    # The Estimator logs 'loss' (the total, as evaluation reports it) itself.
    summary.scalar('total_loss', total_loss)
    for name, value in losses.items():
      if name != 'loss':
        summary.scalar(name, value)
    summary.scalar('regularization_loss', regularization_loss)
    summary.scalar('learning_rate', lr)
    for name, value in model.train_summaries(outputs, labels).items():
      summary.scalar(name, value)
    return tf.estimator.EstimatorSpec(mode, loss=total_loss, train_op=train_op)

  return model_fn

