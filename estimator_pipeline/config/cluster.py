r"""Which task of a cluster this process is (TF_CONFIG), and which --distribution fits it.

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

--batch_size is always per replica (one device of one worker). This module reads and
checks; train/strategies.py builds the strategy and says where replicas run.
"""

import dataclasses
import json
import os
from typing import Dict, List

from estimator_pipeline.core.errors import UserError

DISTRIBUTIONS = ('none', 'mirrored', 'multi_worker_mirrored', 'parameter_server')
CHIEF, WORKER, PS, EVALUATOR = 'chief', 'worker', 'ps', 'evaluator'
TRAINING_JOBS = (CHIEF, WORKER)


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
