r"""Which task of a cluster this process is (TF_CONFIG), and the strategy it trains with.

The Estimator runs on TensorFlow's own distributed runtime: a chief, workers, parameter
servers and an evaluator, each started with the same flags and its own TF_CONFIG:

  TF_CONFIG='{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222"],
                          "ps": ["host2:2222"], "evaluator": ["host3:2222"]},
              "task": {"type": "worker", "index": 0}}' \
  python train.py --model_dir=gs://bucket/runs/flowers --distribution=parameter_server ...

`--distribution` picks one of the strategies the Estimator accepts
(tf.compat.v1.distribute; RunConfig refuses the TF2 ParameterServerStrategy):

  none                   one device; with ps tasks in TF_CONFIG, the Estimator's classic
                         between-graph replication (variables on the ps tasks, async).
  mirrored               every local GPU of one machine (the CPU when there is none),
                         synchronous all-reduce.
  multi_worker_mirrored  every worker (chief included), each with all its local GPUs,
                         synchronous collective all-reduce; no ps tasks.
  parameter_server       tf.compat.v1.distribute.experimental.ParameterServerStrategy:
                         variables on the ps tasks, workers step asynchronously.

--batch_size is always per replica (one device of one worker): see `describe`.
"""

import contextlib
import dataclasses
import json
import os
from typing import Dict, List

from estimator_pipeline.errors import UserError

DISTRIBUTIONS = ('none', 'mirrored', 'multi_worker_mirrored', 'parameter_server')
CHIEF, WORKER, PS, EVALUATOR = 'chief', 'worker', 'ps', 'evaluator'
TRAINING_JOBS = (CHIEF, WORKER)

# How often an evaluator looks for a new checkpoint. train_and_evaluate's throttle_secs
# is also its polling period: 0 would spin on a CPU core while the chief trains.
EVALUATOR_POLL_SECS = 2


@dataclasses.dataclass(frozen=True)
class Task:
  """This process's place in the cluster that TF_CONFIG describes."""
  type: str = CHIEF
  index: int = 0
  cluster: Dict[str, List[str]] = dataclasses.field(default_factory=dict)

  @property
  def in_cluster(self):
    return bool(self.cluster)

  @property
  def is_chief(self):
    return self.type == CHIEF

  @property
  def num_workers(self):
    """Training workers, the chief included."""
    if not self.cluster:
      return 1
    return sum(len(self.cluster.get(job, [])) for job in TRAINING_JOBS)

  @property
  def num_ps(self):
    return len(self.cluster.get(PS, []))

  @property
  def has_evaluator(self):
    return bool(self.cluster.get(EVALUATOR))

  @property
  def worker_id(self):
    """0 for the chief, 1.. for workers, as multi_worker_util.id_in_cluster counts."""
    return 0 if self.type == CHIEF else self.index + 1

  @property
  def name(self):
    return '%s:%d' % (self.type, self.index)

  def address(self):
    return self.cluster[self.type][self.index]


def task_from_env(environ=None):
  """Reads TF_CONFIG; no TF_CONFIG (or no cluster in it) is a single-process chief."""
  raw = (os.environ if environ is None else environ).get('TF_CONFIG', '').strip()
  if not raw:
    return Task()
  try:
    tf_config = json.loads(raw)
  except ValueError as e:
    raise UserError('TF_CONFIG is not valid JSON (%s): see BUILD.md, "Several '
                    'machines", for its layout.' % e)
  cluster = tf_config.get('cluster') or {}
  if not cluster:
    return Task()
  if not isinstance(cluster, dict) or not all(
      isinstance(v, list) for v in cluster.values()):
    raise UserError('TF_CONFIG "cluster" must map job names to lists of "host:port" '
                    'addresses, e.g. {"chief": ["host0:2222"], "worker": [...]}.')
  unknown = sorted(set(cluster) - {CHIEF, WORKER, PS, EVALUATOR})
  if unknown:
    raise UserError('TF_CONFIG cluster has job %r: use only chief, worker, ps and '
                    'evaluator ("master" is the pre-2018 name of chief).' % unknown[0])
  if len(cluster.get(CHIEF, [])) != 1:
    raise UserError('TF_CONFIG cluster must have exactly one "chief" address (the '
                    'first worker, which writes checkpoints); it has %d.'
                    % len(cluster.get(CHIEF, [])))
  if len(cluster.get(EVALUATOR, [])) > 1:
    raise UserError('TF_CONFIG cluster has %d evaluators: TensorFlow runs at most one.'
                    % len(cluster[EVALUATOR]))
  task = tf_config.get('task') or {}
  task_type = task.get('type')
  try:
    index = int(task.get('index', 0))
  except (TypeError, ValueError):
    raise UserError('TF_CONFIG task index %r is not a number.' % task.get('index'))
  if task_type not in (CHIEF, WORKER, PS, EVALUATOR):
    raise UserError('TF_CONFIG task type is %r: set "task": {"type": one of chief, '
                    'worker, ps, evaluator, "index": N}.' % task_type)
  if task_type == EVALUATOR:
    if index != 0:
      raise UserError('TF_CONFIG task evaluator:%d: the evaluator has index 0.' % index)
  elif not 0 <= index < len(cluster.get(task_type, [])):
    raise UserError('TF_CONFIG task %s:%d is not in the cluster, which has %d %s '
                    'address(es).' % (task_type, index, len(cluster.get(task_type, [])),
                                      task_type))
  return Task(type=task_type, index=index,
              cluster={k: list(v) for k, v in cluster.items()})


