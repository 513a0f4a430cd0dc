"""What a person sees on the console: TensorFlow's noise off, the pipeline's lines on.

  python train.py ... --v=1    # keep TensorFlow's own INFO logs as well
"""

import logging
import sys
import warnings


def quiet_imports():
  """Hides the warnings that importing the pinned set prints (call before importing).

  google-api-core (pulled in by tf-models-official) warns about Python versions, and
  TF's bundled Keras warns on every legacy layer slim uses; neither is actionable.
  """
  warnings.filterwarnings('ignore', category=FutureWarning)
  warnings.filterwarnings('ignore', category=DeprecationWarning)
  warnings.filterwarnings('ignore', category=UserWarning, module=r'(tf_)?keras')
  warnings.filterwarnings('ignore', category=UserWarning,
                          module=r'tensorflow\.python\.keras')
  # Printed whenever a distribution strategy builds its input in graph mode.
  warnings.filterwarnings('ignore', category=UserWarning,
                          message='To make it possible to preserve tf.data options')


def quiet(keep_tf_info=False):
  """Silences TF deprecation warnings and INFO chatter (the C++ side: see compat.py)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.util import deprecation  # pylint: disable=g-direct-tensorflow-import,g-import-not-at-top
  deprecation._PRINT_DEPRECATION_WARNINGS = False  # pylint: disable=protected-access
  level = logging.INFO if keep_tf_info else logging.ERROR
  tf.get_logger().setLevel(level)
  if not keep_tf_info:
    # Some TF modules (SavedModel loading) log through absl directly.
    from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
    absl_logging.set_verbosity(absl_logging.ERROR)
  tf.compat.v1.logging.set_verbosity(level)
  if keep_tf_info:
    warnings.resetwarnings()
  else:
    quiet_imports()


def line(message):
  """One console line on stderr, flushed at once (stdout stays for results)."""
  sys.stderr.write(message + '\n')
  sys.stderr.flush()


def duration(seconds):
  seconds = int(round(max(0, seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  if h:
    return '%dh%02dm%02ds' % (h, m, s)
  if m:
    return '%dm%02ds' % (m, s)
  return '%ds' % s


def metrics_text(metrics):
  """'accuracy 0.9812  loss 0.0612 ...' for a dict of scalar metrics (step left out)."""
  parts = []
  for name in sorted(metrics):
    if name == 'global_step':
      continue
    try:
      parts.append('%s %.4f' % (name, float(metrics[name])))
    except (TypeError, ValueError):
      continue
  return '  '.join(parts)
