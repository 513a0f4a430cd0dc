"""--seed and --deterministic: the same command gives the same losses, step for step.

--seed becomes the graph-level seed of every graph the Estimator builds (RunConfig's
tf_random_seed), so every random op (initializers, dropout, random crops and flips in
the input pipeline) gets a fixed op seed; the file and record shuffles take it directly.
--deterministic also turns on TensorFlow's op determinism, which makes tf.data's
parallel map, interleave and prefetch keep a fixed order and picks deterministic
kernels:

  python train.py ... --seed=7 --deterministic
  python train.py ... --seed=7 --deterministic --model_dir=runs/again  # same losses
"""

import contextlib
import random

import numpy as np
import tensorflow as tf
# The public API can turn op determinism on but not off; a library run must not
# leave it on for the rest of the process.
from tensorflow.python.framework import config as tf_config  # pylint: disable=g-direct-tensorflow-import


@contextlib.contextmanager
def applied(seed, deterministic):
  """Seeds Python and NumPy, and with deterministic turns op determinism on, for the
  duration of a run (op determinism is process-wide: the previous state is restored)."""
  random.seed(seed)
  np.random.seed(seed % (2 ** 32))
  before = tf_config.is_op_determinism_enabled()
  if deterministic and not before:
    tf.config.experimental.enable_op_determinism()
  try:
    yield
  finally:
    if deterministic and not before:
      tf_config.disable_op_determinism()