def check(distribution, task):
  """Refuses a --distribution that cannot run in this cluster. Raises UserError."""
  if distribution not in DISTRIBUTIONS:
    raise UserError('--distribution=%s is not one of %s.'
                    % (distribution, ', '.join(DISTRIBUTIONS)))
  if not task.in_cluster:
    if distribution == 'parameter_server':
      raise UserError('--distribution=parameter_server needs a cluster with ps tasks '
                      'in TF_CONFIG (or use `python -m estimator_pipeline.launch_local '
                      '--num_ps=1 ...`).')
    return
  if distribution == 'mirrored' and task.num_workers > 1:
    raise UserError('--distribution=mirrored trains on one machine, but TF_CONFIG lists '
                    '%d workers: use --distribution=multi_worker_mirrored.'
                    % task.num_workers)
  if distribution == 'multi_worker_mirrored' and task.num_ps:
    raise UserError('--distribution=multi_worker_mirrored has no parameter servers, but '
                    'TF_CONFIG lists %d ps task(s): drop them, or use '
                    '--distribution=parameter_server.' % task.num_ps)
  if distribution == 'parameter_server' and not task.num_ps:
    raise UserError('--distribution=parameter_server needs ps tasks in the TF_CONFIG '
                    'cluster; it has none.')
  if distribution == 'none' and task.num_workers > 1 and not task.num_ps:
    raise UserError('TF_CONFIG lists %d workers and no ps task: each would train its own '
                    'copy of the model. Pass --distribution=multi_worker_mirrored, or '
                    'add ps tasks.' % task.num_workers)


def num_local_gpus():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return len(tf.config.list_physical_devices('GPU'))


def make_strategy(distribution, task):
  """The tf.compat.v1 strategy for RunConfig(train_distribute=...), or None.

  The evaluator and ps tasks get None: the evaluator runs the Estimator's continuous
  evaluation on one device (every record counted once), and a ps task only serves.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if distribution == 'none' or task.type in (EVALUATOR, PS):
    return None
  if distribution == 'mirrored':
    # No devices given: every local GPU, or the CPU when there is none.
    return tf.compat.v1.distribute.MirroredStrategy()
  if distribution == 'multi_worker_mirrored':
    # Reads TF_CONFIG itself; one worker without TF_CONFIG is a plain local run.
    return tf.compat.v1.distribute.experimental.MultiWorkerMirroredStrategy()
  if distribution == 'parameter_server':
    return tf.compat.v1.distribute.experimental.ParameterServerStrategy()
  raise UserError('--distribution=%s is not one of %s.'
                  % (distribution, ', '.join(DISTRIBUTIONS)))


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where training runs and how many examples one global step consumes."""
  distribution: str
  mode: str                 # 'local', 'sync' or 'async'
  num_workers: int
  devices_per_worker: int
  device_kind: str          # 'GPU' or 'CPU'
  per_replica_batch: int

  @property
  def replicas(self):
    return self.num_workers * self.devices_per_worker

  @property
  def examples_per_step(self):
    # Synchronous: one step averages the gradients of every replica's batch.
    # Asynchronous (ps): one step is one worker's update, from its local replicas.
    if self.mode == 'async':
      return self.per_replica_batch * self.devices_per_worker
    return self.per_replica_batch * self.replicas

  def describe(self):
    devices = '%d %s%s' % (self.devices_per_worker, self.device_kind,
                           '' if self.devices_per_worker == 1 else 's')
    if self.mode == 'local':
      where = 'one process on %s' % devices
    elif self.mode == 'sync':
      where = '%d worker(s) x %s, synchronous all-reduce' % (self.num_workers, devices)
    else:
      where = ('%d worker(s) x %s, variables on the ps tasks, asynchronous updates'
               % (self.num_workers, devices))
    batch = ('--batch_size=%d per replica x %d replica(s) = %d examples per step' % (
        self.per_replica_batch, self.replicas, self.examples_per_step)
             if self.mode != 'async' else
             '--batch_size=%d per replica; each step applies one worker\'s %d examples'
             ' (%d examples per round of all workers)' % (
                 self.per_replica_batch, self.examples_per_step,
                 self.examples_per_step * self.num_workers))
    return 'Distribution %s: %s; %s.' % (self.distribution, where, batch)


