"""Flags for the run as a whole: where it writes, its seed, how often it reports."""

from flags.common import define


def define_run_flags():
  define('model_dir', 'Directory for checkpoints, TensorBoard events, config.json and '
         'export/; re-running the same command resumes from its latest checkpoint.')
  define('random_seed', 'Seed for TensorFlow and the input shuffle, so a run can be '
         'repeated.')
  define('log_every_steps', 'Print a progress line (step, loss, learning rate, '
         'examples/sec, ETA) and write training summaries every this many steps.')
  define('summarize_gradients', 'Also write TensorBoard histograms of every trained '
         'variable and its gradient at each summary step (bigger event files).')
  define('profile_steps', 'Profile the training steps FIRST,LAST (e.g. 100,110) with the '
         "TensorFlow profiler for TensorBoard's Profile tab; empty profiles nothing.")
