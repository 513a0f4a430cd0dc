"""TF_CONFIG roles, --distribution checks, the global batch, and the per-worker input
split (files, or records when there are fewer files than workers).

  .venv/bin/python -m pytest -q tests/test_distribute.py

The clusters themselves run in tests/test_cluster.py.
"""

import json

import pytest

from conftest import run_cli
from conftest import write_image_records
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline.data import input_fn
from estimator_pipeline.train import launcher as launch_local
from estimator_pipeline.core.errors import UserError
from estimator_pipeline import train
from estimator_pipeline.config import cluster as cluster_config
from estimator_pipeline.train import strategies

CLUSTER = {'chief': ['h0:1'], 'worker': ['h1:1', 'h2:1'], 'ps': ['h3:1'],
           'evaluator': ['h4:1']}


def _env(task_type, index=0, cluster=None):
  return {'TF_CONFIG': json.dumps({'cluster': cluster or CLUSTER,
                                   'task': {'type': task_type, 'index': index}})}


def test_no_tf_config_is_a_single_chief():
  task = cluster_config.task_from_env({})
  assert task.is_chief and not task.in_cluster and task.num_workers == 1


def test_tasks_know_their_place():
  worker = cluster_config.task_from_env(_env('worker', 1))
  assert (worker.type, worker.index, worker.worker_id) == ('worker', 1, 2)
  assert worker.num_workers == 3 and worker.num_ps == 1 and worker.has_evaluator
  assert worker.address() == 'h2:1' and not worker.is_chief
  assert cluster_config.task_from_env(_env('chief')).is_chief
  assert cluster_config.task_from_env(_env('evaluator')).type == 'evaluator'


@pytest.mark.parametrize('raw,expected', [
    ('{not json', 'not valid JSON'),
    (json.dumps({'cluster': {'worker': ['h:1']}, 'task': {'type': 'worker'}}),
     'exactly one "chief"'),
    (json.dumps({'cluster': {'master': ['h:1']}}), 'master'),
    (json.dumps({'cluster': CLUSTER, 'task': {'type': 'worker', 'index': 2}}),
     'worker:2 is not in the cluster'),
    (json.dumps({'cluster': CLUSTER, 'task': {'type': 'boss'}}), "'boss'"),
])
def test_bad_tf_config_names_the_problem(raw, expected):
  with pytest.raises(UserError, match=expected):
    cluster_config.task_from_env({'TF_CONFIG': raw})


def test_distribution_must_fit_the_cluster():
  single = cluster_config.Task()
  no_ps = {'chief': ['h0:1'], 'worker': ['h1:1']}
  ps_task = cluster_config.task_from_env(_env('chief'))
  mw_task = cluster_config.task_from_env(_env('chief', cluster=no_ps))
  for name in ('none', 'mirrored', 'multi_worker_mirrored'):
    cluster_config.check(name, single)
  cluster_config.check('parameter_server', ps_task)
  cluster_config.check('none', ps_task)  # The Estimator's classic between-graph mode.
  cluster_config.check('multi_worker_mirrored', mw_task)
  refused = [('parameter_server', single, 'needs a cluster with ps'),
             ('parameter_server', mw_task, 'needs ps tasks'),
             ('multi_worker_mirrored', ps_task, 'drop them'),
             ('mirrored', mw_task, 'use --distribution=multi_worker_mirrored'),
             ('none', mw_task, 'each would train its own copy')]
  for name, task, expected in refused:
    with pytest.raises(UserError, match=expected):
      cluster_config.check(name, task)


def test_global_batch_is_per_replica_batch_times_replicas():
  mw = cluster_config.task_from_env(_env('worker', cluster={'chief': ['a:1'],
                                                         'worker': ['b:1', 'c:1']}))
  sync = strategies.layout('multi_worker_mirrored', mw, 16, gpus=2)
  assert (sync.mode, sync.replicas, sync.examples_per_step) == ('sync', 6, 96)
  assert '16 per replica x 6 replica(s) = 96 examples per step' in sync.describe()
  mirrored = strategies.layout('mirrored', cluster_config.Task(), 8, gpus=4)
  assert (mirrored.mode, mirrored.examples_per_step) == ('sync', 32)
  assert strategies.layout('mirrored', cluster_config.Task(), 8, gpus=0).replicas == 1
  # Asynchronous: one step is one worker's batch.
  ps = strategies.layout('parameter_server', cluster_config.task_from_env(_env('chief')),
                         16, gpus=0)
  assert (ps.mode, ps.examples_per_step) == ('async', 16)
  assert strategies.layout('none', cluster_config.Task(), 16, gpus=2).examples_per_step == 16


def test_strategies_are_the_estimators_v1_ones():
  single = cluster_config.Task()
  assert strategies.make_strategy('none', single) is None
  mirrored = strategies.make_strategy('mirrored', single)
  assert isinstance(mirrored, tf.compat.v1.distribute.MirroredStrategy)
  assert mirrored.num_replicas_in_sync == max(1, strategies.num_local_gpus())
  # RunConfig takes it (it refuses TF2's ParameterServerStrategy).
  run_config = tf.estimator.RunConfig(train_distribute=mirrored)
  assert run_config.train_distribute is mirrored
  # The evaluator and ps tasks never get a strategy.
  for role in ('evaluator', 'ps'):
    assert strategies.make_strategy('parameter_server',
                                    cluster_config.task_from_env(_env(role))) is None


