"""Learning-rate schedules (tf-models-official), TF1 optimizers and the train op.

Graph mode: the schedule is built from tf-models-official's config classes and called on
the global step tensor; the optimizer is a `tf.compat.v1.train` optimizer, because Keras
optimizers do not work with `minimize(loss_tensor)` inside an Estimator's model_fn.
`build_train_op` adds what a hand-written loop gives: per-variable and global-norm
clipping, gradient accumulation, AdamW's decoupled weight decay and exponential moving
averages.

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.models import optimization as o
  opts = o.TrainOptions(lr_schedule='cosine', learning_rate=0.1, decay_steps=1000,
                        warmup_steps=100)
  print([float(o.learning_rate(opts, tf.constant(s))) for s in (0, 50, 100, 550, 1100)])"
"""

import dataclasses
from typing import Optional, Tuple

import tensorflow as tf
from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.configs import optimization_config

from estimator_pipeline.config import controls
from estimator_pipeline.config.config import Config
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models import precision
from estimator_pipeline.models import summaries as summaries_lib

OPTIMIZERS = controls.OPTIMIZERS
LR_SCHEDULES = controls.LR_SCHEDULES

# A finite loss check in the train op (as slim's create_train_op has): train/failures.py
# turns the error into one line about the learning rate.
_NUMERICS_MESSAGE = 'LossTensor is inf or nan'


_flag = Config.default


@dataclasses.dataclass(frozen=True)
class TrainOptions:
  """How the model is trained: optimizer, schedule, gradients, averages.

  A field named as a flag takes that flag's default (config.Config, the one place of
  every default); the others are what from_config derives from the flags.
  """
  optimizer: str = _flag('optimizer')
  learning_rate: float = _flag('learning_rate')
  momentum: float = _flag('momentum')
  adam_beta1: float = _flag('adam_beta1')
  adam_beta2: float = _flag('adam_beta2')
  adam_epsilon: float = _flag('adam_epsilon')
  rmsprop_decay: float = _flag('rmsprop_decay')
  rmsprop_epsilon: float = _flag('rmsprop_epsilon')
  # AdamW's decoupled decay rate (other optimizers: the net's L2 loss does the decay).
  decoupled_weight_decay: float = 0.0
  lr_schedule: str = _flag('lr_schedule')
  decay_steps: int = 1000  # The flag's 0 ("ten times over the run") resolved.
  decay_rate: float = _flag('decay_rate')
  staircase: bool = True
  lr_boundaries: Tuple[int, ...] = ()
  lr_values: Tuple[float, ...] = ()
  end_learning_rate: float = _flag('end_learning_rate')
  warmup_steps: int = _flag('warmup_steps')
  clip_gradient_norm: float = _flag('clip_gradient_norm')
  clip_gradient_norm_per_variable: float = _flag('clip_gradient_norm_per_variable')
  grad_accum_steps: int = _flag('grad_accum_steps')
  moving_average_decay: float = _flag('moving_average_decay')
  mixed_precision: bool = _flag('mixed_precision')

  @classmethod
  def from_config(cls, cfg):
    """The options a (validated) config.Config asks for."""
    boundaries, values = ((), ())
    if controls.schedule_name(cfg.lr_schedule) == 'piecewise':
      boundaries, values = controls.piecewise_values(cfg)
    decoupled = 0.0
    if cfg.optimizer == 'adamw':
      decoupled = (cfg.weight_decay if cfg.weight_decay >= 0 else
                   controls.ADAMW_DEFAULT_WEIGHT_DECAY)
    return cls(
        optimizer=cfg.optimizer, learning_rate=cfg.learning_rate,
        momentum=cfg.momentum, adam_beta1=cfg.adam_beta1, adam_beta2=cfg.adam_beta2,
        adam_epsilon=cfg.adam_epsilon, rmsprop_decay=cfg.rmsprop_decay,
        rmsprop_epsilon=cfg.rmsprop_epsilon, decoupled_weight_decay=decoupled,
        lr_schedule=controls.schedule_name(cfg.lr_schedule),
        decay_steps=cfg.effective_decay_steps, decay_rate=cfg.decay_rate,
        lr_boundaries=tuple(boundaries), lr_values=tuple(values),
        end_learning_rate=cfg.end_learning_rate, warmup_steps=cfg.warmup_steps,
        clip_gradient_norm=cfg.clip_gradient_norm,
        clip_gradient_norm_per_variable=cfg.clip_gradient_norm_per_variable,
        grad_accum_steps=cfg.grad_accum_steps,
        moving_average_decay=cfg.moving_average_decay,
        mixed_precision=cfg.mixed_precision)


