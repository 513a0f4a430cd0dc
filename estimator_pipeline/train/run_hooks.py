r"""The one run skeleton: what watches a training process, for a single process and for
every task of a cluster alike.

local.py and cluster.py both take their hooks, checkpoint listeners, the translation
of a failed step into one line, the files written before training and the closing
summary from here, so a new safety check added here guards both. What differs between
a single process and a cluster's tasks is a field of `Role`, not a copy:

  python train.py --model_dir=runs/x --train_record_path='data/train-*' \
      --model_name=cifarnet --learning_rate=1e39
  # error: the weights became NaN or Inf at step 1; nothing from that step was
  # saved and the last good checkpoint runs/x/model.ckpt-0 is kept: ...
"""

import contextlib
import dataclasses

import tensorflow as tf

from estimator_pipeline.config import flagfile
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.train import checkpoints
from estimator_pipeline.train import failures
from estimator_pipeline.train import hooks
from estimator_pipeline.train import monitoring
from estimator_pipeline.train import safety
from estimator_pipeline.train import skips as skips_lib

_CLUSTER_RESUME = 'start the whole cluster again to resume'


@dataclasses.dataclass(frozen=True)
class Role:
  """What this process is in the run, where that changes how the run is watched."""
  # The cluster task ('chief:0', 'worker:1', 'evaluator:0'); '' for a single process,
  # which saves a checkpoint on Ctrl-C (a cluster's tasks leave saving to the chief's
  # saver), writes flags.txt (a cluster's flags replay only with its TF_CONFIG) and
  # does not count its share of the steps.
  name: str = ''
  # Writes model_dir's files and the TensorBoard summaries of training, and says what
  # the run starts from: the single process, a cluster's chief.
  chief: bool = True
  # Parameter servers: another worker's update can land between the check of the
  # weights and their save, so each written checkpoint is read back before it counts.
  asynchronous: bool = False

  @property
  def in_cluster(self):
    return bool(self.name)

  def during(self, what):
    return '%s (%s)' % (what, self.name) if self.name else what


LOCAL = Role()


class RunHooks:
  """Every hook and saving listener of one process's training and evaluation.

  training, evaluation: the hooks of the Estimator's specs; listeners: the chief
  saver's (estimator.build_estimator). Built once per run: the skipped-record counters
  and the step the guard last saw are read back when the run fails or ends.
  """

  def __init__(self, plan, signals, examples_per_step, role=LOCAL):
    cfg = plan.config
    self.role = role
    self._plan = plan
    self._signals = signals
    resume = _CLUSTER_RESUME if role.in_cluster else 'run the same command to resume'
    # With gradient accumulation a step is one update of grad_accum_steps batches.
    examples = examples_per_step * cfg.grad_accum_steps
    self.guard = safety.SafetyHook(signals, cfg.model_dir, save=not role.in_cluster,
                                   during=role.during('training'), resume=resume)
    self.counter = hooks.StepCounter() if role.in_cluster else None
    self.skips = skips_lib.SkipCounters(cfg.skip_corrupt_records, cfg.eval_steps)
    self.training = [hooks.ProgressHook(cfg.num_steps, examples, cfg.log_every_steps),
                     self.guard]
    if self.counter:
      self.training.append(self.counter)
    if role.chief:
      # The other tasks would write a second copy of each summary into model_dir.
      self.training.extend(monitoring.training_hooks(cfg, plan.model_params, examples))
    self.training.extend(self.skips.training_hooks())
    self.listeners = [safety.FiniteCheckpointListener(
        cfg.model_dir, failures.guard_advice(cfg), reread=role.asynchronous)]
    self.evaluation = [safety.SafetyHook(signals, cfg.model_dir, save=False,
                                         during=role.during('evaluation'),
                                         resume=resume, announce=True)]
    self.evaluation.extend(self.skips.evaluation_hooks())

  def failed_step(self):
    """The step whose session run raised: one past the last that completed."""
    done = self.guard.last_step
    if done is None:
      done = files.checkpoint_step(self._plan.latest_checkpoint)
    return done + 1

  @contextlib.contextmanager
  def failures_explained(self):
    """Turns a step that failed because of the data or the flags (a record, a NaN)
    into one line (UserError); disk errors go on to driver.run, which names the disk."""
    cfg = self._plan.config
    try:
      yield
    except tf.errors.OpError as e:
      if failures.is_disk_error(str(e)):
        raise
      if self._signals.received:
        # The other tasks stopped too (a ps gone mid-step): the signal is the story.
        raise self.guard.interrupted() from None
      translated = failures.translate(e, self._plan, self.failed_step())
      if translated is None:
        raise
      raise translated from None
    except tf.compat.v1.train.NanLossDuringTrainingError:
      raise safety.non_finite_error(self.failed_step(), cfg.model_dir,
                                    failures.guard_advice(cfg)) from None


def write_run_files(plan, role=LOCAL):
  """What the process that owns model_dir writes before training, and says: config
  .json (what preflight resolved), flags.txt, the task's files and notes, the params
  file's keys not applied, and what the run starts from. The other tasks write
  nothing: the chief cleans the files of killed runs at its start, and would remove
  one they were still writing."""
  if not role.chief:
    return
  cfg = plan.config
  cfg.save()
  if not role.in_cluster:
    flagfile.save_flagfile(cfg)
  for line in plan.task.write_run_files(plan, exports=True):
    console.line(line)
  for line in plan.notes:
    console.line(line)
  announce(plan)


def announce(plan):
  """One line: resuming, warm-starting or starting from scratch."""
  cfg = plan.config
  if plan.finish_only:
    console.line('%s is at --num_steps=%d, but its run stopped before the final '
                 'evaluation and export: doing those now.' % (plan.latest_checkpoint,
                                                              cfg.num_steps))
  elif plan.latest_checkpoint:
    console.line('Resuming from %s (step %d); --checkpoint_path is not applied.' % (
        plan.latest_checkpoint, files.checkpoint_step(plan.latest_checkpoint)))
  elif plan.warm_start_checkpoint:
    console.line('Warm-starting %d variables from %s%s.' % (
        len(plan.warm_start_map), cfg.checkpoint_path
        if checkpoints.is_keras_h5(cfg.checkpoint_path) else plan.warm_start_checkpoint,
        (' (excluded: %s)' % ', '.join(cfg.scopes('checkpoint_exclude_scopes'))
         if cfg.checkpoint_exclude_scopes else '')))
    if plan.skipped_vars:
      console.line('warning: --ignore_missing_vars skipped %d variables: %s' % (
          len(plan.skipped_vars), ', '.join(plan.skipped_vars[:10]) +
          (' ...' if len(plan.skipped_vars) > 10 else '')))
  else:
    console.line('Training %s from scratch in %s.' % (cfg.model_name, cfg.model_dir))
