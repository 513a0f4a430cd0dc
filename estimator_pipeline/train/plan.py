"""preflight(config): every check a run can make before it writes, in one frozen Plan.

Everything that can be wrong with the input is checked here, before the Estimator
writes anything, so a failed run leaves an existing model_dir as it was: the flags
(config/checks.py), the records and what the task learns from them (train/tasks/),
model_dir (model_dir.py), and the checkpoints a run starts from (checkpoints.py). The
Plan is built from what these return (the task's Prepared, the warm start), and its
config is what the Estimator runs with and config.json saves:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import config
  from estimator_pipeline.train import plan
  print(plan.preflight(config.Config(model_dir='runs/x', model_name='cifarnet',
      train_record_path='data/train-*')).num_classes)"
"""

import dataclasses
from typing import Any, FrozenSet, Mapping, Optional, Tuple

from estimator_pipeline import models
from estimator_pipeline.config import controls
from estimator_pipeline.config.config import Config
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models import model_fn as model_fn_lib
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import model_dir as model_dir_lib
from estimator_pipeline.train import tasks


@dataclasses.dataclass(frozen=True)
class Plan:
  """What preflight decided: everything a run needs, computed without writing.

  Frozen: built once from what the task and the checks return. A caller that needs
  another (an evaluation in a scratch folder) makes one with dataclasses.replace.
  """
  # What the run is built with: the flags with what preflight resolved (num_classes,
  # image_size, early_stopping_metric), as config.json saves it.
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
  model_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  variables: Optional[Mapping[str, list]] = None  # {name: shape}
  trainable: FrozenSet[str] = frozenset()
  latest_checkpoint: Optional[str] = None
  warm_start_checkpoint: Optional[str] = None
  warm_start_map: Mapping[str, str] = dataclasses.field(default_factory=dict)
  skipped_vars: Tuple[str, ...] = ()
  # Set when model_dir has nothing left to train: the line that says why.
  finished: Optional[str] = None
  # The last checkpoint is at --num_steps, but the run died before its final
  # evaluation and export: the run does only those.
  finish_only: bool = False
  # Console lines the process that owns model_dir shows before training: the params
  # file's train keys the run does not apply.
  notes: Tuple[str, ...] = ()


def preflight(cfg, chief=True, params=None, not_applied=()):
  """Checks flags, files, model and checkpoints; writes nothing. Returns a Plan.

  chief=False (a cluster's workers and evaluator) leaves the checks of model_dir's
  checkpoints to the chief: they change under the other tasks while the chief trains.
  params: the --params_file dict as driver.run read it (None: the task reads it);
  not_applied: (key, why) of its train keys the run does not apply (plan.notes).
  """
  cfg.validate()
  spec = models.get(cfg.model_name)
  task = tasks.for_model(spec)
  if cfg.params_file and not task.reads_params_file:
    raise UserError('--params_file is read by sequence models (--model_name=seqnn), '
                    'not by --model_name=%s: leave it out.' % cfg.model_name)
  train_files = files.list_files(cfg.train_record_path, '--train_record_path')
  eval_files = (files.list_files(cfg.eval_record_path, '--eval_record_path')
                if cfg.eval_record_path else None)
  found = task.prepare(cfg, spec, train_files, eval_files, params)
  cfg = _resolved(cfg, found)
  latest, finish_only = model_dir_lib.check(cfg, found.num_classes, found.image_size,
                                            chief=chief)
  plan = _plan(cfg, spec, task, found, train_files, eval_files,
               latest_checkpoint=latest, finish_only=finish_only,
               finished=(None if finish_only else
                         model_dir_lib.finished_message(cfg, latest)),
               notes=tuple('note: %s train.%s is not applied (%s).' % (
                   cfg.params_file, key, why) for key, why in not_applied))
  task.check_records(plan)
  checkpoints.check_scopes(cfg, plan.variables)
  model_dir_lib.check_space(cfg, plan.variables, plan.trainable)
  if latest and chief:
    checkpoints.check_resume_shapes(cfg, plan.variables, latest)
  if eval_files:
    _check_metric(cfg, found.metric_names)
  if cfg.checkpoint_path and not latest:
    plan = dataclasses.replace(plan, **dataclasses.asdict(checkpoints.warm_start(plan)))
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
  task = tasks.for_model(spec)
  if eval_files:
    found = task.prepare_evaluation(cfg, spec, model_dir, eval_files, scratch)
  else:
    found = task.prepare_export(cfg, spec, model_dir, scratch)
  plan = _plan(_resolved(cfg, found), spec, task, found, [], eval_files)
  if eval_files:
    task.check_eval_records(plan, eval_files)
  return plan


def _resolved(cfg, found):
  """The Config a run is built with: what the task found, in the flags' place."""
  # '' is the model's own default metric (pearsonr for sequence models).
  return cfg.replace(num_classes=found.num_classes, image_size=found.image_size,
                     early_stopping_metric=(cfg.early_stopping_metric or
                                            found.default_metric))


def _plan(cfg, spec, task, found, train_files, eval_files, **checkpoint_state):
  return Plan(config=cfg, spec=spec, task=task, train_files=train_files,
              eval_files=eval_files, num_classes=found.num_classes,
              image_size=found.image_size, data=found.data,
              model_params=found.model_params, variables=found.variables,
              trainable=found.trainable, **checkpoint_state)


def _check_metric(cfg, known):
  """A mistyped --early_stopping_metric is refused before training starts."""
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
