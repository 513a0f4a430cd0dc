"""model_dir/flags.txt: the run's flags, one `--name=value` line each, to replay it.

  python train.py --flagfile=runs/x/flags.txt                    # the same run again
  python train.py --flagfile=runs/x/flags.txt --model_dir=runs/y # flags after it win
"""

import os

from estimator_pipeline.core import files

FLAGS_FILE = 'flags.txt'


def flagfile_text(cfg):
  """One '--name=value' line per Config field, for `train.py --flagfile=...`."""
  lines = ['# Written by train.py; repeat this run with:',
           '#   python train.py --flagfile=%s' % os.path.join(
               cfg.model_dir or '.', FLAGS_FILE)]
  for name, value in sorted(cfg.to_dict().items()):
    if isinstance(value, bool):
      value = 'true' if value else 'false'
    elif isinstance(value, float):
      value = repr(value)
    lines.append('--%s=%s' % (name, value))
  return '\n'.join(lines) + '\n'


def save_flagfile(cfg):
  """Writes model_dir/flags.txt atomically; returns its path."""
  return files.atomic_write(os.path.join(cfg.model_dir, FLAGS_FILE), flagfile_text(cfg))
