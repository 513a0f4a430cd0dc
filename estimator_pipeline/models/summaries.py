"""TensorBoard summaries that model_fn adds for every model: scalars, gradients, and the
run's configuration as a table.

Everything here builds graph-mode `tf.compat.v1.summary` ops (TF2 `tf.summary` calls in
a model_fn are dropped without a word). The train run's scalars are written every
--log_every_steps by the Estimator's summary hook. A model family adds its own (image/
summaries.py: input images, confusion matrix). See "Watching a run" in BUILD.md for
every tag.

  tensorboard --logdir runs/flowers   # Scalars, Images, Histograms, Text
"""

import tensorflow as tf

summary = tf.compat.v1.summary


def scalar_summaries(values):
  """One scalar summary per {tag: scalar tensor}."""
  for name, value in values.items():
    summary.scalar(name, value)


def histogram_summaries(grads_and_vars):
  """Each trained variable's values (`weights/<variable>`) and gradient
  (`gradients/<variable>`), so TensorBoard's Histograms tab shows two groups.

  The tags lead with the kind because a summary named exactly as an existing op (the
  variable itself) would be renamed by TensorFlow ('.../weights_1').
  """
  for grad, var in grads_and_vars:
    values = grad.values if isinstance(grad, tf.IndexedSlices) else grad
    summary.histogram('weights/' + var.op.name, var)
    summary.histogram('gradients/' + var.op.name, values)


def config_table(values):
  """{name: value} -> a markdown table, as the Text tab renders it."""
  lines = ['| setting | value |', '|---|---|']
  for name in sorted(values):
    value = str(values[name]).replace('|', '\\|').replace('\n', ' ')
    lines.append('| %s | %s |' % (name, value if value != '' else '(empty)'))
  return '\n'.join(lines)
