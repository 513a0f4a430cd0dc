"""Serving input receivers: what a TF Serving client sends, turned into model features.

The default receiver takes a batch of encoded JPEG/PNG bytes, so a REST client sends
`{"instances": [{"b64": "<base64 bytes>"}]}`, and applies the same evaluation
preprocessing as the input pipeline (the same function, not a copy):

  saved_model_cli show --dir runs/x/export/best/<version> --tag_set serve \
      --signature_def serving_default
"""

import tensorflow as tf

from estimator_pipeline import preprocessing

IMAGE_BYTES_KEY = 'image_bytes'


def make_image_bytes_receiver_fn(family, image_size):
  """serving_input_receiver_fn: string [N] of encoded images -> {'image': [N,S,S,3]}."""

  def serving_input_receiver_fn():
    image_bytes = tf.compat.v1.placeholder(tf.string, [None], name=IMAGE_BYTES_KEY)

    def one(encoded):
      return preprocessing.decode_and_preprocess(
          encoded, family, image_size, image_size, is_training=False)

    images = tf.map_fn(
        one, image_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
        # Requests are decoded in parallel; order is kept by map_fn.
        parallel_iterations=16)
    return tf.estimator.export.ServingInputReceiver(
        features={'image': images}, receiver_tensors={IMAGE_BYTES_KEY: image_bytes})

  return serving_input_receiver_fn


SEQUENCE_KEY = 'sequence'


def make_sequence_receiver_fn(seq_length):
  """serving_input_receiver_fn for sequence models: DNA text -> one-hot [N, L, 4].

  serving_default takes `sequence`, a tf.string [batch] of ACGT text exactly
  seq_length long (lower case and N accepted; N is all zeros, as in the records). The
  one-hot tensor is a placeholder with that default, so the model's `onehot` signature
  feeds float32 [batch, L, 4] directly; `target_index` (int32 [batch], default 0) is
  read only by the `saliency` signature.
  """
  # Imported here: models/ imports TensorFlow-heavy code the image path never needs.
  from estimator_pipeline.models import seqnn  # pylint: disable=g-import-not-at-top

  def serving_input_receiver_fn():
    text = tf.compat.v1.placeholder(tf.string, [None], name=SEQUENCE_KEY)
    onehot = tf.compat.v1.placeholder_with_default(
        preprocessing.dna_to_one_hot(text, seq_length), [None, seq_length, 4],
        name='onehot')
    target_index = tf.compat.v1.placeholder_with_default(
        tf.zeros_like(tf.strings.length(text)), [None], name='target_index')
    features = {SEQUENCE_KEY: onehot, seqnn.TEXT_FEATURE: text,
                seqnn.TARGET_INDEX_FEATURE: target_index}
    return tf.estimator.export.ServingInputReceiver(
        features=features, receiver_tensors={SEQUENCE_KEY: text})

  return serving_input_receiver_fn
