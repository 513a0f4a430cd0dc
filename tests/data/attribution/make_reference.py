"""Writes reference.npz: DeepSHAP values of the tiny model here, by the shap package.

  pip install --target /tmp/shap shap==0.51.0 slicer  # not a project dependency
  PYTHONPATH=/tmp/shap:. python tests/data/attribution/make_reference.py

The network of params.json (conv 5 -> max pool 2 -> ReLU -> conv 3 -> max pool 2 ->
ReLU -> dense -> softplus) is rebuilt in Keras with model.ckpt's weights, and the
readout (the sum over bins of target 0) is explained by shap.DeepExplainer, one
sequence at a time against its own three dinucleotide-shuffled references, which
are stored beside the inputs and the values (tests/test_attribution.py compares).
"""

import os

import numpy as np
import shap
import tensorflow as tf

from estimator_pipeline.analysis import attribution

HERE = os.path.dirname(os.path.abspath(__file__))


def keras_model(checkpoint):
  w = tf.train.load_checkpoint(checkpoint)
  get = lambda name: w.get_tensor(name)  # noqa: E731
  inputs = tf.keras.Input((64, 4))
  x = tf.keras.layers.Conv1D(6, 5, padding='same')(inputs)
  x = tf.keras.layers.MaxPool1D(2, padding='same')(x)
  x = tf.keras.layers.ReLU()(x)
  x = tf.keras.layers.Conv1D(4, 3, padding='same')(x)
  x = tf.keras.layers.MaxPool1D(2, padding='same')(x)
  x = tf.keras.layers.ReLU()(x)
  x = tf.keras.layers.Dense(2, activation='softplus')(x)
  x = tf.keras.layers.Lambda(lambda t: tf.reduce_sum(t[:, :, 0], axis=1,
                                                     keepdims=True))(x)
  model = tf.keras.Model(inputs, x)
  convs = [l for l in model.layers if isinstance(l, tf.keras.layers.Conv1D)]
  dense = [l for l in model.layers if isinstance(l, tf.keras.layers.Dense)][0]
  for i, layer in enumerate(convs):
    prefix = 'trunk/conv_block_%d/conv/' % i
    layer.set_weights([get(prefix + 'kernel'), get(prefix + 'bias')])
  dense.set_weights([get('head/final_0/dense/kernel'), get('head/final_0/dense/bias')])
  return model


def main():
  model = keras_model(os.path.join(HERE, 'model.ckpt'))
  rng = np.random.RandomState(3)
  codes = rng.randint(0, 4, (3, 64)).astype(np.uint8)
  refs = np.stack([attribution.shuffled_references(c, 3, seed=0) for c in codes])
  x = attribution.dna.one_hot(codes)
  r = attribution.dna.one_hot(refs)
  values = []
  for i in range(len(x)):
    explainer = shap.DeepExplainer(model, r[i])
    values.append(np.asarray(explainer.shap_values(x[i:i + 1], check_additivity=True)
                             ).reshape(64, 4))
  np.savez(os.path.join(HERE, 'reference.npz'), codes=codes, references=refs,
           shap_values=np.stack(values).astype(np.float32),
           readout=model.predict(x, verbose=0)[:, 0],
           reference_readout=model.predict(r.reshape(-1, 64, 4), verbose=0
                                           ).reshape(3, 3).mean(1))


if __name__ == '__main__':
  main()
