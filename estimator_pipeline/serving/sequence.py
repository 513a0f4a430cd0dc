"""The serving input of sequence models (DNA text), and its warm-up requests.

  dna_text  (default) `sequence`: string [N], DNA text of exactly the model's sequence
            length (lower case and N accepted; N is all zeros, as in the records), so a
            REST client sends `{"instances": ["ACGT..."]}`.

The model adds its own signatures beside serving_default (models/seqnn/network.py:
`onehot` takes float32 [N, L, 4] straight into the network, `saliency` takes the text
and a `target_index`, `variant_effect` takes `ref_sequence` and `alt_sequence`, DNA
text of the model's length each, whose N are 0.25 in every channel as in
basenji_sad.py):

  saved_model_cli show --dir runs/cage/export/best/<version> --all
"""

import numpy as np
import tensorflow as tf

from estimator_pipeline import serving
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.records import dna
from estimator_pipeline.serving import warmup

SEQUENCE_KEY = 'sequence'
# basenji_sad.py's one-hot of N in the variant_effect signature.
VARIANT_N_VALUE = 0.25


def make_sequence_receiver_fn(seq_length):
  """serving_input_receiver_fn for sequence models: DNA text -> one-hot [N, L, 4].

  The one-hot tensor is a placeholder with the text's encoding as its default, so the
  model's `onehot` signature feeds float32 [batch, L, 4] directly; `target_index`
  (int32 [batch], default 0) is read only by the `saliency` signature.
  """

  def serving_input_receiver_fn():
    text = tf.compat.v1.placeholder(tf.string, [None], name=SEQUENCE_KEY)
    onehot = tf.compat.v1.placeholder_with_default(
        dna.tf_text_to_one_hot(text, seq_length), [None, seq_length, 4],
        name='onehot')
    target_index = tf.compat.v1.placeholder_with_default(
        tf.zeros_like(tf.strings.length(text)), [None], name='target_index')
    features = {SEQUENCE_KEY: onehot, network.TEXT_FEATURE: text,
                network.TARGET_INDEX_FEATURE: target_index}
    # Fed by the variant_effect signature only; serving_default never reads them.
    # A default (the sequence text) keeps the Estimator from dropping the signature
    # as one that needs a tensor its receiver does not feed.
    for text_key, onehot_key in ((network.REF_TEXT_FEATURE,
                                  network.REF_ONEHOT_FEATURE),
                                 (network.ALT_TEXT_FEATURE,
                                  network.ALT_ONEHOT_FEATURE)):
      allele = tf.compat.v1.placeholder_with_default(text, [None], name=text_key)
      features[text_key] = allele
      features[onehot_key] = dna.tf_text_to_one_hot(allele, seq_length,
                                                    n_value=VARIANT_N_VALUE)
      # gene_variant_effect's one-hot: baskerville's, N = 0.
      features[onehot_key + '_n0'] = dna.tf_text_to_one_hot(allele, seq_length)
    # gene_variant_effect's mask of the gene's bins; by default every bin.
    features[network.BINS_FEATURE] = tf.compat.v1.placeholder_with_default(
        tf.ones([tf.shape(text)[0], 1]), [None, None], name=network.BINS_FEATURE)
    return tf.estimator.export.ServingInputReceiver(
        features=features, receiver_tensors={SEQUENCE_KEY: text})

  return serving_input_receiver_fn


def sequence_requests(seq_length):
  """PredictionLogs that warm serving_default and variant_effect up: a batch of
  seeded random DNA (and, for variant_effect, each with its middle base changed)."""
  rng = np.random.RandomState(0)
  texts = [dna.text(rng.randint(0, 5, seq_length)) for _ in range(warmup.WARMUP_BATCH)]
  # The alternative alleles: each window with its middle base changed.
  middle = seq_length // 2
  alts = [t[:middle] + 'ACGT'[('ACGTN'.index(t[middle]) + 1) % 4] + t[middle + 1:]
          for t in texts]
  return [warmup.predict_log({SEQUENCE_KEY: np.array(texts, dtype=object)}),
          warmup.predict_log({network.REF_TEXT_FEATURE: np.array(texts, dtype=object),
                              network.ALT_TEXT_FEATURE: np.array(alts, dtype=object)},
                             signature_name=network.VARIANT_SIGNATURE),
          warmup.predict_log({network.REF_TEXT_FEATURE: np.array(texts, dtype=object),
                              network.ALT_TEXT_FEATURE: np.array(alts, dtype=object),
                              network.BINS_FEATURE: np.ones((len(texts), 1),
                                                            np.float32)},
                             signature_name=network.GENE_SIGNATURE)]


def _receiver(spec, seq_length, **unused):
  del spec
  return make_sequence_receiver_fn(seq_length)


def _warmup(spec, seq_length, **unused):
  del spec
  return sequence_requests(seq_length)


serving.register(serving.ServingInput('sequence', 'dna_text', _receiver, _warmup,
                                      default=True))
