"""Sequence augmentation and test-time transforms (data/sequence_ops.py), eagerly and
inside tf.data, and the DNA codec (records/dna.py).

  .venv/bin/python -m pytest -q tests/test_sequence_ops.py
"""

import numpy as np
import pytest

import estimator_pipeline  # noqa: F401  (compat fixes before TF)
import seq_helpers
import tensorflow as tf

from estimator_pipeline.data import sequence_ops
from estimator_pipeline.records import dna


# Augmentation, eagerly and inside tf.data.

def _pair(seed=0):
  bases, targets = seq_helpers.make_examples(1, 32, 4, 2, seed=seed)
  return (seq_helpers.one_hot(bases[0]).astype(np.float32), targets[0])


def test_reverse_complement_eager_and_in_dataset():
  seq, target = _pair()
  rc_seq, rc_target = sequence_ops.reverse_complement(seq, target)
  # A (0) at position i becomes T (3) at position L-1-i; targets flip along length.
  np.testing.assert_array_equal(rc_seq.numpy()[::-1, ::-1], seq)
  np.testing.assert_array_equal(rc_target.numpy(), target[::-1])
  twice = sequence_ops.reverse_complement(*sequence_ops.reverse_complement(seq, target))
  np.testing.assert_array_equal(twice[0].numpy(), seq)
  np.testing.assert_array_equal(twice[1].numpy(), target)
  ds = tf.data.Dataset.from_tensors((seq, target)).map(
      sequence_ops.reverse_complement)
  d_seq, d_target = next(iter(ds))
  np.testing.assert_array_equal(d_seq.numpy(), rc_seq.numpy())
  np.testing.assert_array_equal(d_target.numpy(), rc_target.numpy())


def test_shift_pads_with_zeros_eager_and_in_dataset():
  seq, _ = _pair()
  right = sequence_ops.shift_sequence(seq, 2, 3).numpy()
  np.testing.assert_array_equal(right[2:], seq[:-2])
  assert right[:2].sum() == 0
  left = sequence_ops.shift_sequence(seq[None], tf.constant(-3), 3).numpy()[0]
  np.testing.assert_array_equal(left[:-3], seq[3:])
  assert left[-3:].sum() == 0
  ds = tf.data.Dataset.from_tensors(seq).map(
      lambda s: sequence_ops.shift_sequence(s, 2, 3))
  np.testing.assert_array_equal(next(iter(ds)).numpy(), right)


def test_random_augmentation_in_dataset_keeps_pairs_consistent():
  seq, target = _pair()
  ds = tf.data.Dataset.from_tensors((seq, target)).repeat(40).map(
      lambda s, t: sequence_ops.augment_sequence(s, t, augment_rc=True,
                                                  augment_shift=2))
  flipped = 0
  for a_seq, a_target in ds:
    a_seq, a_target = a_seq.numpy(), a_target.numpy()
    if np.array_equal(a_target, target[::-1]):
      flipped += 1
      a_seq = a_seq[::-1, ::-1]
    else:
      np.testing.assert_array_equal(a_target, target)
    # Some shift in [-2, 2] of the (un-reverse-complemented) input.
    assert any(np.array_equal(a_seq, sequence_ops.shift_sequence(seq, k, 2).numpy())
               for k in range(-2, 3))
  assert 5 < flipped < 35


def test_dna_text_to_one_hot():
  onehot = dna.tf_text_to_one_hot(tf.constant(['ACGTN', 'acgtx']), 5).numpy()
  want = np.concatenate([np.eye(4), np.zeros([1, 4])])
  np.testing.assert_array_equal(onehot[0], want)
  np.testing.assert_array_equal(onehot[1], want)
  with pytest.raises(tf.errors.InvalidArgumentError):
    dna.tf_text_to_one_hot(tf.constant(['ACG']), 5)


def test_dna_codec_round_trips():
  text = 'ACGTNacgtRYn-'
  codes = dna.indices(text)
  np.testing.assert_array_equal(codes, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 4])
  assert dna.text(codes) == 'ACGTNACGTNNNN'
  assert dna.reverse_complement('AACGTn') == 'nACGTT'
  onehot = dna.one_hot(codes[:5], n_value=0.25)
  np.testing.assert_array_equal(onehot[4], [0.25] * 4)
  np.testing.assert_array_equal(dna.one_hot_indices(dna.one_hot(codes)), codes)
  eager = dna.tf_one_hot(codes).numpy()
  np.testing.assert_array_equal(eager, dna.one_hot(codes))
