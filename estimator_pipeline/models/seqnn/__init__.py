"""basenji's SeqNN: the blocks (blocks.py, the one name -> function table, over
conv_blocks.py, towers.py, attention.py, dense_blocks.py and the Keras layers they are
made of, layers.py), the network built from a params file and the Model around it
(network.py), basenji's losses and streaming metrics (metrics.py) and the weights of
basenji's and baskerville's .h5 files (weights.py)."""


def specs():
  """The family's ModelSpecs, for the registry (models/__init__.py)."""
  from estimator_pipeline.models.seqnn import network  # pylint: disable=g-import-not-at-top
  return network.SPECS
