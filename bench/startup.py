"""Start-up: seconds from `python train.py` to the first training step, and one export.

Measured against the floor of any TensorFlow program on the same machine in the same
run: a fresh `python -c "import tensorflow"`. `python -X importtime` names the imports
that dominate `import train`.

  python -m bench --only=startup
"""

import collections
import os
import re
import signal
import subprocess
import sys
import time

from bench import common
from bench import data as data_lib
from estimator_pipeline import config as config_lib
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import plan as plan_lib

_FIRST_STEP = re.compile(r'^step (\d+)/')


def _child_seconds(args):
  start = time.perf_counter()
  subprocess.run([sys.executable] + args, cwd=common.REPO, env=common.python_env(),
                 check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  return time.perf_counter() - start


def first_step_seconds(records, model_dir):
  """Seconds from spawning train.py to its console line for step 2 (one step ~ms)."""
  args = [sys.executable, 'train.py', '--model_dir=' + model_dir,
          '--train_record_path=' + records, '--model_name=cifarnet', '--num_steps=1000',
          '--log_every_steps=1', '--batch_size=32']
  start = time.perf_counter()
  process = subprocess.Popen(args, cwd=common.REPO, env=common.python_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
  seconds = None
  lines = []
  try:
    for raw in process.stderr:
      lines.append(raw)
      if _FIRST_STEP.match(raw):
        seconds = time.perf_counter() - start
        break
  finally:
    # The run has shown what we measure; stop it rather than train 1000 steps.
    if process.poll() is None:
      process.send_signal(signal.SIGTERM)
    process.stderr.close()
    process.wait()
  if seconds is None:
    raise RuntimeError('train.py printed no step line:\n' + ''.join(lines[-20:]))
  return seconds


def make_export_runner(records, model_dir):
  """fn() -> seconds of one export (what FinalExporter does) of a trained cifarnet."""
  cfg = config_lib.Config(model_dir=model_dir, train_record_path=records,
                          model_name='cifarnet', num_steps=2, batch_size=8,
                          save_checkpoints_steps=2)
  plan = plan_lib.preflight(cfg)
  estimator = estimator_lib.build_estimator(plan)
  train_input, _ = plan.task.input_fns(plan)
  estimator.train(train_input, max_steps=cfg.num_steps)
  export_dir = os.path.join(model_dir, 'export')

  def run():
    start = time.perf_counter()
    estimator.export_saved_model(export_dir, plan.task.serving_input_fn(plan))
    return time.perf_counter() - start
  return run


def import_profile():
  """{top-level package: self seconds} of `import train`, the biggest first."""
  start = time.perf_counter()
  result = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'import train'],
                          cwd=common.REPO, env=common.python_env(),
                          capture_output=True, text=True, check=True)
  seconds = time.perf_counter() - start
  totals = collections.Counter()
  for raw in result.stderr.splitlines():
    match = re.match(r'import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)', raw)
    if not match:
      continue
    totals[match.group(4).split('.')[0]] += int(match.group(1))
  total = sum(totals.values())
  top = {name: round(us / 1e6, 3) for name, us in totals.most_common(8)}
  return {'total_seconds': round(total / 1e6, 3), 'by_package_seconds': top,
          'modules': sum(1 for raw in result.stderr.splitlines()
                         if raw.startswith('import time:') and '|' in raw) - 1,
          'wall_seconds': seconds}


def run(work_dir, toy=False, repeats=3):
  os.makedirs(work_dir, exist_ok=True)
  images = data_lib.make_image_set(os.path.join(work_dir, 'data'), 64, 32, 32,
                                   num_classes=4, folder=False)
  counter = [0]

  def fresh_dir():
    counter[0] += 1
    return os.path.join(work_dir, 'run%d' % counter[0])

  export = make_export_runner(images['records'], fresh_dir())
  common.log('start-up: train.py (cifarnet) to its first step; one export')
  variants = {
      'tf_import': lambda: _child_seconds(['-c', 'import tensorflow']),
      'train_import': lambda: _child_seconds(['-c', 'import train']),
      'train_py_first_step': lambda: first_step_seconds(images['records'], fresh_dir()),
      'export': export,
  }
  if toy:
    del variants['train_import']  # Taken from the profile's run below instead.
  raw = common.interleave(variants, repeats, log=common.log)
  profile = import_profile()
  if toy:
    raw['train_import'] = [profile['wall_seconds']]
  profile['wall_seconds'] = round(profile['wall_seconds'], 2)
  return {'startup': {
      'tf_import_seconds': common.stats(raw['tf_import']),
      'train_import_seconds': common.stats(raw['train_import']),
      'train_py_first_step_seconds': common.stats(raw['train_py_first_step']),
      'export_seconds': common.stats(raw['export']),
      'first_step_vs_tf_import_ratio': common.stats(
          common.ratios(raw['train_py_first_step'], raw['tf_import'])),
      'train_import_vs_tf_import_ratio': common.stats(
          common.ratios(raw['train_import'], raw['tf_import'])),
      'export_vs_tf_import_ratio': common.stats(
          common.ratios(raw['export'], raw['tf_import'])),
      'import_profile': profile,
  }}
