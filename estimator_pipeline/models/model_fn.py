"""Model -> EstimatorSpec: losses, train op, warm start, frozen scopes, summaries,
eval metrics and export outputs.

`make_model_fn` binds everything a run decided (model, optimizer, warm-start map, frozen
scopes) and returns the model_fn the Estimator calls in every mode. The model_fn knows
no record layout and no kind of model: it asks the Model (models/model.py) for each
answer, in named steps, one per mode:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import models
  from estimator_pipeline.models import model_fn
  fn = model_fn.make_model_fn(models.get('cifarnet'), num_classes=10)
  print(fn)"
"""

import re

import tensorflow as tf
from tensorflow.python.training import training_util  # pylint: disable=g-direct-tensorflow-import

from estimator_pipeline.models import optimization
from estimator_pipeline.models import precision
from estimator_pipeline.models import summaries

PREDICT = tf.estimator.ModeKeys.PREDICT
TRAIN = tf.estimator.ModeKeys.TRAIN
# Tensors that train/hooks.py and models/loops.py fetch by name.
TOTAL_LOSS_NAME = 'pipeline/total_loss'
LEARNING_RATE_NAME = 'pipeline/learning_rate'


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
                  scopes_to_freeze=(), summarize_gradients=False, train_options=None,
                  training_chief_hooks=(), extra_eval_metrics=None):
  """Builds the Estimator model_fn for a registered model.

  Args:
    spec: the models.ModelSpec to build.
    num_classes: classes of a classifier; targets of a sequence model.
    model_params: keyword arguments for the Model (image_size, weight_decay,
      class_names_file, params, ...).
    optimizer, learning_rate, decay_steps, decay_rate, momentum: see optimization.py;
      used when train_options is None.
    warm_start_checkpoint: a checkpoint to initialize from, or None. train/ passes it
      only when model_dir holds no checkpoint yet, so a restart resumes instead.
    warm_start_map: {name in checkpoint: variable name} checked by train/.
    trainable_scopes, scopes_to_freeze: tuples of variable scopes.
    summarize_gradients: also write histograms of every trained variable and its
      gradient (gradient_norm is always written).
    train_options: an optimization.TrainOptions (schedule, optimizer, clipping,
      accumulation, moving averages); overrides the five arguments above.
    training_chief_hooks: hooks that run after the Estimator's checkpoint saver in
      each step (early stopping stops right after the evaluation that decides it).
    extra_eval_metrics: (postprocessed outputs, labels) -> {name: metric}, evaluated
      beside the model's own (a test-set report's per-target values), or None.

  Returns:
    model_fn(features, labels, mode, params, config) -> tf.estimator.EstimatorSpec.
  """
  model_params = dict(model_params or {})
  if train_options is None:
    train_options = optimization.TrainOptions(
        optimizer=optimizer, learning_rate=learning_rate, decay_steps=decay_steps,
        decay_rate=decay_rate, momentum=momentum)
  # EVAL and PREDICT (export) read the moving averages when they are kept.
  averaged_scaffold = lambda: optimization.averaged_weights_scaffold(
      train_options.moving_average_decay)
  train_step = dict(train_options=train_options, trainable_scopes=trainable_scopes,
                    scopes_to_freeze=scopes_to_freeze,
                    summarize_gradients=summarize_gradients,
                    training_chief_hooks=list(training_chief_hooks))

  def model_fn(features, labels, mode, params=None, config=None):
    del params
    model = spec.build(is_training=mode == TRAIN, num_classes=num_classes,
                       **model_params)
    mixed = mode == TRAIN and train_options.mixed_precision
    if mixed:
      # float16 computation of float32 variables; outputs (and the loss) float32.
      with precision.compute_scope():
        prediction = precision.to_float32(model.predict(precision.to_compute(
            model.preprocess(features))))
    else:
      prediction = model.predict(model.preprocess(features))
    outputs = model.postprocess(prediction)
    if mode == PREDICT:
      predictions, export_outputs = model.serving_outputs(features, outputs)
      return tf.estimator.EstimatorSpec(mode, predictions=predictions,
                                        scaffold=averaged_scaffold(),
                                        export_outputs=export_outputs)
    losses, total_loss = _losses(model, prediction, labels)
    if mode != TRAIN:
      return tf.estimator.EstimatorSpec(
          mode, loss=total_loss, scaffold=averaged_scaffold(),
          eval_metric_ops=_eval_metrics(model, outputs, labels, losses,
                                        extra_eval_metrics))
    if warm_start_checkpoint and warm_start_map:
      _warm_start(warm_start_checkpoint, warm_start_map)
    spec_ = _train_spec(model, features, labels, outputs, losses, total_loss,
                        **train_step)
    if mixed:
      _loss_scale_saver(config)
    return spec_

  return model_fn


