"""The one DNA codec: text <-> base indices <-> one-hot, in numpy and in TensorFlow.

basenji's encoding throughout: bases A, C, G, T are indices 0, 1, 2, 3 and channels
0..3 of a one-hot [L, 4]; anything else (N, IUPAC codes, gaps) is index 4 and an
all-zero one-hot row. Lower case (soft-masked) bases encode like upper case:

  python -c "
  from estimator_pipeline.records import dna
  print(dna.indices('ACGTn'), dna.text(dna.indices('acgtx')), dna.reverse_complement('AACN'))"
"""

import numpy as np

BASES = 'ACGT'
N_INDEX = 4

_INDEX = np.full(256, N_INDEX, dtype=np.uint8)
for _i, _b in enumerate(BASES):
  _INDEX[ord(_b)] = _i
  _INDEX[ord(_b.lower())] = _i
_LETTERS = np.frombuffer(b'ACGTN', dtype=np.uint8)
_COMPLEMENT = str.maketrans('ACGTacgtNn', 'TGCAtgcaNn')


_TRANSLATE = _INDEX.tobytes()


def indices(dna):
  """basenji's dna_1hot_index: text (str or bytes, any case) -> uint8 [L] of 0..4."""
  if isinstance(dna, str):
    dna = dna.encode('ascii', 'replace')
  # bytes.translate maps a genome window several times faster than numpy indexing.
  return np.frombuffer(bytearray(dna).translate(_TRANSLATE), dtype=np.uint8)


def text(codes):
  """uint8 indices [L] (0..4) -> 'ACGTN' text."""
  return _LETTERS[np.asarray(codes, dtype=np.uint8)].tobytes().decode('ascii')


def one_hot(codes, n_value=0.0, dtype=np.float32):
  """Indices [..., L] -> one-hot [..., L, 4]; index 4 (N) rows hold n_value.

  n_value=0 is the records' and the serving signatures' N; basenji_sad.py encodes N
  as 0.25 in every channel.
  """
  codes = np.asarray(codes)
  table = np.concatenate([np.eye(4), np.full((1, 4), n_value)]).astype(dtype)
  return table[np.minimum(codes, N_INDEX)]


def one_hot_indices(onehot):
  """One-hot [..., L, 4] -> indices [..., L]; rows that are not one-hot become N (4)."""
  onehot = np.asarray(onehot)
  codes = np.argmax(onehot, axis=-1).astype(np.uint8)
  exact = (onehot.max(axis=-1) == 1) & (onehot.sum(axis=-1) == 1)
  return np.where(exact, codes, N_INDEX).astype(np.uint8)


def reverse_complement(dna):
  """'AACGn' -> 'nCGTT' (case kept; anything but ACGTN is kept as it is)."""
  return dna.translate(_COMPLEMENT)[::-1]


def reverse_complement_codes(codes):
  """Base indices [..., L] -> their reverse complement (N stays N)."""
  codes = np.asarray(codes, np.uint8)
  return np.where(codes < N_INDEX, 3 - codes, codes)[..., ::-1].astype(np.uint8)


def tf_one_hot(codes):
  """TF: uint8/int indices [..., L] -> float32 one-hot [..., L, 4], N all zeros."""
  # TensorFlow is imported here, not above: the genome converter's worker processes
  # use this codec and must not start TensorFlow (records/genome_windows.py).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.one_hot(tf.cast(codes, tf.int32), 4, dtype=tf.float32)


def tf_text_to_one_hot(text_tensor, seq_length, n_value=0.0):
  """TF: string [batch] of DNA text, each exactly seq_length long -> float32
  [batch, seq_length, 4]; N rows hold n_value (0.25 is basenji_sad.py's). A string of
  another length fails with a message naming it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  check = tf.debugging.assert_equal(
      tf.strings.length(text_tensor), seq_length,
      message='a DNA sequence must be exactly %d characters long' % seq_length)
  with tf.control_dependencies([check]):
    codes = tf.io.decode_raw(text_tensor, tf.uint8)
  table = tf.constant(_INDEX.astype(np.int32))
  indices = tf.gather(table, tf.cast(codes, tf.int32))
  one_hot_codes = tf_one_hot(indices)
  if n_value:
    is_n = tf.cast(tf.equal(indices, N_INDEX), tf.float32)[..., tf.newaxis]
    one_hot_codes += n_value * is_n
  return tf.reshape(one_hot_codes, [-1, seq_length, 4])