def _pipeline_labels(files, context, is_training=False, batch_size=1, steps=None):
  parse = lambda s: (tf.constant(0), tf.io.parse_single_example(  # noqa: E731
      s, {'image/class/label': tf.io.FixedLenFeature([], tf.int64)})[
          'image/class/label'])
  fn = input_fn.make_input_fn(files, is_training=is_training, batch_size=batch_size,
                              parse_fn=parse, shuffle_buffer_size=4, seed=1)
  dataset = fn(input_context=context)
  if steps:
    dataset = dataset.take(steps)
  return [int(v) for _, labels in dataset for v in labels.numpy()]


@pytest.mark.parametrize('num_files,workers', [(3, 2), (2, 2), (1, 3), (2, 3)])
def test_workers_read_every_record_exactly_once(tmp_path, num_files, workers):
  # Labels are unique record ids; fewer files than workers shards by record.
  per_file = 7
  files = [write_image_records(str(tmp_path / ('train-%d' % f)),
                               list(range(f * per_file, (f + 1) * per_file)), size=4,
                               seed=f) for f in range(num_files)]
  seen = []
  for worker in range(workers):
    context = tf.distribute.InputContext(num_input_pipelines=workers,
                                         input_pipeline_id=worker)
    mine = _pipeline_labels(files, context)
    assert mine, 'worker %d reads nothing' % worker
    seen.append(mine)
  union = sorted(sum(seen, []))
  assert union == list(range(num_files * per_file))  # Each record once, none missing.


def test_training_epoch_of_each_worker_is_its_own_share(tmp_path):
  files = [write_image_records(str(tmp_path / 'train-0'), list(range(10)), size=4)]
  shares = []
  for worker in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
    # Training shuffles and repeats: two epochs of the worker's share.
    labels = _pipeline_labels(files, context, is_training=True, steps=10)
    assert sorted(labels[:5]) == sorted(labels[5:])
    shares.append(set(labels))
  assert not shares[0] & shares[1]
  assert shares[0] | shares[1] == set(range(10))


def test_classic_ps_mode_splits_input_without_a_strategy():
  chief = cluster_config.task_from_env(_env('chief'))
  worker = cluster_config.task_from_env(_env('worker', 1))
  assert strategies.fallback_input_context('parameter_server', chief) is None
  context = strategies.fallback_input_context('none', worker)
  assert (context.num_input_pipelines, context.input_pipeline_id) == (3, 2)
  evaluator = cluster_config.task_from_env(_env('evaluator'))
  assert strategies.fallback_input_context('none', evaluator) is None


def test_launcher_cluster_and_tf_configs():
  cluster = launch_local.make_cluster(2, 1, True, ports=[10, 11, 12, 13])
  assert cluster == {'chief': ['127.0.0.1:10'], 'worker': ['127.0.0.1:11'],
                     'ps': ['127.0.0.1:12'], 'evaluator': ['127.0.0.1:13']}
  configs = launch_local.task_configs(cluster)
  assert [(t, i) for t, i, _ in configs] == [('ps', 0), ('chief', 0), ('worker', 0),
                                             ('evaluator', 0)]
  for task_type, index, raw in configs:
    task = cluster_config.task_from_env({'TF_CONFIG': raw})
    assert (task.type, task.index) == (task_type, index)
  assert len(set(launch_local.free_ports(5))) == 5
  with pytest.raises(UserError, match='num_workers'):
    launch_local.make_cluster(0, 0, False)


@pytest.mark.filterwarnings('ignore:To make it possible to preserve tf.data options')
def test_mirrored_single_process_reaches_the_bar(image_data, tmp_path, capfd):
  cfg = config.Config(
      model_dir=str(tmp_path / 'run'),
      train_record_path=str(image_data / 'train-*.tfrecord'),
      eval_record_path=str(image_data / 'validation-*.tfrecord'),
      model_name='cifarnet', num_steps=30, batch_size=16, save_checkpoints_steps=30,
      log_every_steps=10, learning_rate=0.02, random_flip=False,
      distribution='mirrored')
  result = train.run(cfg)
  assert result.global_step == 30
  assert result.eval_metrics['accuracy'] >= 0.9
  err = capfd.readouterr().err
  assert 'Distribution mirrored: ' in err and 'Replicas of this task on ' in err
  assert result.exports['final'] and result.exports['best']


def test_bad_tf_config_is_one_line_and_exit_2(image_data, tmp_path, monkeypatch):
  # The library cases are above; this is the same path through train.py.
  monkeypatch.setenv('TF_CONFIG', '{"cluster": {"worker": ["127.0.0.1:1"]}, '
                     '"task": {"type": "worker"}}')
  proc = run_cli(['train.py', '--model_dir=%s' % (tmp_path / 'run'),
                  '--train_record_path=%s' % (image_data / 'train-*.tfrecord'),
                  '--model_name=cifarnet', '--num_steps=4'])
  assert proc.returncode == 2, proc.stderr[-2000:]
  errors = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and 'exactly one "chief"' in errors[0], proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'run').exists()

