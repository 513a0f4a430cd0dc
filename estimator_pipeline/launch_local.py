r"""Runs a whole TF_CONFIG cluster as processes on this machine (train/launcher.py).

  python -m estimator_pipeline.launch_local --num_workers=2 --num_ps=1 --evaluator -- \
      --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=cifarnet \
      --distribution=parameter_server --num_steps=200

Everything after `--` goes to every task's `python train.py`; `--help` lists the
launcher's own flags. Ctrl-C or SIGTERM stops every task (SIGINT, then SIGTERM after
--grace_secs, then SIGKILL) and exits 130 or 143; a model_dir another run trains is
refused before anything starts.
"""

import sys

from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.core import errors
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import launcher
from flags import launch as launch_flags


def _main(argv):
  flag_values = absl_flags.FLAGS
  train_args = argv[1:]
  if train_args and train_args[0] == '--':
    train_args = train_args[1:]
  if not train_args:
    raise UserError('no train.py flags: put them after "--", e.g. '
                    '`... --evaluator -- --model_dir=runs/x --train_record_path=...`.')
  return launcher.launch(train_args, num_workers=flag_values.num_workers,
                         num_ps=flag_values.num_ps, evaluator=flag_values.evaluator,
                         log_dir=flag_values.log_dir or None,
                         script=flag_values.script or launcher.DEFAULT_SCRIPT,
                         grace_secs=flag_values.grace_secs)


if __name__ == '__main__':
  launch_flags.define_launch_flags()
  absl_flags.adopt_module_key_flags(launch_flags)  # So --help lists them.
  app.run(lambda argv: sys.exit(errors.run_main(_main, argv)),
          flags_parser=flags.parse_or_exit)
