"""The one registry of models: name -> ModelSpec.

  python -c "import estimator_pipeline; from estimator_pipeline import models; print(models.names())"

A ModelSpec says how to build the Model and what the layers around it need to know
(the record layout it reads, the image preprocessing family, the default input size),
without building any graph. The Model contract is in model.py, model_fn.py wires a
Model into an EstimatorSpec; image/ holds the tf-slim classifiers, seqnn/ basenji's
SeqNN.
"""

from estimator_pipeline.core import registry
from estimator_pipeline.models.spec import ModelSpec  # noqa: F401  (the registry's entries)


def _load_all():
  # Each model family lists its specs; imported on the first lookup, so importing the
  # registry stays cheap.
  from estimator_pipeline.models.image import slim_nets  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.models.seqnn import network  # pylint: disable=g-import-not-at-top
  for spec in slim_nets.SPECS + network.SPECS:
    register(spec)


_REGISTRY = registry.Registry('model', '--model_name', loader=_load_all)


def register(spec):
  return _REGISTRY.register(spec.name, spec)


def names():
  return _REGISTRY.names()


def get(name):
  """The ModelSpec registered as name; a UserError that lists the known names if none."""
  return _REGISTRY.get(name)
