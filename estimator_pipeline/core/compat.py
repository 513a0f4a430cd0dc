"""The one place where defects of the pinned TensorFlow 2.15 set are worked around.

Importing `estimator_pipeline` applies every fix here before any model is built, so
nothing else in the project needs to know about them:

  python -c "import estimator_pipeline; from estimator_pipeline.core import compat; compat.check()"

1. tf_slim.batch_norm, used by every slim ResNet and Inception, goes through
   `tensorflow.python.layers.normalization`, which lazily imports
   `tf_keras.legacy_tf_layers.normalization`. tf_keras 2.15 ships that module as
   `tf_keras.src.legacy_tf_layers.normalization`, so building any batch-normalized slim
   net fails with "No module named 'tf_keras.legacy_tf_layers'". We register the module
   under the name TensorFlow asks for. The fix is a no-op on a set that has the module.

2. tf_slim 1.1.0 calls `control_flow_ops.cond` and `control_flow_ops.case`, which
   TensorFlow 2.15 moved to `tensorflow.python.ops.cond` and `control_flow_case`: the
   slim `Image` handler of TFExampleDecoder, slim's streaming metrics and
   `smart_cond` with a tensor `is_training` fail with AttributeError. We put the two
   functions back where tf_slim looks for them.

3. tf_slim imports scikit-learn's metrics (and with them most of SciPy) when it is
   imported, for one clustering loss (`tf_slim.losses.metric_learning`) that this
   project never calls: about 650 modules and a second of every start-up. While
   tf_slim is first imported, `sklearn.metrics` is a stand-in that imports the real
   module the first time an attribute of it is used; afterwards the name is free
   again, so any other `import sklearn.metrics` gets the real module as usual.

4. TensorFlow reads its switch that lets XLA auto-clustering compile on the CPU
   (TF_XLA_FLAGS=--tf_xla_cpu_global_jit) when the first graph is optimized, and a
   change after that is ignored: `--xla` (train/xla.py), asked for after a session
   ran in the same process, would compile nothing on a CPU. The switch is turned on
   here, first; by itself it compiles nothing: only a session whose config sets
   global_jit_level (what --xla does) is clustered.

5. A cluster worker's session waits for the chief to initialize the variables by
   asking, then sleeping SessionManager's `recovery_wait_secs`, 30 s unless given;
   the Estimator gives none and lets nobody set it. A worker that asked a moment
   before the chief was done sat idle for up to 30 s: all of a short job. The default
   is WORKER_READY_POLL_SECS here; a caller that passes its own keeps it.

6. The sixth known defect (a tensorflow-metadata that needs protobuf 5, which breaks
   `import official.modeling.optimization`) is fixed by the exact pins in
   requirements.txt, not here; tests/test_imports.py imports every module we use.
"""

import importlib
import importlib.util
import os
import sys
import types
import warnings

# TensorFlow reads this once, at its own import: set it before anything imports TF so
# the C++ start-up chatter stays off the console. Level 3, because the CPU build logs
# "Unable to register cuDNN factory" at error level on every start. A value the user
# exported wins (TF_CPP_MIN_LOG_LEVEL=0 shows everything).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

_LEGACY = 'tf_keras.legacy_tf_layers'
_SKLEARN_METRICS = 'sklearn.metrics'
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


def _restore_control_flow_ops():
  from tensorflow.python.ops import cond as cond_lib  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  from tensorflow.python.ops import control_flow_case  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  from tensorflow.python.ops import control_flow_ops  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  if not hasattr(control_flow_ops, 'cond'):
    control_flow_ops.cond = cond_lib.cond
  if not hasattr(control_flow_ops, 'case'):
    control_flow_ops.case = control_flow_case.case


class _DeferredModule(types.ModuleType):
  """Stands in for a module until one of its attributes is used, then imports it."""

  def __init__(self, name):
    super().__init__(name)
    self.__spec__ = None  # The import system checks it; None means "loaded".
    self._deferred_name = name

  def __getattr__(self, attr):
    if sys.modules.get(self._deferred_name) is self:
      del sys.modules[self._deferred_name]
    module = importlib.import_module(self._deferred_name)
    return getattr(module, attr)


def _import_tf_slim_without_sklearn():
  if 'tf_slim' in sys.modules or _SKLEARN_METRICS in sys.modules:
    return
  if importlib.util.find_spec('sklearn') is None:
    return  # tf_slim copes with a missing scikit-learn itself.
  stand_in = _DeferredModule(_SKLEARN_METRICS)
  sys.modules[_SKLEARN_METRICS] = stand_in
  try:
    importlib.import_module('tf_slim')
  finally:
    if sys.modules.get(_SKLEARN_METRICS) is stand_in:
      del sys.modules[_SKLEARN_METRICS]


def _allow_cpu_auto_clustering():
  from tensorflow.python import pywrap_tfe  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  pywrap_tfe.TF_SetTfXlaCpuGlobalJit(True)


# How often (seconds) a waiting cluster worker asks whether the model is ready (5.).
WORKER_READY_POLL_SECS = 1
# SessionManager.__init__'s position of recovery_wait_secs, counting self.
_RECOVERY_WAIT_ARG = 5


def _poll_readiness_often():
  from tensorflow.python.training import session_manager  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  original = session_manager.SessionManager.__init__
  if getattr(original, 'polls_often', False):
    return

  def init(self, *args, **kwargs):
    if len(args) + 1 <= _RECOVERY_WAIT_ARG:
      kwargs.setdefault('recovery_wait_secs', WORKER_READY_POLL_SECS)
    original(self, *args, **kwargs)
  init.polls_often = True
  session_manager.SessionManager.__init__ = init


def apply():
  """Applies every fix. Idempotent; called from estimator_pipeline/__init__.py."""
  _alias_legacy_tf_layers()
  _restore_control_flow_ops()
  _import_tf_slim_without_sklearn()
  _allow_cpu_auto_clustering()
  _poll_readiness_often()


def check():
  """Raises if a fix did not take (used by tests)."""
  importlib.import_module(_LEGACY + '.normalization')
  from tensorflow.python.ops import control_flow_ops  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  assert callable(control_flow_ops.cond) and callable(control_flow_ops.case)
  from tensorflow.python.training import session_manager  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  assert session_manager.SessionManager(
      ready_op=None)._recovery_wait_secs == WORKER_READY_POLL_SECS