def schedule_config(options):
  """tf-models-official's OptimizationConfig for the schedule (and warmup)."""
  name = controls.schedule_name(options.lr_schedule)
  lr = options.learning_rate
  # With warmup, a decaying schedule starts where warmup ends, so the rate peaks at
  # --learning_rate; piecewise boundaries stay global steps.
  offset = options.warmup_steps
  if name == 'constant':
    params = {'learning_rate': lr}
  elif name == 'exponential':
    params = {'initial_learning_rate': lr, 'decay_steps': options.decay_steps,
              'decay_rate': options.decay_rate, 'staircase': options.staircase,
              'offset': offset}
  elif name == 'piecewise':
    params = {'boundaries': list(options.lr_boundaries),
              'values': list(options.lr_values), 'offset': 0}
    name = 'stepwise'
  elif name == 'polynomial':
    params = {'initial_learning_rate': lr, 'decay_steps': options.decay_steps,
              'end_learning_rate': options.end_learning_rate, 'power': 1.0,
              'offset': offset}
  elif name == 'cosine':
    params = {'initial_learning_rate': lr, 'decay_steps': options.decay_steps,
              'alpha': options.end_learning_rate / lr if lr else 0.0,
              'offset': offset}
  else:
    raise UserError('--lr_schedule=%s is not known; known: %s.'
                    % (options.lr_schedule, ', '.join(LR_SCHEDULES)))
  values = {'optimizer': {'type': 'sgd'},
            'learning_rate': {'type': name, name: params}}
  if options.warmup_steps:
    values['warmup'] = {'type': 'linear', 'linear': {
        'warmup_steps': options.warmup_steps, 'warmup_learning_rate': 0.0}}
  return optimization_config.OptimizationConfig(values)


def learning_rate(options, global_step):
  """The learning rate at global_step, a float32 scalar tensor (graph or eager)."""
  factory = optimizer_factory.OptimizerFactory(schedule_config(options))
  schedule = factory.build_learning_rate()
  step = tf.cast(global_step, tf.float32)
  if callable(schedule):
    return tf.cast(schedule(step), tf.float32)
  return tf.constant(schedule, tf.float32)


class AdamWOptimizer(tf.compat.v1.train.AdamOptimizer):
  """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW).

  Each update first shrinks the decayed variables by `lr * weight_decay * var`, then
  applies Adam's step computed from the loss gradient alone, so the decay is not
  rescaled by Adam's second-moment estimate as an L2 loss term would be. Only
  variables of rank >= 2 (kernels, weights, embeddings) decay, the ones slim's L2
  regularizers cover; biases and batch-norm parameters do not.
  """

  def __init__(self, learning_rate, weight_decay, **kwargs):
    super().__init__(learning_rate, **kwargs)
    self._weight_decay = weight_decay

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
    decays = []
    if self._weight_decay:
      # After every gradient is computed (they read the undecayed weights).
      with tf.control_dependencies([g for g, _ in grads_and_vars]):
        rate = tf.cast(self._call_if_callable(self._lr), tf.float32) * self._weight_decay
        for _, var in grads_and_vars:
          if var.shape.rank is not None and var.shape.rank >= 2:
            decays.append(var.assign_sub(tf.cast(rate, var.dtype.base_dtype) * var,
                                         read_value=False))
    with tf.control_dependencies(decays):
      return super().apply_gradients(grads_and_vars, global_step, name)


