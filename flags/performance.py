"""Flags for speed: training steps per session call, and threads (see
estimator_pipeline/models/loops.py and data/speed.py)."""

from flags.common import define


def define_performance_flags():
  define('steps_per_loop', 'Training steps run inside the graph per session call, as '
         "TPUEstimator's iterations_per_loop; values like 10-50 speed up small nets, "
         'whose steps are shorter than the per-call overhead. Checkpoints, evaluations '
         'and --num_steps are still reached exactly; the console line and training '
         'summaries show the last step of each loop.')
  define('inter_op_threads', 'Threads that run independent TensorFlow ops side by side '
         "in training and evaluation; 0 lets TensorFlow choose (one per CPU core).")
  define('intra_op_threads', 'Threads one TensorFlow op (a convolution, a matmul) may '
         'use; 0 lets TensorFlow choose (one per CPU core).')
  define('data_threads', 'Threads of a pool private to the input pipeline (decoding, '
         'preprocessing); 0 shares the inter-op threads with the model.')
  define('xla', 'Compile clusters of the training and evaluation graphs with XLA '
         '(auto-clustering, on CPU as on GPU); the predictions agree with the '
         'uncompiled graph to float32 rounding. Off by default: see BUILD.md section 12 '
         'for what it gives.')
