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
