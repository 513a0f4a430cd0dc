"""The registry of tasks: one per record layout, found by the layout a model reads.

  python -c "
  import estimator_pipeline
  from estimator_pipeline.train import tasks
  print(tasks.names())"

Every module here but base.py holds one task (TASK) and is found on the first lookup:
a new record layout is one format module in records/ and one task module here, and
nothing else changes.
"""

import importlib
import os
import pkgutil

from estimator_pipeline.core import registry


def _load_tasks():
  package = os.path.dirname(os.path.abspath(__file__))
  for info in pkgutil.iter_modules([package]):
    if info.name != 'base':
      module = importlib.import_module('%s.%s' % (__name__, info.name))
      _TASKS.register(module.TASK.layout, module.TASK)


_TASKS = registry.Registry('task', '--layout', loader=_load_tasks)


def names():
  return _TASKS.names()


def get(layout):
  """The task that trains on a record layout ('image', 'sequence')."""
  return _TASKS.get(layout)


def for_model(spec):
  """The task of the record layout a model (a models.ModelSpec) reads."""
  return _TASKS.get(spec.layout, context='for --model_name=%s' % spec.name)
