"""Real clusters on this machine through launch_local: a parameter-server cluster and a
2-worker multi_worker_mirrored cluster train cifarnet to the single-process accuracy
bar (tests/test_train.py: >= 0.9 after 30 steps of 16), leave one consistent model_dir,
and leave no process behind; a killed worker stops the whole cluster; every
checkpoint the chief writes holds the step it is named after, so the evaluator never
reports a step model_dir does not hold. Stopping a cluster and its lock:
test_cluster_stop.py. Tests marked under_load run beside two busy loops.

  .venv/bin/python -m pytest -q tests/test_cluster.py
"""

import glob
import os
import re
import signal
import subprocess

import numpy as np
import pytest

import cluster_support as support
from conftest import image_config
from conftest import write_image_data
import seq_helpers
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.core import files
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import launcher
from estimator_pipeline.train import plan as plan_lib

BAR = 0.9  # What single-process training reaches on this data (test_train.py).


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  return write_image_data(tmp_path_factory.mktemp('cluster_data'),
                          train_formats=('png',), validation_seed=9)


def _run_cluster(launch_flags, train_flags, timeout=900):
  proc = support.launcher(launch_flags, train_flags)
  try:
    out, _ = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    raise
  started = next(l for l in out.splitlines() if l.startswith('launch_local: started'))
  return proc.returncode, out, support.task_pids(started)


def _assert_one_consistent_model_dir(model_dir, num_steps):
  cfg = config.load(model_dir)
  assert cfg is not None and cfg.num_classes == 3  # Written by the chief.
  assert not glob.glob(os.path.join(model_dir, '*.tmp'))
  step = files.checkpoint_step(tf.train.latest_checkpoint(model_dir))  # pylint: disable=protected-access
  assert step >= num_steps
  history = files.eval_history(model_dir)
  # The last evaluation is of a checkpoint at or past --num_steps, and reaches the bar.
  # (With asynchronous ps updates the chief's very last save can be a step past the one
  # the evaluator stopped at: another worker's update was in flight.)
  evaluated = max(history)
  assert num_steps <= evaluated <= step, (sorted(history), step)
  assert history[evaluated]['accuracy'] >= BAR, history[evaluated]
  for name in ('best', 'final'):
    versions = os.listdir(os.path.join(model_dir, 'export', name))
    # best: one version per improvement; final: one, from the last checkpoint.
    assert versions and all(v.isdigit() for v in versions), (name, versions)
    assert name == 'best' or len(versions) == 1, versions
    export = os.path.join(model_dir, 'export', name, max(versions, key=int))
    assert os.path.isfile(os.path.join(export, 'saved_model.pb'))
    assert os.path.isfile(os.path.join(export, 'variables', 'variables.index'))
  loaded = tf.saved_model.load(glob.glob(os.path.join(model_dir, 'export', 'final',
                                                      '*'))[0])
  assert 'serving_default' in loaded.signatures
  return evaluated, history


def _steps_ran(out, task):
  found = re.search(r'\[%s\] %s finished: ran (\d+) step' % (task, task), out)
  assert found, out[-3000:]
  return int(found.group(1))


@pytest.mark.under_load
def test_parameter_server_cluster_trains_to_the_bar(data, tmp_path):
  model_dir = str(tmp_path / 'ps_run')
  code, out, pids = _run_cluster(
      ['--num_workers=2', '--num_ps=1', '--evaluator'],
      support.train_flags(data, model_dir, distribution='parameter_server',
                          num_steps=40, save_checkpoints_steps=20))
  assert code == 0, out[-5000:]
  assert set(pids) == {'ps:0', 'chief:0', 'worker:0', 'evaluator:0'}
  assert 'launch_local: done: chief:0, worker:0, evaluator:0 finished; stopped ps:0' in out
  assert 'variables on the ps tasks, asynchronous updates' in out
  assert re.search(r'\[worker:0\] Replicas of this task on /job:worker/[^;]*task:0/'
                   r'device:CPU:0; variables on /job:ps/', out), out[-5000:]
  step, _ = _assert_one_consistent_model_dir(model_dir, 40)
  # Asynchronous: the two workers' steps add up to the global step (the worker may
  # join after the chief's first steps, at its next readiness poll, and run few).
  assert _steps_ran(out, 'chief:0') + _steps_ran(out, 'worker:0') >= 40
  assert '[evaluator:0] eval at step %d' % step in out
  for task in pids:
    assert os.path.getsize(os.path.join(model_dir, 'logs', task.replace(':', '-') +
                                        '.log')) > 0
  support.assert_no_process_left(pids)


