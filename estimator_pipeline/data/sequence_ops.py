"""Sequence augmentation and test-time transforms, shared by training and serving.

One-hot DNA [..., L, 4] in A, C, G, T order and targets [..., T, N]. The ops take an
optional leading batch axis, so the input pipeline (one example) and the exported
ensemble (a batch) run the same code:

  python -c "
  import estimator_pipeline, tensorflow as tf
  from estimator_pipeline.data import sequence_ops as s
  x = tf.one_hot([0, 1, 2, 3], 4)
  print(s.reverse_complement(x).numpy().argmax(-1), s.shift_sequence(x, 1, 1).numpy())"
"""

import tensorflow as tf




def reverse_complement(sequence, target=None):
  """Reverses along length and swaps A<->T, C<->G (the channel order reversed).

  The targets, binned along the same length, are reversed with it; the rc of the rc is
  the identity.
  """
  sequence = tf.reverse(sequence, axis=[-2, -1])
  if target is None:
    return sequence
  return sequence, tf.reverse(target, axis=[-2])


def shift_sequence(sequence, shift, max_shift):
  """Moves the sequence `shift` positions to the right (left if negative), zero padded.

  max_shift bounds |shift| (a Python int, so the padding is static); shift may be a
  tensor. basenji shifts by a few bp only and leaves the binned targets as they are.
  """
  if not max_shift:
    return sequence
  sequence = tf.convert_to_tensor(sequence)
  length = tf.shape(sequence)[-2]
  rank = sequence.shape.rank
  paddings = [[0, 0]] * (rank - 2) + [[max_shift, max_shift], [0, 0]]
  padded = tf.pad(sequence, paddings)
  start = max_shift - tf.cast(shift, tf.int32)
  begin = tf.stack([0] * (rank - 2) + [start, 0])
  size = tf.stack([-1] * (rank - 2) + [length, -1])
  shifted = tf.slice(padded, begin, size)
  return tf.ensure_shape(shifted, sequence.shape)


def _other_strand(sequence, target, inverse):
  sequence, target = reverse_complement(sequence, target)
  if inverse is not None:
    target = tf.gather(target, inverse, axis=-1)
  return sequence, target


def augment_sequence(sequence, target, *, augment_rc=False, augment_shift=0,
                     seed=None, strand_pair=None):
  """Training augmentation: random reverse complement and shift in [-k, k].

  strand_pair (basenji's, one entry per target): on a reverse-complemented sequence
  target i is measured on the other strand, so the targets are also permuted: basenji
  permutes the predictions by strand_pair, which for the loss is the same as
  permuting the targets by its inverse.
  """
  inverse = None
  if strand_pair is not None:
    inverse = [0] * len(strand_pair)
    for i, j in enumerate(strand_pair):
      inverse[j] = i
  if augment_shift:
    shift = tf.random.uniform([], -augment_shift, augment_shift + 1, tf.int32,
                              seed=seed)
    sequence = shift_sequence(sequence, shift, augment_shift)
  if augment_rc:
    # Another op seed: two ops with one seed would draw the same numbers.
    flip = tf.random.uniform([], seed=None if seed is None else seed + 1) < 0.5
    sequence, target = tf.cond(
        flip, lambda: _other_strand(sequence, target, inverse),
        lambda: (tf.identity(sequence), tf.identity(target)))
  return sequence, target
