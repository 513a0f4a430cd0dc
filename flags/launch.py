"""Flags of the local cluster launcher; the defaults live with the launcher.

  python -m estimator_pipeline.launch_local --help
"""

from absl import flags as absl_flags

from estimator_pipeline.train import launcher
from flags.common import define_own


def define_launch_flags():
  """Defines the flags of `python -m estimator_pipeline.launch_local`. Idempotent."""
  define_own(absl_flags.DEFINE_integer, 'num_workers', 2,
             'Training workers to start, the chief included: the first is the TF_CONFIG '
             '"chief" task, the others are "worker" tasks.')
  define_own(absl_flags.DEFINE_integer, 'num_ps', 0,
             'Parameter-server tasks to start (for --distribution=parameter_server or the '
             'classic between-graph mode); 0 for multi_worker_mirrored.')
  define_own(absl_flags.DEFINE_boolean, 'evaluator', False,
             'Also start an evaluator task, which evaluates every new checkpoint and '
             'writes the exports; without it the chief exports at the end.')
  define_own(absl_flags.DEFINE_string, 'log_dir', '',
             'Folder for one log file per task (chief-0.log, ...); empty uses '
             '<model_dir>/logs for a local --model_dir.')
  define_own(absl_flags.DEFINE_string, 'script', '',
             'The training script every task runs; empty runs this repository\'s train.py.')
  define_own(absl_flags.DEFINE_float, 'grace_secs', launcher.DEFAULT_GRACE_SECS,
             'Seconds each task has to end after SIGINT before it gets SIGTERM, and '
             'again after SIGTERM before it gets SIGKILL, when the cluster is stopped.')