def test_classic_between_graph_ps_cluster_without_a_strategy(data, tmp_path):
  # --distribution=none with ps tasks: the Estimator's own replica_device_setter mode.
  # No evaluator: the chief evaluates and exports at the end.
  model_dir = str(tmp_path / 'classic_run')
  code, out, pids = _run_cluster(['--num_workers=2', '--num_ps=1'],
                                 support.train_flags(data, model_dir, num_steps=40,
                                                     save_checkpoints_steps=20))
  assert code == 0, out[-5000:]
  assert 'Distribution none: 2 worker(s) x 1 CPU, variables on the ps tasks' in out
  step, _ = _assert_one_consistent_model_dir(model_dir, 40)
  assert '[chief:0] eval at step %d' % step in out
  support.assert_no_process_left(pids)


def test_multi_worker_mirrored_cluster_trains_to_the_bar(data, tmp_path):
  model_dir = str(tmp_path / 'mwms_run')
  # No evaluator: the chief evaluates the last checkpoint and exports it itself.
  code, out, pids = _run_cluster(
      ['--num_workers=2'],
      support.train_flags(data, model_dir, distribution='multi_worker_mirrored'))
  assert code == 0, out[-5000:]
  assert set(pids) == {'chief:0', 'worker:0'}
  assert 'exports are written by the chief at the end' in out
  assert '[chief:0] eval at step 30' in out
  assert '--batch_size=16 per replica x 2 replica(s) = 32 examples per step' in out
  step, _ = _assert_one_consistent_model_dir(model_dir, 30)
  assert step == 30  # Synchronous: no step past --num_steps.
  # Synchronous: both workers ran every step together.
  assert _steps_ran(out, 'chief:0') == _steps_ran(out, 'worker:0') == 30
  # The worker's scratch copies of the chief's checkpoints and summaries are gone.
  assert sorted(d for d in os.listdir(model_dir)
                if os.path.isdir(os.path.join(model_dir, d))) == ['eval', 'export',
                                                                  'logs']
  support.assert_no_process_left(pids)


