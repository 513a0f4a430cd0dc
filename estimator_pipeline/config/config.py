"""One frozen configuration for a run, built from flags and saved to model_dir.

Flag names equal field names (see flags/), so a run is reproducible from its
`model_dir/config.json`:

  python -c "from estimator_pipeline import config; print(config.Config().to_json())"

Fields hold plain Python values only, so flags/ takes every default from here and the
defaults live in one place; config/checks.py checks every field.
"""

import dataclasses
import json
import os
from typing import Optional, Tuple

from estimator_pipeline.config import checks
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

CONFIG_FILE = 'config.json'


@dataclasses.dataclass(frozen=True)
class Config:
  """Everything one training run needs. Defaults are the flags' defaults."""

  # Run.
  model_dir: str = ''
  seed: int = 0
  deterministic: bool = False
  log_every_steps: int = 50
  summarize_gradients: bool = False
  profile_steps: str = ''

  # Data.
  train_record_path: str = ''
  eval_record_path: str = ''
  labels_file: str = ''
  shuffle_buffer_size: int = 2048
  num_parallel_reads: int = 0
  eval_batch_size: int = 0
  validate_data: bool = False
  skip_corrupt_records: bool = False

  # Model.
  model_name: str = 'resnet_v1_50'
  num_classes: int = 0
  image_size: int = 0
  random_flip: bool = True
  label_smoothing: float = 0.0
  weight_decay: float = -1.0
  dropout_keep_prob: float = -1.0
  # basenji's JSON params (sequence models): model section + train section.
  params_file: str = ''
  # Which head* of the params file; '' is basenji's: the first in natural order.
  head: str = ''
  # basenji's GELU: 'tanh' (basenji >= 0.6, baskerville) or 'sigmoid' (<= 0.5.1).
  gelu: str = 'tanh'

  # Warm start and frozen scopes.
  checkpoint_path: str = ''
  checkpoint_exclude_scopes: str = ''
  ignore_missing_vars: bool = False
  trainable_scopes: str = ''
  scopes_to_freeze: str = ''

  # Training.
  batch_size: int = 32
  num_steps: int = 1000
  optimizer: str = 'momentum'
  learning_rate: float = 0.01
  momentum: float = 0.9
  adam_beta1: float = 0.9
  adam_beta2: float = 0.999
  adam_epsilon: float = 1e-8
  rmsprop_decay: float = 0.9
  rmsprop_epsilon: float = 1.0
  # Learning-rate schedule (checks.py checks these; models/optimization.py builds it).
  lr_schedule: str = 'exponential'
  decay_steps: int = 0
  decay_rate: float = 0.94
  lr_boundaries: str = ''
  lr_values: str = ''
  end_learning_rate: float = 0.0
  warmup_steps: int = 0
  # Gradients and weights.
  clip_gradient_norm: float = 0.0
  # Keras clipnorm (basenji's train.clip_norm): each variable's gradient on its own.
  clip_gradient_norm_per_variable: float = 0.0
  grad_accum_steps: int = 1
  moving_average_decay: float = 0.0
  # Training computes in float16 (variables stay float32) with dynamic loss scaling.
  mixed_precision: bool = False
  # Sequence models: recompute each trunk block's activations in the backward pass.
  recompute_trunk: bool = False
  # Checkpoints and evaluation.
  save_checkpoints_steps: int = 0
  save_checkpoints_secs: int = 0
  keep_checkpoint_max: int = 5
  keep_checkpoint_every_n_hours: float = 10000.0
  eval_every_steps: int = 0
  throttle_secs: int = 0
  eval_steps: int = 0
  # '' is the model's default (tasks/: loss; pearsonr for sequence models).
  early_stopping_metric: str = ''
  early_stopping_patience: int = 0
  early_stopping_mode: str = 'auto'
  # One of cluster.DISTRIBUTIONS; the cluster itself comes from TF_CONFIG.
  distribution: str = 'none'
  # A ps task stops serving once no chief or worker of its cluster has answered for
  # this long (train/strategies.py serve); at once when the job reached num_steps.
  ps_timeout_secs: int = 600

  # Export.
  exports_to_keep: int = 5
  # Sequence models: test-time ensemble averaged in the exported graph (basenji's
  # --rc --shifts).
  ensemble_rc: bool = False
  ensemble_shifts: str = '0'

  # '' = the layout's default (encoded_image for image classifiers): serving/.
  serving_input: str = ''

  # Performance (see models/loops.py and data/speed.py).
  steps_per_loop: int = 1
  inter_op_threads: int = 0
  intra_op_threads: int = 0
  data_threads: int = 0
  # XLA auto-clustering (JIT) of the training and evaluation graphs (train/xla.py).
  xla: bool = False

  @classmethod
  def field_names(cls):
    return [f.name for f in dataclasses.fields(cls)]

  @classmethod
  def default(cls, name):
    """The default of one field, for flags/ (one place for every default)."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]

  @classmethod
  def from_dict(cls, values):
    """Builds a Config from a mapping that may hold other keys (e.g. all absl flags)."""
    names = set(cls.field_names())
    if 'random_seed' in values and 'seed' not in values:
      # config.json files written before --seed was named so.
      values = dict(values, seed=values['random_seed'])
    return cls(**{k: v for k, v in values.items() if k in names and v is not None})

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  def to_dict(self):
    return dataclasses.asdict(self)

  def to_json(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  # Derived values: the one place where "0 means ..." is decided.

  @property
  def effective_eval_batch_size(self):
    return self.eval_batch_size or self.batch_size

  @property
  def effective_decay_steps(self):
    if self.decay_steps:
      return self.decay_steps
    if self.lr_schedule in ('polynomial', 'cosine'):
      # These decay once, over the run after warmup, to --end_learning_rate.
      return max(1, self.num_steps - self.warmup_steps)
    # slim's train_image_classifier decays every 2 epochs; without an epoch size we
    # decay ten times over the run, which gives a comparable curve for short runs.
    return max(1, self.num_steps // 10)

  @property
  def effective_save_checkpoints_steps(self):
    # Evaluation runs after every checkpoint, so this is also the evaluation cadence:
    # ten evaluations per run unless the user says otherwise.
    if self.save_checkpoints_secs:
      return None
    return (self.save_checkpoints_steps or self.eval_every_steps or
            max(1, self.num_steps // 10))

  def scopes(self, name) -> Tuple[str, ...]:
    """A comma-separated scope flag as a tuple of stripped, non-empty scopes."""
    return tuple(s.strip().rstrip('/') for s in getattr(self, name).split(',')
                 if s.strip())

  def validate(self):
    """Checks every flag without reading a file (config/checks.py). Raises UserError."""
    checks.validate(self)
    return self

  def save(self, model_dir: Optional[str] = None):
    """Writes config.json into model_dir (atomically: a crash never leaves half a file)."""
    model_dir = model_dir or self.model_dir
    return files.atomic_write(os.path.join(model_dir, CONFIG_FILE), self.to_json() + '\n')


def load(model_dir):
  """The Config a previous run saved in model_dir, or None."""
  path = os.path.join(model_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    text = f.read()
  # Parsed as JSON, never evaluated: a model_dir may come from someone else.
  try:
    values = json.loads(text)
  except json.JSONDecodeError as e:
    raise UserError('%s is not valid JSON (line %d, column %d: %s): restore it from the '
                    'run that wrote it, or delete it to take these flags as the run\'s '
                    'configuration.' % (path, e.lineno, e.colno, e.msg))
  if not isinstance(values, dict):
    raise UserError('%s holds a JSON %s, not an object of flag values.'
                    % (path, type(values).__name__))
  try:
    return Config.from_dict(values)
  except TypeError as e:
    raise UserError('%s does not hold flag values (%s).' % (path, e))
