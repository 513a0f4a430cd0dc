"""Flags for the optimizer, the schedule, checkpoints and evaluation."""

from estimator_pipeline import optimization
from flags.common import define
from flags.common import define_enum


def define_training_flags():
  define('batch_size', 'Training examples per step.')
  define('eval_batch_size', 'Evaluation examples per batch; 0 uses --batch_size.')
  define('num_steps', 'Total training steps (global step to reach); re-running with a '
         'larger value continues training.')
  define_enum('optimizer', optimization.OPTIMIZERS, 'Optimizer to train with.')
  define('learning_rate', 'Initial learning rate.')
  define('decay_steps', 'Multiply the learning rate by --decay_rate every this many '
         'steps; 0 decays ten times over --num_steps.')
  define('decay_rate', 'Factor of each learning-rate decay step.')
  define('clip_gradient_norm', 'Clip the gradients to this global norm (as slim '
         'does) before applying them; 0 does not clip. A cure for a loss that turns '
         'NaN.')
  define('momentum', 'Momentum of the momentum and rmsprop optimizers.')
  define('save_checkpoints_steps', 'Save a checkpoint, and evaluate it, every this many '
         'steps; 0 does so ten times over --num_steps.')
  define('keep_checkpoint_max', 'Number of recent checkpoints to keep.')
  define('keep_checkpoint_every_n_hours', 'Also keep one checkpoint every this many '
         'hours, whatever --keep_checkpoint_max prunes.')
  define('eval_steps', 'Batches per evaluation; 0 reads the whole evaluation set once.')