def optimizer(name_or_options, lr, *, momentum=0.9):
  """A tf.compat.v1.train optimizer by name (see OPTIMIZERS) or TrainOptions."""
  options = (name_or_options if isinstance(name_or_options, TrainOptions)
             else TrainOptions(optimizer=name_or_options, momentum=momentum))
  v1 = tf.compat.v1.train
  name = options.optimizer
  if name == 'sgd':
    return v1.GradientDescentOptimizer(lr)
  if name == 'momentum':
    return v1.MomentumOptimizer(lr, options.momentum)
  if name == 'rmsprop':
    # slim's train_image_classifier defaults (decay 0.9, epsilon 1.0).
    return v1.RMSPropOptimizer(lr, decay=options.rmsprop_decay,
                               momentum=options.momentum,
                               epsilon=options.rmsprop_epsilon)
  if name == 'adam':
    return v1.AdamOptimizer(lr, beta1=options.adam_beta1, beta2=options.adam_beta2,
                            epsilon=options.adam_epsilon)
  if name == 'adamw':
    return AdamWOptimizer(lr, options.decoupled_weight_decay,
                          beta1=options.adam_beta1, beta2=options.adam_beta2,
                          epsilon=options.adam_epsilon)
  raise UserError('--optimizer=%s is not known; known: %s.' % (name, ', '.join(OPTIMIZERS)))


def _local_zeros_like(var, name):
  # Local: not in checkpoints. Checkpoints are written right after an update, when
  # the accumulators are zero anyway.
  return tf.compat.v1.Variable(
      tf.zeros(var.shape, var.dtype.base_dtype), trainable=False, name=name,
      collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])


def _clip(gradients, options):
  """(clipped gradients, their global norm before clipping, for the summary)."""
  norm = tf.linalg.global_norm(gradients)
  if options.clip_gradient_norm_per_variable > 0:
    # Keras' clipnorm (basenji's clip_norm): each variable's gradient on its own,
    # before any global clip, as Keras applies both.
    gradients = [tf.clip_by_norm(g, options.clip_gradient_norm_per_variable)
                 for g in gradients]
  if options.clip_gradient_norm > 0:
    gradients, _ = tf.clip_by_global_norm(
        gradients, options.clip_gradient_norm,
        use_norm=None if options.clip_gradient_norm_per_variable > 0 else norm)
  return gradients, norm


def _scaled_update(opt, grads_and_vars, global_step, scale, good_steps, finite):
  """Mixed precision's update: applied when every gradient is finite; a step whose
  gradients overflowed changes no weight (the step still counts); then the loss
  scale moves (precision.update_scale)."""
  def apply():
    return tf.group(opt.apply_gradients(grads_and_vars, global_step=global_step))

  update = tf.cond(finite, apply, lambda: tf.group(global_step.assign_add(1)))
  tf.compat.v1.summary.scalar('loss_scale', scale)
  with tf.control_dependencies([update]):
    return precision.update_scale(scale, good_steps, finite)


