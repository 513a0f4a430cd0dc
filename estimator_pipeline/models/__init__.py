"""The one registry of models: name -> ModelSpec.

  python -c "import estimator_pipeline; from estimator_pipeline import models; print(models.names())"

A ModelSpec says how to build the Model and what the layers around it need to know
(the record layout it reads, the image preprocessing family, the default input size),
without building any graph. The Model contract is in model.py, model_fn.py wires a
Model into an EstimatorSpec.

A model family is a sub-package here whose __init__ has `specs()`, the list of its
ModelSpecs: image/ holds the tf-slim classifiers, seqnn/ basenji's SeqNN. A new family
is a new sub-package, and nothing else changes.
"""

import importlib
import os
import pkgutil

from estimator_pipeline.core import registry
from estimator_pipeline.models.spec import ModelSpec  # noqa: F401  (the registry's entries)


def _load_all():
  # Found and imported on the first lookup, so importing the registry stays cheap.
  package = os.path.dirname(os.path.abspath(__file__))
  for info in sorted(pkgutil.iter_modules([package]), key=lambda i: i.name):
    if info.ispkg:
      family = importlib.import_module('%s.%s' % (__name__, info.name))
      for spec in family.specs():
        register(spec)


_REGISTRY = registry.Registry('model', '--model_name', loader=_load_all)


def register(spec):
  return _REGISTRY.register(spec.name, spec)


def names():
  return _REGISTRY.names()


def get(name):
  """The ModelSpec registered as name; a UserError that lists the known names if none."""
  return _REGISTRY.get(name)