def layout(distribution, task, batch_size, gpus=None):
  gpus = num_local_gpus() if gpus is None else gpus
  # Without a strategy the Estimator places the model on the first GPU.
  per_worker = max(1, gpus) if distribution != 'none' else 1
  kind = 'GPU' if gpus else 'CPU'
  if task.num_ps:
    mode = 'async'
  elif distribution == 'multi_worker_mirrored' or (distribution == 'mirrored' and
                                                   per_worker > 1):
    mode = 'sync'
  else:
    mode = 'local'
  return Layout(distribution=distribution, mode=mode, num_workers=task.num_workers,
                devices_per_worker=per_worker, device_kind=kind,
                per_replica_batch=batch_size)


def device_note(strategy):
  """'Replicas on ...; variables on ...' as the strategy placed them, or None."""
  if strategy is None:
    return None
  extended = strategy.extended
  workers = list(extended.worker_devices)
  params = list(extended.parameter_devices)
  note = 'Replicas of this task on %s' % ', '.join(workers)
  if params and params != workers:
    note += '; variables on %s' % ', '.join(params)
  return note + '.'


def fallback_input_context(distribution, task):
  """The input split for classic between-graph training, which passes no input_context.

  Strategies hand input_fn an InputContext; the Estimator's strategy-less ps mode does
  not, so every worker would read every file. This gives it the same split.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if distribution != 'none' or not task.num_ps or task.type not in TRAINING_JOBS:
    return None
  return tf.distribute.InputContext(num_input_pipelines=task.num_workers,
                                    input_pipeline_id=task.worker_id,
                                    num_replicas_in_sync=1)


@contextlib.contextmanager
def without_tf_config():
  """Builds objects that must not see the cluster (a chief's own final evaluation)."""
  saved = os.environ.pop('TF_CONFIG', None)
  try:
    yield
  finally:
    if saved is not None:
      os.environ['TF_CONFIG'] = saved


def serve(task):
  """Runs a ps task's server until the process is killed (ps tasks never end)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # What the Estimator's run_ps and the distribute coordinator do for a ps task.
  server = tf.distribute.Server(tf.train.ClusterSpec(task.cluster), job_name=PS,
                                task_index=task.index, protocol='grpc', start=True)
  server.join()


def evaluator_note(model_dir):
  return ('Evaluator: evaluating each new checkpoint in %s until it reaches '
          '--num_steps; waiting for the chief\'s first checkpoint.' % model_dir)


def role_note(task):
  if task.type == WORKER:
    return ('Worker %d of %d (%s): training; the chief writes checkpoints, summaries '
            'and config.json.' % (task.worker_id, task.num_workers, task.name))
  if task.is_chief and task.in_cluster:
    return ('Chief of %d worker(s)%s: writes checkpoints, summaries and config.json; '
            'exports are written by %s.' % (
                task.num_workers, ', %d ps' % task.num_ps if task.num_ps else '',
                'the evaluator' if task.has_evaluator else 'the chief at the end'))
  return None


def evaluator_poll_secs(task):
  return EVALUATOR_POLL_SECS if task.type == EVALUATOR else 0
