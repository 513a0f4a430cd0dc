"""Flags for the run as a whole: where it writes, its seed, how often it reports."""

from flags.common import define
from flags.common import define_alias


def define_run_flags():
  define('model_dir', 'Directory for checkpoints, TensorBoard events, config.json, '
         'flags.txt and export/; re-running the same command resumes from its latest '
         'checkpoint.')
  define('seed', 'Seed of the graph (initializers, dropout, augmentation) and of the '
         'file and record shuffles, so a run can be repeated.')
  define_alias('random_seed', 'seed')
  define('deterministic', 'Turn on TensorFlow op determinism and a fixed input order, '
         'so two runs with the same --seed give identical losses step for step '
         '(slower input pipeline).')
  define('log_every_steps', 'Print a progress line (step, loss, learning rate, '
         'examples/sec, ETA) and write training summaries every this many steps.')
  define('summarize_gradients', 'Also write TensorBoard histograms of every trained '
         'variable and its gradient at each summary step (bigger event files).')
  define('profile_steps', 'Profile the training steps FIRST,LAST (e.g. 100,110) with the '
         "TensorFlow profiler for TensorBoard's Profile tab; empty profiles nothing.")
