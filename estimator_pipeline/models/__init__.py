"""The one registry of models: name -> ModelSpec.

  python -c "import estimator_pipeline; from estimator_pipeline import models; print(models.names())"

A ModelSpec says how to build the Model and what the input and serving layers need to
know about it (record layout, preprocessing family, default input size), without
building any graph.
"""

import dataclasses
from typing import Callable, Optional, Tuple

from estimator_pipeline.errors import UserError


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  name: str
  build: Callable  # (is_training, num_classes, **params) -> Model
  layout: str  # 'image' or 'sequence': which record decoder reads its data
  preprocessing: Optional[str] = None  # image family, see preprocessing.FAMILIES
  default_image_size: int = 0
  # Scopes a fine-tuning user usually excludes from warm start (the classifier head).
  head_scopes: Tuple[str, ...] = ()


_REGISTRY = {}


def register(spec):
  if spec.name in _REGISTRY:
    raise ValueError('model %r is registered twice' % spec.name)
  _REGISTRY[spec.name] = spec
  return spec


def _load_all():
  # Importing a model module registers its models; done lazily so importing the
  # registry stays cheap and free of TensorFlow.
  from estimator_pipeline.models import slim_classifier  # pylint: disable=g-import-not-at-top,unused-import
  from estimator_pipeline.models import seqnn  # pylint: disable=g-import-not-at-top,unused-import


def names():
  _load_all()
  return sorted(_REGISTRY)


def get(name):
  """The ModelSpec registered as name; a UserError that lists the known names if none."""
  _load_all()
  if name not in _REGISTRY:
    raise UserError('--model_name=%s is not a known model; known: %s.'
                    % (name, ', '.join(sorted(_REGISTRY))))
  return _REGISTRY[name]
