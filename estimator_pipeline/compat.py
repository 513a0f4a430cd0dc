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
import importlib.util
import os
import sys
import warnings

# TensorFlow reads this once, at its own import: set it before anything imports TF so
# the C++ start-up chatter stays off the console. Level 3, because the CPU build logs
# "Unable to register cuDNN factory" at error level on every start. A value the user
# exported wins (TF_CPP_MIN_LOG_LEVEL=0 shows everything).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

_LEGACY = 'tf_keras.legacy_tf_layers'
_LEGACY_SRC = 'tf_keras.src.legacy_tf_layers'


def _alias_legacy_tf_layers():
  if importlib.util.find_spec('tf_keras') is None:
    return  # Nothing to alias; slim's batch_norm will say what is missing.
  # This import loads TensorFlow, and with it google-api-core's notice that Python
  # 3.11 will lose support in 2027: true, not actionable, and printed on every run.
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', FutureWarning)
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
