"""Flags for the optimizer, the schedule, gradients, checkpoints, evaluation and early
stopping; each is checked by estimator_pipeline/config/checks.py before any graph is
built.

  python train.py --helpfull | grep -A2 lr_schedule
"""

from estimator_pipeline.config import cluster
from estimator_pipeline.config import controls
from flags.common import define
from flags.common import define_enum


def define_training_flags():
  define('batch_size', 'Training examples per batch of one replica (per micro-batch '
         'with --grad_accum_steps); with --distribution a step of all replicas together '
         'takes this times their number.')
  define('eval_batch_size', 'Evaluation examples per batch; 0 uses --batch_size.')
  define('num_steps', 'Total training steps (global step to reach); re-running with a '
         'larger value continues training. With --grad_accum_steps a step is one '
         'update.')
  # Optimizer.
  define_enum('optimizer', controls.OPTIMIZERS, 'Optimizer to train with; '
              'adamw is Adam with decoupled weight decay (--weight_decay).')
  define('learning_rate', 'Initial (peak, with --warmup_steps) learning rate.')
  define('momentum', 'Momentum of the momentum and rmsprop optimizers.')
  define('adam_beta1', 'Exponential decay of the first-moment estimates (adam, adamw).')
  define('adam_beta2', 'Exponential decay of the second-moment estimates (adam, adamw).')
  define('adam_epsilon', 'Epsilon of adam and adamw, added to the denominator.')
  define('rmsprop_decay', 'Decay of the rmsprop squared-gradient average.')
  define('rmsprop_epsilon', "Epsilon of rmsprop (slim's default 1.0).")
  # Schedule.
  define_enum('lr_schedule', controls.LR_SCHEDULE_CHOICES,
              "Learning-rate schedule (tf-models-official's): constant, exponential "
              '(by --decay_rate every --decay_steps), piecewise (--lr_boundaries, '
              '--lr_values), polynomial (linear) or cosine (to --end_learning_rate); '
              'fixed and stepwise are other names for constant and piecewise.')
  define('decay_steps', 'Steps per decay: exponential multiplies by --decay_rate every '
         'this many steps (0: ten times over --num_steps); polynomial and cosine reach '
         '--end_learning_rate after this many steps past warmup (0: the rest of the '
         'run).')
  define('decay_rate', 'Factor of each exponential decay step, and of each piecewise '
         'boundary when --lr_values is empty.')
  define('lr_boundaries', 'Comma-separated global steps where the piecewise schedule '
         'changes rate, e.g. 30000,60000.')
  define('lr_values', 'Comma-separated rates of the piecewise schedule, one more than '
         '--lr_boundaries; empty multiplies --learning_rate by --decay_rate at each '
         'boundary.')
  define('end_learning_rate', 'Learning rate the polynomial and cosine schedules decay '
         'to.')
  define('warmup_steps', 'Raise the learning rate linearly from 0 to --learning_rate '
         'over this many steps, then start the schedule; 0 for no warmup.')
  _define_gradient_flags()
  # Checkpoints and evaluation.
  define('save_checkpoints_steps', 'Save a checkpoint, and evaluate it, every this many '
         'steps; 0 does so ten times over --num_steps (or every --eval_every_steps).')
  define('save_checkpoints_secs', 'Save a checkpoint (and evaluate it) every this many '
         'seconds instead of by steps; 0 saves by steps.')
  define('keep_checkpoint_max', 'Number of recent checkpoints to keep (the best one is '
         'also kept in model_dir/best/).')
  define('keep_checkpoint_every_n_hours', 'Also keep one checkpoint every this many '
         'hours, whatever --keep_checkpoint_max prunes.')
  define('eval_every_steps', 'Evaluate every this many steps (a checkpoint is saved '
         'as often); 0 evaluates after every checkpoint.')
  define('throttle_secs', 'Wait at least this many seconds between evaluations; a '
         'checkpoint saved sooner is not evaluated. 0 evaluates every checkpoint.')
  define('eval_steps', 'Batches per evaluation; 0 reads the whole evaluation set once.')
  # Early stopping.
  define('early_stopping_metric', 'Evaluation metric that judges the best checkpoint '
         '(model_dir/best/, export/best/) and early stopping, e.g. loss or accuracy; '
         'empty takes the model\'s: loss, or for sequence models pearsonr (auroc with '
         'a bce loss), as basenji\'s trainer does.')
  define('early_stopping_patience', 'Stop after this many evaluations in a row without '
         'a better --early_stopping_metric; 0 never stops early.')
  define_enum('early_stopping_mode', controls.EARLY_STOPPING_MODES,
              'Whether lower (min) or higher (max) --early_stopping_metric is better; '
              'auto: max for accuracy-like metrics, min for losses.')
  define_enum('distribution', cluster.DISTRIBUTIONS,
              'How training is spread: none (one device), mirrored (every GPU of this '
              'machine), multi_worker_mirrored (synchronous, every worker in TF_CONFIG) '
              'or parameter_server (asynchronous, variables on the ps tasks in '
              'TF_CONFIG); --batch_size is per replica. See BUILD.md, "Several '
              'machines".')
  define('ps_timeout_secs', 'A parameter-server task stops serving (and exits) once no '
         'chief or worker of its TF_CONFIG cluster has answered for this many seconds; '
         'it exits at once when they are gone and the job reached --num_steps.')


def _define_gradient_flags():
  """Gradients and weights."""
  define('clip_gradient_norm', 'Clip the gradients to this global norm before each '
         'update (Keras global_clipnorm, basenji\'s train.global_clipnorm); 0 does not '
         'clip. The norm is logged as gradient_norm.')
  define('clip_gradient_norm_per_variable', 'Clip each variable\'s gradient to this '
         'norm on its own before each update (Keras clipnorm, basenji\'s '
         'train.clip_norm), before any --clip_gradient_norm; 0 does not clip.')
  define('grad_accum_steps', 'Accumulate the gradients of this many batches and apply '
         'them as one update, the same as one batch this many times larger.')
  define('moving_average_decay', 'Keep exponential moving averages of the weights with '
         'this decay (e.g. 0.9999); evaluation and exports then use the averages. 0 '
         'keeps none.')
  define('mixed_precision', 'Train in float16 with float32 variables and dynamic loss '
         'scaling (Keras\' mixed_float16 and LossScaleOptimizer; baskerville\'s '
         '--mixed_precision): faster on GPUs with float16 units, slow on CPUs. '
         'Evaluation, exports and checkpoints stay float32.')
  define('recompute_trunk', 'Sequence models: keep only each trunk block\'s input in '
         'the forward pass and recompute its activations in the backward pass '
         '(gradient checkpointing), less memory for more time per step.')
