"""tf-slim image classifiers: the nets (slim_nets.py), the Model around them
(classifier.py), what an export answers (outputs.py) and their summaries."""


def specs():
  """The family's ModelSpecs, for the registry (models/__init__.py)."""
  from estimator_pipeline.models.image import slim_nets  # pylint: disable=g-import-not-at-top
  return slim_nets.SPECS