def build_train_op(total_loss, options, lr, global_step, variables, update_ops=(),
                   summaries=True, histograms=False):
  """The train op for model_fn: gradients -> (accumulate) -> clip -> apply -> average.

  Args:
    total_loss: the scalar loss to minimize.
    options: TrainOptions.
    lr: the learning-rate tensor (see learning_rate).
    global_step: the global step variable; it counts updates, so with
      grad_accum_steps=N it advances once every N batches, and every step count
      (num_steps, schedules, checkpoints) means updates of N batches.
    variables: the variables to train.
    update_ops: ops to run with every batch (batch-norm statistics).
    summaries: write a 'gradient_norm' summary (the norm before clipping).
    histograms: also write histograms of every trained variable and its gradient.

  Returns:
    A tensor: the loss of this batch, computed before the update; running it trains.
  """
  with tf.control_dependencies(list(update_ops)):
    total_loss = tf.identity(total_loss)
  total_loss = tf.debugging.check_numerics(total_loss, _NUMERICS_MESSAGE)
  opt = optimizer(options, lr)
  if options.mixed_precision:
    scale, good_steps = precision.scale_variables()
    grads_and_vars, finite = precision.scaled_gradients(opt, total_loss, variables,
                                                        scale)
  else:
    grads_and_vars = [(g, v) for g, v in opt.compute_gradients(total_loss, variables)
                      if g is not None]
  if not grads_and_vars:
    raise UserError('the loss depends on no trainable variable: check '
                    '--trainable_scopes and --scopes_to_freeze.')
  grads = [g for g, _ in grads_and_vars]
  train_vars = [v for _, v in grads_and_vars]
  n = options.grad_accum_steps

  if n <= 1 and options.mixed_precision:
    grads, norm = _clip(grads, options)
    update = _scaled_update(opt, list(zip(grads, train_vars)), global_step, scale,
                            good_steps, finite)
    is_update = finite
  elif n <= 1:
    grads, norm = _clip(grads, options)
    update = opt.apply_gradients(list(zip(grads, train_vars)), global_step=global_step)
    is_update = tf.constant(True)
  else:
    # N batches of B give the same update as one batch of N*B: the mean of the N
    # mean gradients, then one optimizer step (momentum, Adam moments and schedules
    # advance once).
    accumulators = [_local_zeros_like(v, 'grad_accum/%d' % i)
                    for i, v in enumerate(train_vars)]
    counter = tf.compat.v1.Variable(
        0, dtype=tf.int64, trainable=False, name='grad_accum/count',
        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES])
    added = [a.assign_add(g) for a, g in zip(accumulators, grads)]
    with tf.control_dependencies(added):
      count = counter.assign_add(1)
    is_update = tf.equal(count % n, 0)
    mean_grads = [a / tf.cast(n, a.dtype) for a in added]
    mean_grads, norm = _clip(mean_grads, options)

    def apply_and_reset():
      applied = opt.apply_gradients(list(zip(mean_grads, train_vars)),
                                    global_step=global_step)
      with tf.control_dependencies([applied]):
        return tf.group(*[a.assign(tf.zeros_like(a)) for a in accumulators])

    update = tf.cond(is_update, apply_and_reset, tf.no_op)
  if summaries:
    tf.compat.v1.summary.scalar('gradient_norm', norm)
    if histograms:
      summaries_lib.histogram_summaries(list(zip(grads, train_vars)))

  if options.moving_average_decay:
    update = _apply_moving_averages(update, options.moving_average_decay, global_step,
                                    is_update)
  with tf.control_dependencies([update]):
    return tf.identity(total_loss)


def averaged_variables():
  """The variables whose moving averages are kept: slim's model variables."""
  return (tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES) or
          tf.compat.v1.trainable_variables())


def moving_average(decay):
  # The default name, so averages are '<variable>/ExponentialMovingAverage' as in
  # slim's and the TPU models' checkpoints.
  return tf.compat.v1.train.ExponentialMovingAverage(decay)


def _apply_moving_averages(update, decay, global_step, is_update):
  # slim's and the TPU models' ExponentialMovingAverage(decay, num_updates=global_step):
  # the average follows the weights closely early on. Written out so that the
  # averages move only on steps that updated the weights (gradient accumulation).
  with tf.control_dependencies([update]):
    # Read after the update, as the TPU models' apply under the train op does.
    step = tf.cast(tf.identity(global_step), tf.float32)
    effective = tf.minimum(tf.constant(decay, tf.float32),
                           (1.0 + step) / (10.0 + step))
    effective = tf.where(is_update, effective, tf.constant(1.0))
    return moving_average(effective).apply(averaged_variables())


def averaged_weights_scaffold(decay) -> Optional[tf.compat.v1.train.Scaffold]:
  """A Scaffold whose saver loads the moving averages into the model's variables.

  For EVAL and PREDICT (export) graphs, as slim's eval_image_classifier does; the
  SavedModel keeps this saver, so TF Serving also serves the averaged weights.
  """
  if not decay:
    return None
  mapping = moving_average(decay).variables_to_restore(averaged_variables())
  return tf.compat.v1.train.Scaffold(
      saver=tf.compat.v1.train.Saver(mapping, sharded=True))
