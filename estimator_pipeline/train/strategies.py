"""The distribution strategy of a run, where its replicas sit, and a ps task's server.

config/cluster.py says which task of a TF_CONFIG cluster this process is and whether
--distribution fits it; this module builds what TensorFlow needs for it:

  python -c "
  from estimator_pipeline.config import cluster
  from estimator_pipeline.train import strategies
  print(strategies.layout('none', cluster.Task(), 32).describe())"
"""

import contextlib
import dataclasses
import os
import socket
import time

import tensorflow as tf

from estimator_pipeline.config import cluster
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError

# How often an evaluator looks for a new checkpoint. train_and_evaluate's throttle_secs
# is also its polling period: 0 would spin on a CPU core while the chief trains.
EVALUATOR_POLL_SECS = 2
# How often a ps task looks whether the chief and the workers still run.
PROBE_SECS = 1.0


def num_local_gpus():
  return len(tf.config.list_physical_devices('GPU'))


def make_strategy(distribution, task):
  """The tf.compat.v1 strategy for RunConfig(train_distribute=...), or None.

  The evaluator and ps tasks get None: the evaluator runs the Estimator's continuous
  evaluation on one device (every record counted once), and a ps task only serves.
  """
  if distribution == 'none' or task.type in (cluster.EVALUATOR, cluster.PS):
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
                  % (distribution, ', '.join(cluster.DISTRIBUTIONS)))


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
  if distribution != 'none' or not task.num_ps or task.type not in cluster.TRAINING_JOBS:
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


def _answers(address):
  """Whether a TensorFlow server listens at host:port (a task of the cluster runs)."""
  host, _, port = address.rpartition(':')
  try:
    with socket.create_connection((host.strip('[]'), int(port)), timeout=2):
      return True
  except (OSError, ValueError):
    return False


def serve(task, model_dir, num_steps, timeout_secs, signals):
  """Serves a ps task's variables until the job is over; returns the line saying why.

  A ps task has no end of its own in TensorFlow (the Estimator's run_ps joins its
  server forever). This one looks at the chief and the workers every PROBE_SECS: once
  none answers, it stops at once if model_dir's last checkpoint reached num_steps (the
  job is done), or after timeout_secs without an answer (the job was abandoned:
  UserError). SIGINT or SIGTERM (`signals`) stop it too.
  """
  # What the Estimator's run_ps and the distribute coordinator do for a ps task.
  server = tf.distribute.Server(tf.train.ClusterSpec(task.cluster), job_name=cluster.PS,
                                task_index=task.index, protocol='grpc', start=True)
  trainers = [a for job in cluster.TRAINING_JOBS for a in task.cluster.get(job, [])]
  last_answer = time.monotonic()
  while signals.received is None:
    if any(_answers(address) for address in trainers):
      last_answer = time.monotonic()
    else:
      step = files.checkpoint_step(tf.train.latest_checkpoint(model_dir))
      if step >= num_steps:
        return ('%s: the chief and the workers have finished (step %d of --num_steps='
                '%d): stopped serving.' % (task.name, step, num_steps))
      if time.monotonic() - last_answer >= timeout_secs:
        raise UserError(
            '%s: no chief or worker of the cluster (%s) has answered for %d s '
            '(--ps_timeout_secs) and the job is at step %d of --num_steps=%d: stopped '
            'serving. Start the whole cluster again to resume from the last '
            'checkpoint.' % (task.name, ', '.join(trainers), timeout_secs, step,
                             num_steps))
    time.sleep(PROBE_SECS)
  del server  # Held to here: the server serves while this loop runs.
  return '%s: stopped serving (%s).' % (task.name, signals.name)


def evaluator_note(model_dir):
  return ('Evaluator: evaluating each new checkpoint in %s until it reaches '
          '--num_steps; waiting for the chief\'s first checkpoint.' % model_dir)


def role_note(task):
  if task.type == cluster.WORKER:
    return ('Worker %d of %d (%s): training; the chief writes checkpoints, summaries '
            'and config.json.' % (task.worker_id, task.num_workers, task.name))
  if task.is_chief and task.in_cluster:
    return ('Chief of %d worker(s)%s: writes checkpoints, summaries and config.json; '
            'exports are written by %s.' % (
                task.num_workers, ', %d ps' % task.num_ps if task.num_ps else '',
                'the evaluator' if task.has_evaluator else 'the chief at the end'))
  return None


def evaluator_poll_secs(task):
  return EVALUATOR_POLL_SECS if task.type == cluster.EVALUATOR else 0
