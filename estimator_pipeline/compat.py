"""The one place where defects of the pinned TensorFlow 2.15 set are worked around.

Importing `estimator_pipeline` applies every fix here before any model is built, so
nothing else in the project needs to know about them:

  python -c "import estimator_pipeline; from estimator_pipeline import compat; compat.check()"

1. tf_slim.batch_norm, used by every slim ResNet and Inception, goes through
   `tensorflow.python.layers.normalization`, which lazily imports
   `tf_keras.legacy_tf_layers.normalization`. tf_keras 2.15 ships that module as
   `tf_keras.src.legacy_tf_layers.normalization`, so building any batch-normalized slim
   net fails with "No module named 'tf_keras.legacy_tf_layers'". We register the module
   under the name TensorFlow asks for. The fix is a no-op on a set that has the module.

2. The second known defect (a tensorflow-metadata that needs protobuf 5, which breaks
   `import official.modeling.optimization`) is fixed by the exact pins in
   requirements.txt, not here; tests/test_imports.py imports every module we use.
"""

import importlib
import os
import sys

# TensorFlow reads this once, at its own import: set it before anything imports TF so
# the C++ start-up chatter (CUDA probing, oneDNN notices) stays off the console. A value
# the user exported wins.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

_LEGACY = 'tf_keras.legacy_tf_layers'
_LEGACY_SRC = 'tf_keras.src.legacy_tf_layers'


def _alias_legacy_tf_layers():
  try:
    importlib.import_module(_LEGACY + '.normalization')
    return  # A tf_keras that ships the public path needs no help.
  except ImportError:
    pass
  package = importlib.import_module(_LEGACY_SRC)
  normalization = importlib.import_module(_LEGACY_SRC + '.normalization')
  sys.modules.setdefault(_LEGACY, package)
  sys.modules.setdefault(_LEGACY + '.normalization', normalization)


def apply():
  """Applies every fix. Idempotent; called from estimator_pipeline/__init__.py."""
  _alias_legacy_tf_layers()


def check():
  """Raises ImportError if a fix did not take (used by tests and `make test`)."""
  importlib.import_module(_LEGACY + '.normalization')
