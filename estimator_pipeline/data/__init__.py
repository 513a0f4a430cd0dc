"""input_fn: record files -> tf.data (interleave, shuffle, parse, batch, prefetch), the
parse functions of each record layout, and the preprocessing ops training, evaluation
and serving share (image_ops.py for slim nets, sequence_ops.py for DNA)."""
