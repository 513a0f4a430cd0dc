"""--xla: XLA auto-clustering (JIT) of the graphs the Estimator runs, on CPU and GPU.

The session's global_jit_level ON_1 lets TensorFlow's graph optimizer gather runs of
compilable ops into clusters that XLA compiles and fuses (convolution + bias + GELU +
batch norm into fewer passes over memory). TensorFlow applies it to GPUs only unless
its CPU switch (TF_XLA_FLAGS=--tf_xla_cpu_global_jit) is on, which importing the
package does (core/compat.py: TensorFlow reads it once); it changes nothing for a
session without ON_1.
Training and evaluation (and Estimator.predict) run with it; the exported SavedModel
is the same graph as without it.

  python train.py --model_name=seqnn --params_file=params.json --xla ...
  TF_XLA_FLAGS=--tf_xla_clustering_debug python train.py ... --xla   # see the clusters
"""

import tensorflow as tf
from tensorflow_estimator.python.estimator import run_config as run_config_lib


def session_config(config, enabled):
  """config (a ConfigProto or None: the Estimator's default) with auto-clustering on
  when enabled; config itself when not."""
  if not enabled:
    return config
  if config is None:
    config = run_config_lib.get_default_session_config()
  config.graph_options.optimizer_options.global_jit_level = (
      tf.compat.v1.OptimizerOptions.ON_1)
  return config
