"""Attributions: sequences/sec of ig (50 steps) and deepshap (10 references) against
the same network's forward+backward ceiling on the same batches.

The reference basenji model (tests/data/basenji: 4096 bp, 32 bins, 3 targets; GELU,
batch norm, max pooling, softplus), built as export.attribution builds it. The
pipeline: attribution_output.compute (references shuffled on the CPU, the path or
the [inputs; references] batches built, the network's gradient, the hypothetical
contributions reduced). The ceiling: the plain network's gradient of the same readout
fed as many pre-built batches of the same shape; deepshap's graph carries DeepLIFT's
rules on top (a second pass per activation and max pool), which the ratio includes.

  python -m bench --only=attribution
"""

import os
import time

import numpy as np

from bench import common
from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import attribution_graph
from estimator_pipeline.analysis import attribution_models
from estimator_pipeline.analysis import attribution_output
from estimator_pipeline.analysis import readout as readout_lib

DATA = os.path.join(common.REPO, 'tests', 'data', 'basenji')
BATCH_SIZE = 8


def run(work_dir, toy=False, repeats=3):
  del work_dir
  count, steps, references = (2, 5, 2) if toy else (8, 50, 10)
  params = os.path.join(DATA, 'basenji_params.json')
  checkpoint = os.path.join(DATA, 'basenji_model.h5')
  plain = attribution_graph.load(params, checkpoint)
  explainers = {
      'ig': attribution_models.NetworkExplainer(plain),
      'deepshap': attribution_models.NetworkExplainer(
          attribution_graph.load(params, checkpoint, deeplift=True))}
  rng = np.random.RandomState(0)
  rows = [attribution.Row(rng.randint(0, 4, plain.seq_length).astype(np.uint8),
                          'r%d' % i) for i in range(count)]
  readout = readout_lib.Readout([0], (0, plain.bins))
  options = {
      'ig': attribution.Options('ig', steps=steps, batch_size=BATCH_SIZE),
      'deepshap': attribution.Options('deepshap', references=references,
                                      batch_size=BATCH_SIZE)}
  shapes = {'ig': [], 'deepshap': []}
  # The same batches as the pipeline's gradient calls (attribution.explain): per chunk
  # of BATCH_SIZE rows, ig's path points BATCH_SIZE at a time; deepshap's inputs and
  # one reference each, per reference.
  for first in range(0, count, BATCH_SIZE):
    chunk = min(BATCH_SIZE, count - first)
    per_call = max(1, BATCH_SIZE // chunk)
    shapes['ig'] += [chunk * len(range(s, min(steps, s + per_call)))
                     for s in range(0, steps, per_call)]
    shapes['deepshap'] += [2 * chunk] * references
  common.log('attribution: %d sequences of %d bp, ig %d steps, deepshap %d references, '
             'batch %d' % (count, plain.seq_length, steps, references, BATCH_SIZE))

  def pipeline(method):
    def go():
      start = time.perf_counter()
      arrays = attribution_output.compute(explainers[method], rows, readout,
                                          options[method])
      assert arrays['hypothetical'].shape == (count, 4, plain.seq_length)
      return count / (time.perf_counter() - start)
    return go

  def ceiling(method):
    batches = {n: np.eye(4, dtype=np.float32)[rng.randint(0, 4, (
        n, plain.seq_length))] for n in set(shapes[method])}
    weights = {n: readout.weights(plain.bins, plain.num_targets) for n in batches}
    weights = {n: (np.tile(w[0], (n, 1)), np.tile(w[1], (n, 1)))
               for n, w in weights.items()}

    def go():
      start = time.perf_counter()
      for n in shapes[method]:
        plain.gradient(batches[n], weights[n])
      return count / (time.perf_counter() - start)
    return go

  variants = {}
  for method in ('ig', 'deepshap'):
    variants[method] = pipeline(method)
    variants[method + '_ceiling'] = ceiling(method)
  for fn in variants.values():  # Warm-up: the first calls build the kernels.
    fn()
  raw = common.interleave(variants, repeats, log=common.log)
  results = {v + '_sequences_per_sec': common.stats(raw[v]) for v in raw}
  for method in ('ig', 'deepshap'):
    results[method + '_vs_ceiling_ratio'] = common.stats(
        common.ratios(raw[method], raw[method + '_ceiling']))
  results['setup'] = ('reference basenji model, 4096 bp, %d sequences, ig %d steps '
                      'from zeros, deepshap %d references, batch %d' % (
                          count, steps, references, BATCH_SIZE))
  return {'attribution': results}
