"""Flags of the local cluster launcher; the defaults live with the launcher.

  python -m estimator_pipeline.launch_local --help
"""

from absl import flags as absl_flags

from estimator_pipeline import launch_local


def _define(definer, name, default, help_text):
  if name not in absl_flags.FLAGS:
    definer(name, default, help_text)


def define_launch_flags():
  """Defines the flags of `python -m estimator_pipeline.launch_local`. Idempotent."""
  _define(absl_flags.DEFINE_integer, 'num_workers', 2,
          'Training workers to start, the chief included: the first is the TF_CONFIG '
          '"chief" task, the others are "worker" tasks.')
  _define(absl_flags.DEFINE_integer, 'num_ps', 0,
          'Parameter-server tasks to start (for --distribution=parameter_server or the '
          'classic between-graph mode); 0 for multi_worker_mirrored.')
  _define(absl_flags.DEFINE_boolean, 'evaluator', False,
          'Also start an evaluator task, which evaluates every new checkpoint and '
          'writes the exports; without it the chief exports at the end.')
  _define(absl_flags.DEFINE_string, 'log_dir', '',
          'Folder for one log file per task (chief-0.log, ...); empty uses '
          '<model_dir>/logs for a local --model_dir.')
  _define(absl_flags.DEFINE_string, 'script', '',
          'The training script every task runs; empty runs this repository\'s train.py.')
  _define(absl_flags.DEFINE_float, 'grace_secs', launch_local.DEFAULT_GRACE_SECS,
          'Seconds a task has to end after SIGTERM before it is killed.')