def test_killed_worker_stops_the_cluster_and_names_it(data, tmp_path):
  proc = support.launcher(['--num_workers=2', '--grace_secs=5'],
                          support.train_flags(data, str(tmp_path / 'run'),
                                              **support.UNTIL_STOPPED,
                                              distribution='multi_worker_mirrored'))
  lines = []
  try:
    pids = support.task_pids(support.read_until(proc, r'^launch_local: started',
                                                lines))
    # Mid-run: once the worker trains, its chief waits on it at every step.
    support.read_until(proc, r'^\[worker:0\] step \d+', lines)
    os.kill(pids['worker:0'], signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
  out = ''.join(lines) + out
  assert proc.returncode == 1, out[-3000:]
  error = [l for l in out.splitlines() if l.startswith('error:')]
  assert error and 'task worker:0 was killed by SIGKILL' in error[-1], out[-3000:]
  assert 'stopped the cluster (chief:0)' in error[-1]
  support.assert_no_process_left(pids)


class _AnotherWorkersUpdate(tf.estimator.CheckpointSaverListener):
  """What an asynchronous ps worker can do between the chief's read of the global step
  and its save: one more update."""

  def begin(self):
    self._update = tf.compat.v1.assign_add(tf.compat.v1.train.get_global_step(), 1)

  def before_save(self, session, global_step_value):
    if global_step_value:
      session.run(self._update)


def test_every_checkpoint_holds_the_step_it_is_named_after(data, tmp_path):
  plan = plan_lib.preflight(image_config(data, tmp_path / 'run', num_steps=12,
                                         save_checkpoints_steps=4))
  estimator = estimator_lib.build_estimator(plan)
  train_input, eval_input = plan.task.input_fns(plan)
  estimator.train(train_input, max_steps=12, saving_listeners=[_AnotherWorkersUpdate()])
  state = tf.train.get_checkpoint_state(str(tmp_path / 'run'))
  named = [files.checkpoint_step(p) for p in state.all_model_checkpoint_paths]
  held = [int(tf.train.load_checkpoint(p).get_tensor('global_step'))
          for p in state.all_model_checkpoint_paths]
  assert named == held and named == sorted(named) and named[-1] >= 12, (named, held)
  # What the evaluator reports (and exports) is a step model_dir names.
  metrics = estimator.evaluate(eval_input, checkpoint_path=state.model_checkpoint_path)
  assert metrics['global_step'] == files.checkpoint_step(state.model_checkpoint_path)


def _non_finite_variables(model_dir):
  """'checkpoint: variable' of every float variable in model_dir's checkpoints that
  holds a NaN or an Inf."""
  found = []
  for index in sorted(glob.glob(os.path.join(model_dir, 'model.ckpt-*.index'))):
    prefix = index[:-len('.index')]
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      value = np.asarray(reader.get_tensor(name))
      if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
        found.append('%s: %s' % (os.path.basename(prefix), name))
  return found


def test_nan_in_a_parameter_server_cluster_stops_it_and_keeps_finite_checkpoints(
    data, tmp_path):
  # As tests/test_bad_records.py makes a NaN: a learning rate no weight survives, here
  # one past float32's range, so the first update turns the weights Inf while the loss
  # of that step (of the weights before it) is still finite. With a checkpoint every
  # step the chief's saver would keep them; the other worker's updates meanwhile land
  # between the chief's check of the weights and its save.
  model_dir = str(tmp_path / 'nan_run')
  code, out, pids = _run_cluster(
      ['--num_workers=2', '--num_ps=1'],
      support.train_flags(data, model_dir, distribution='parameter_server',
                          eval_record_path='', num_steps=1000, learning_rate=1e39,
                          save_checkpoints_steps=1, log_every_steps=1))
  # As a single process: bad input, exit status 2, one line naming the step.
  assert code == 2, out[-5000:]
  assert 'Traceback' not in out, out[-5000:]
  error = [l for l in out.splitlines() if l.startswith('error:')]
  assert len(error) == 1, out[-5000:]
  assert re.search(r'became NaN or Inf at step \d+; nothing from that step was saved',
                   error[0]), error[0]
  assert 'lower --learning_rate (now 1e+39)' in error[0]
  # Whatever was kept is finite. Usually that is the chief's first save, at step 0;
  # but under parameter servers the other worker's first (Inf) update can land before
  # it, and then that save is refused too and nothing is kept. Without the guard a
  # checkpoint is always written, Inf weights and all, which this check catches.
  checkpoints = glob.glob(os.path.join(model_dir, 'model.ckpt-*.index'))
  assert not _non_finite_variables(model_dir)
  latest = tf.train.latest_checkpoint(model_dir)
  assert (latest + '.index' in checkpoints) if checkpoints else latest is None
  support.assert_no_process_left(pids)


def test_a_cluster_chief_lists_the_params_keys_it_does_not_apply(tmp_path):
  # As a single process does (tests/test_seqnn_train.py): the chief speaks for the run.
  records = seq_helpers.write_dataset(tmp_path / 'data', 'new', n_train=4, n_valid=2)
  params = seq_helpers.write_params(tmp_path / 'params.json')
  log = str(tmp_path / 'chief.log')
  chief = support.start_task(
      launcher.make_cluster(1, 0, False), 'chief',
      ['--model_name=seqnn', '--params_file=' + params, '--batch_size=2',
       '--model_dir=' + str(tmp_path / 'run'), '--num_steps=2',
       '--train_record_path=' + os.path.join(records, 'train-*.tfr')], log)
  try:
    assert chief.wait(timeout=600) == 0, support.read(log)[-3000:]
  finally:
    support.stop_all([chief])
  assert ('note: %s train.train_epochs_max is not applied (counts epochs; the run '
          'counts steps: set --num_steps).' % params) in support.read(log).splitlines()