def _loss_scale_saver(config):
  """The run's saver, which also resumes checkpoints without a loss scale (a float32
  run's); the Estimator and the checkpoint hook take it from the SAVERS collection."""
  scale = [v for v in tf.compat.v1.global_variables()
           if v.op.name in (precision.SCALE_NAME, precision.GOOD_STEPS_NAME)]
  tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.SAVERS, precision.ResumingSaver(
      scale, sharded=True, save_relative_paths=True,
      max_to_keep=config.keep_checkpoint_max if config else 5,
      keep_checkpoint_every_n_hours=config.keep_checkpoint_every_n_hours if config
      else 10000.0))


def _losses(model, prediction, labels):
  """The model's losses and the total: data loss + every regularization loss."""
  losses = model.loss(prediction, labels)
  regularization = tf.compat.v1.losses.get_regularization_losses()
  if any(loss.dtype != tf.float32 for loss in regularization):
    # Mixed precision: slim's layers regularize the float16 reads of their weights.
    losses['regularization_loss'] = tf.add_n(
        [tf.cast(loss, tf.float32) for loss in regularization],
        name='total_regularization_loss')
  else:
    losses['regularization_loss'] = tf.compat.v1.losses.get_regularization_loss()
  # Named in their own scope: the summaries take the plain names as tags, and an op of
  # the same name would make TensorFlow rename the tag ('total_loss_1').
  total_loss = tf.identity(losses['loss'] + losses['regularization_loss'],
                           name=TOTAL_LOSS_NAME)
  return losses, total_loss


def _eval_metrics(model, outputs, labels, losses, extra=None):
  metrics = model.accuracy(outputs, labels)
  if extra:
    metrics.update(extra(outputs, labels))
  for name, value in losses.items():
    if name != 'loss':  # The Estimator reports 'loss' (the total) itself.
      metrics[name] = tf.compat.v1.metrics.mean(value)
  return metrics


def _warm_start(checkpoint, mapping):
  # bert's pattern: the variables' initializers read the checkpoint. A restored
  # model_dir checkpoint runs after initialization, so it always wins. init_scope:
  # initializers must lie outside a --steps_per_loop training loop (loops.py).
  with tf.init_scope():
    tf.compat.v1.train.init_from_checkpoint(checkpoint, dict(mapping))


def _train_spec(model, features, labels, outputs, losses, total_loss, *, train_options,
                trainable_scopes, scopes_to_freeze, summarize_gradients,
                training_chief_hooks):
  global_step = tf.compat.v1.train.get_or_create_global_step()
  lr = tf.identity(optimization.learning_rate(train_options, global_step),
                   name=LEARNING_RATE_NAME)
  train_vars = variables_to_train(tf.compat.v1.trainable_variables(),
                                  trainable_scopes, scopes_to_freeze)
  # Batch-norm moving statistics are updated by UPDATE_OPS, not the optimizer: a
  # frozen scope must not run its own, or it would change while "frozen". (slim's
  # --trainable_scopes keeps them running, as slim does.)
  update_ops = [op for op in tf.compat.v1.get_collection(
      tf.compat.v1.GraphKeys.UPDATE_OPS) if not in_scopes(op.name, scopes_to_freeze)]
  # Every hook reads the global step as "before this step's update" (the read tensor
  # the Estimator makes before calling model_fn); the update waits for that read, so
  # that is what they see however the session schedules its ops. (Under a strategy
  # the replicas' updates are its business.)
  read = (None if tf.distribute.has_strategy() else
          training_util._get_global_step_read())  # pylint: disable=protected-access
  with tf.control_dependencies([read] if read is not None else []):
    train_op = optimization.build_train_op(
        total_loss, train_options, lr, global_step, train_vars, update_ops,
        histograms=summarize_gradients)
  scalars = {'total_loss': total_loss, 'learning_rate': lr}
  # The Estimator logs 'loss' (the total, as evaluation reports it) itself.
  scalars.update({name: value for name, value in losses.items() if name != 'loss'})
  scalars.update(model.train_summaries(features, outputs, labels))
  summaries.scalar_summaries(scalars)
  return tf.estimator.EstimatorSpec(TRAIN, loss=total_loss, train_op=train_op,
                                    training_chief_hooks=training_chief_hooks)
