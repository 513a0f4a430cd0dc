"""preflight(config): every check a run can make before it writes, in one Plan.

Everything that can be wrong with the input is checked here, before the Estimator
writes anything, so a failed run leaves an existing model_dir as it was: the flags
(config/checks.py), the records and what the task learns from them (train/tasks/),
model_dir (model_dir.py), and the checkpoints a run starts from (checkpoints.py):

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config
  from estimator_pipeline.train import plan
  print(plan.preflight(config.Config(model_dir='runs/x', model_name='cifarnet',
      train_record_path='data/train-*')).num_classes)"
"""

import dataclasses
from typing import Any, Dict, Optional, Set, Tuple

from estimator_pipeline import models
from estimator_pipeline.config import controls
from estimator_pipeline.config.config import Config
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import model_dir as model_dir_lib
from estimator_pipeline.train import tasks


@dataclasses.dataclass
class Plan:
  """What preflight decided: everything a run needs, computed without writing."""
  config: Config
  spec: models.ModelSpec
  task: Any  # the tasks.base.Task of spec's record layout
  train_files: list
  eval_files: Optional[list]
  # Classes of a classifier, targets of a sequence model; image side (0: none).
  num_classes: int = 0
  image_size: int = 0
  # The task's own findings (tasks/image.py ImageData, tasks/sequence.py SequenceData).
  data: Any = None
  model_params: Dict[str, Any] = dataclasses.field(default_factory=dict)
  variables: Optional[Dict[str, list]] = None  # {name: shape}
  trainable: Set[str] = dataclasses.field(default_factory=set)
  latest_checkpoint: Optional[str] = None
  warm_start_checkpoint: Optional[str] = None
  warm_start_map: Dict[str, str] = dataclasses.field(default_factory=dict)
  skipped_vars: Tuple[str, ...] = ()
  # Set when model_dir has nothing left to train: the line that says why.
  finished: Optional[str] = None
  # The last checkpoint is at --num_steps, but the run died before its final
  # evaluation and export: the run does only those.
  finish_only: bool = False


def preflight(cfg, chief=True):
  """Checks flags, files, model and checkpoints; writes nothing. Returns a Plan.

  chief=False (a cluster's workers and evaluator) leaves the checks of model_dir's
  checkpoints to the chief: they change under the other tasks while the chief trains.
  """
  cfg.validate()
  spec = models.get(cfg.model_name)
  task = tasks.for_model(spec)
  if cfg.params_file and spec.layout != 'sequence':
    raise UserError('--params_file is read by sequence models (--model_name=seqnn), '
                    'not by --model_name=%s: leave it out.' % cfg.model_name)
  plan = Plan(config=cfg, spec=spec, task=task,
              train_files=files.list_files(cfg.train_record_path, '--train_record_path'),
              eval_files=(files.list_files(cfg.eval_record_path, '--eval_record_path')
                          if cfg.eval_record_path else None))
  task.prepare(plan)
  if not cfg.early_stopping_metric:
    # '' is the model's own default (pearsonr for sequence models): the task decides.
    cfg = plan.config = cfg.replace(early_stopping_metric=task.default_metric(plan))
  latest, finish_only = model_dir_lib.check(cfg, plan.num_classes, plan.image_size,
                                            chief=chief)
  task.check_records(plan)
  plan.model_params = task.model_params(plan)
  if plan.variables is None:
    plan.variables, plan.trainable = task.model_variables(plan)
  checkpoints.check_scopes(cfg, plan.variables)
  model_dir_lib.check_space(cfg, plan.variables, plan.trainable)
  if latest and chief:
    checkpoints.check_resume_shapes(cfg, plan.variables, latest)
  if plan.eval_files:
    _check_metric(plan)
  plan.latest_checkpoint, plan.finish_only = latest, finish_only
  plan.finished = None if finish_only else model_dir_lib.finished_message(cfg, latest)
  if cfg.checkpoint_path and not latest:
    checkpoints.warm_start(plan)
  trainable = model_fn_lib.variables_to_train(
      [_Named(n) for n in sorted(plan.trainable)], cfg.scopes('trainable_scopes'),
      cfg.scopes('scopes_to_freeze'))
  if not trainable:
    raise UserError('--trainable_scopes/--scopes_to_freeze leave no variable to train.')
  return plan


def plan_for_export(cfg, model_dir, scratch, eval_files=None):
  """A Plan that rebuilds a trained model_dir's model, without its records.

  scratch: a folder for files an export needs and model_dir lacks. eval_files: the
  records of a test set to evaluate on (plan.eval_files), read as the task says.
  """
  spec = models.get(cfg.model_name)
  plan = Plan(config=cfg, spec=spec, task=tasks.for_model(spec), train_files=[],
              eval_files=eval_files)
  if eval_files:
    plan.task.prepare_evaluation(plan, model_dir, eval_files, scratch)
  else:
    plan.task.prepare_export(plan, model_dir, scratch)
  plan.model_params = plan.task.model_params(plan)
  return plan


def _check_metric(plan):
  """A mistyped --early_stopping_metric is refused before training starts."""
  cfg = plan.config
  known = plan.task.metric_names(plan)
  if cfg.early_stopping_metric not in known:
    raise UserError('--early_stopping_metric=%s is not an evaluation metric of '
                    '--model_name=%s; its metrics: %s.' % (
                        cfg.early_stopping_metric, cfg.model_name, ', '.join(known)))
  controls.metric_direction(cfg.early_stopping_metric, cfg.early_stopping_mode)


class _Named:
  # variables_to_train reads v.op.name; preflight only has names.
  def __init__(self, name):
    self.op = self
    self.name = name
