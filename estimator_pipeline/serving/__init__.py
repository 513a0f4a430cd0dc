"""Serving inputs: what a TF Serving client sends, turned into the model's features.

`--serving_input` picks what an export's `serving_default` signature takes. The
choices depend on the record layout a model reads, and each layout's module here
registers its own (image.py: encoded_image, image_tensor, tf_example; sequence.py:
dna_text), each with the warm-up requests TF Serving replays when it loads a version
(warmup.py). exporters.py writes the versions a training run exports:

  python -c "
  import estimator_pipeline
  from estimator_pipeline import serving
  print(serving.names('image'), serving.names('sequence'))"
"""

import dataclasses
import importlib
import os
import pkgutil
from typing import Callable, Optional

from estimator_pipeline.core import registry
from estimator_pipeline.core.errors import UserError


@dataclasses.dataclass(frozen=True)
class ServingInput:
  """One registered serving input of a record layout.

  receiver_fn(spec, **params) -> a serving_input_receiver_fn for the Estimator.
  warmup_fn(spec, **params) -> a list of tensorflow_serving PredictionLog messages that
    the export ships as assets.extra/tf_serving_warmup_requests (see warmup.py).
  """
  layout: str
  name: str
  receiver_fn: Callable
  warmup_fn: Optional[Callable] = None
  default: bool = False


# Modules of this package that hold no serving input.
_NOT_INPUTS = ('exporters', 'warmup')


def _load_inputs():
  # Every other module here registers the serving inputs of one record layout when
  # imported: a new layout's serving inputs are a new module, and nothing else changes.
  package = os.path.dirname(os.path.abspath(__file__))
  for info in pkgutil.iter_modules([package]):
    if info.name not in _NOT_INPUTS:
      importlib.import_module('%s.%s' % (__name__, info.name))


_INPUTS = registry.Registry('serving input', '--serving_input', loader=_load_inputs)


def _key(layout, name):
  return '%s/%s' % (layout, name)


def register(serving_input):
  """Adds a serving input for its layout (a second default for a layout is an error)."""
  if serving_input.default and serving_input.layout in _defaults():
    raise ValueError('layout %r has two default serving inputs' % serving_input.layout)
  return _INPUTS.register(_key(serving_input.layout, serving_input.name),
                          serving_input)


def _defaults():
  return {s.layout for _, s in _INPUTS.items() if s.default}


def names(layout):
  """The serving inputs a layout offers, its default first."""
  found = [s for _, s in _INPUTS.items() if s.layout == layout]
  return [s.name for s in sorted(found, key=lambda s: (not s.default, s.name))]


def get(spec, serving_input=''):
  """The ServingInput for a model (a models.ModelSpec); '' means the layout's default."""
  known = names(spec.layout)
  if not known:
    raise UserError('--model_name=%s reads %r records, for which no serving input is '
                    'registered.' % (spec.name, spec.layout))
  name = serving_input or known[0]
  if _key(spec.layout, name) not in _INPUTS:
    raise UserError('--serving_input=%s is not one of %s for --model_name=%s.'
                    % (name, ', '.join(known), spec.name))
  return _INPUTS.get(_key(spec.layout, name))


def make_serving_input_fn(spec, serving_input='', **params):
  """The serving_input_receiver_fn of `serving_input` ('' = default) for a model."""
  return get(spec, serving_input).receiver_fn(spec, **params)
