"""Planted motifs come back: synthetic records with two motifs, a small SeqNN trained on
them, attributions of held-out windows, TF-MoDISco and Tomtom; the
integrated_gradients signature of its export over gRPC; export.motifs' bad input.

  .venv/bin/python -m pytest -q tests/test_motifs.py

Motif A raises target 0 around each site and motif B target 1 (either strand); the
model is trained for a few hundred steps in tmp_path, once per module.
"""

import concurrent.futures
import json
import os

import h5py
import numpy as np
import pytest

from conftest import run_cli
import seq_helpers
import serving_support
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
import grpc
import tensorflow as tf

from estimator_pipeline import config
from estimator_pipeline import train
from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import attribution_graph
from estimator_pipeline.analysis import attribution_models
from estimator_pipeline.analysis import motifs
from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.models.seqnn import attribution_signature
from estimator_pipeline.records import dna

PLANTED = {'motifA': 'TGACTCAT', 'motifB': 'CCAATCGG'}
SEQ_LENGTH, POOL = 256, 8


def planted_examples(n, seed):
  """(bases [n, L], targets [n, bins, 2]): 0 to 2 sites of each motif per sequence,
  either strand; target m is a bump around each site of motif m."""
  rng = np.random.RandomState(seed)
  bases = rng.randint(0, 4, (n, SEQ_LENGTH)).astype(np.uint8)
  targets = np.full((n, SEQ_LENGTH // POOL, 2), 0.05, np.float32)
  centres = np.arange(SEQ_LENGTH // POOL) * POOL + POOL / 2
  for i in range(n):
    for m, motif in enumerate(PLANTED.values()):
      for _ in range(rng.randint(0, 3)):
        codes = dna.indices(motif)
        if rng.rand() < 0.5:
          codes = dna.reverse_complement_codes(codes)
        at = rng.randint(8, SEQ_LENGTH - 16)
        bases[i, at:at + 8] = codes
        targets[i, :, m] += 2.0 * np.exp(-0.5 * ((centres - at - 4) / 12.0) ** 2)
  return bases, targets


def write_meme(path, decoys=30, seed=0):
  """A MEME file of the two planted motifs and random decoys (Tomtom's background)."""
  rng = np.random.RandomState(seed)
  pwms = {name: np.eye(4)[dna.indices(m)] * 0.94 + 0.015
          for name, m in PLANTED.items()}
  for i in range(decoys):
    pwms['decoy%02d' % i] = rng.dirichlet(np.ones(4) * 0.5, rng.randint(6, 13))
  lines = ['MEME version 4', '', 'ALPHABET= ACGT', '', 'strands: + -', '']
  for name, pwm in pwms.items():
    lines += ['MOTIF %s %s' % (name, name),
              'letter-probability matrix: alength= 4 w= %d nsites= 20 E= 0'
              % len(pwm)]
    lines += [' '.join('%.4f' % v for v in row) for row in pwm] + ['']
  path.write_text('\n'.join(lines))
  return str(path)


@pytest.fixture(scope='module')
def planted(tmp_path_factory):
  root = tmp_path_factory.mktemp('planted')
  records = root / 'tfrecords'
  records.mkdir()
  for split, n, seed in (('train', 1024, 1), ('valid', 64, 2)):
    seq_helpers.write_records(records / ('%s-0.tfr' % split),
                              *planted_examples(n, seed))
  (root / 'statistics.json').write_text(json.dumps({
      'seq_length': SEQ_LENGTH, 'seq_1hot': False, 'pool_width': POOL, 'crop_bp': 0,
      'target_length': SEQ_LENGTH // POOL, 'num_targets': 2, 'train_seqs': 1024,
      'valid_seqs': 64, 'test_seqs': 0}))
  bases, _ = planted_examples(128, 3)
  with open(root / 'heldout.fa', 'w') as f:
    for i, codes in enumerate(bases):
      f.write('>s%d\n%s\n' % (i, dna.text(codes)))
  params = json.loads(json.dumps(seq_helpers.TINY_PARAMS))
  params['model']['trunk'][0].update(filters=16, kernel_size=9)
  seq_helpers.write_params(root / 'params.json', params)
  cfg = config.Config(
      model_name='seqnn', params_file=str(root / 'params.json'),
      model_dir=str(root / 'run'), train_record_path=str(records / 'train-*.tfr'),
      eval_record_path=str(records / 'valid-*.tfr'), num_steps=150,
      save_checkpoints_steps=150, log_every_steps=75, batch_size=32)
  result = train.run(cfg)
  return root, result


def _attribute(root, method, extra=()):
  return run_cli(['-m', 'export.attribution', '--method=' + method,
                  '--params_file=%s' % (root / 'params.json'),
                  '--checkpoint=%s' % (root / 'run'), '--fasta=%s' % (root / 'heldout.fa'),
                  '--targets=0,1', '--batch_size=32',
                  '--output_dir=%s' % (root / method)] + list(extra))


def _motifs(root, method, db):
  return run_cli(['-m', 'export.motifs', '--attributions=%s' % (root / method),
                  '--motif_db=' + db, '--output_dir=%s' % (root / (method + '_motifs'))])


def test_planted_motifs_come_back(planted, tmp_path):
  root, _ = planted
  db = write_meme(tmp_path / 'planted.meme')
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    runs = [pool.submit(_attribute, root, 'deepshap', ['--references=4']),
            pool.submit(_attribute, root, 'ig', ['--steps=20'])]
    for done in runs:
      assert done.result().returncode == 0, done.result().stderr[-3000:]
  done = _motifs(root, 'deepshap', db)
  assert done.returncode == 0, done.stderr[-3000:]
  out = root / 'deepshap_motifs'
  for name in ('modisco_results.h5', 'motifs.tsv', 'report.html', 'report.png'):
    assert (out / name).is_file(), name
  rows = [line.split('\t') for line in
          (out / 'motifs.tsv').read_text().splitlines()[1:]]
  found = {row[4].split()[0] for row in rows
           if row[0].startswith('pos') and float(row[6]) < 0.05}
  assert set(PLANTED) <= found, rows
  # Each pattern's base frequencies against the planted PWMs, by Pearson correlation.
  with h5py.File(out / 'modisco_results.h5', 'r') as h5:
    ppms = [h5['pos_patterns'][p]['sequence'][()] for p in h5['pos_patterns']]
  best = {name: max(motifs.pearson_match(ppm, np.eye(4)[dna.indices(m)])
                    for ppm in ppms) for name, m in PLANTED.items()}
  assert min(best.values()) >= 0.9, best
  # Integrated gradients put the held-out contributions on the planted sites too.
  for method in ('deepshap', 'ig'):
    contributions = np.load(root / method / 'contributions.npz')['arr_0'].sum(1)
    on_sites = _site_mask(root)
    assert contributions[on_sites].mean() > 10 * abs(contributions[~on_sites].mean())


def _site_mask(root):
  """bool [N, L]: the bases of every planted (or chance) site of either motif."""
  from estimator_pipeline.records import genome_files  # pylint: disable=g-import-not-at-top
  codes = np.stack([c for _, _, c in genome_files.read_fasta(
      str(root / 'heldout.fa'))])
  mask = np.zeros(codes.shape, bool)
  for motif in PLANTED.values():
    for pattern in (dna.indices(motif), dna.reverse_complement_codes(
        dna.indices(motif))):
      for start in range(codes.shape[1] - len(pattern) + 1):
        hit = (codes[:, start:start + len(pattern)] == pattern).all(axis=1)
        mask[hit, start:start + len(pattern)] = True
  return mask


def test_integrated_gradients_signature_over_grpc(planted):
  root, result = planted
  heldout = [codes for _, _, codes in attribution_regions_fasta(root)][:3]
  targets = np.array([0, 1, 0], np.int32)
  served = serving_support.ServedModel(result.exports['final'], name='planted')
  assert attribution_signature.IG_SIGNATURE in served.signature_defs
  server, address = serving_support.start_grpc(served)
  try:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'planted'
    request.model_spec.signature_name = attribution_signature.IG_SIGNATURE
    request.inputs['sequence'].CopyFrom(tf.make_tensor_proto(
        [dna.text(c) for c in heldout]))
    request.inputs['target_index'].CopyFrom(tf.make_tensor_proto(targets))
    with grpc.insecure_channel(address) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
          request, timeout=60)
  finally:
    server.stop(None)
  out = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
  assert out['attributions'].shape == (3, SEQ_LENGTH, 4)
  # The command's numbers: ig from zeros in as many steps, on the checkpoint.
  net = attribution_graph.load(str(root / 'params.json'), str(root / 'run'))
  rows = [attribution.Row(c, 'r') for c in heldout]
  for i, target in enumerate(targets):
    weights = readout_lib.Readout([int(target)], (0, net.bins)).weights(
        net.bins, net.num_targets)
    hyp, fx, fb = attribution.explain(
        net, rows[i:i + 1], (weights[0][None], weights[1][None]),
        attribution.Options('ig', steps=attribution_signature.IG_STEPS))
    np.testing.assert_allclose(out['hypothetical'][i], hyp[0], rtol=1e-4,
                               atol=1e-5 * np.abs(hyp).max())
    total = out['scores'][i].sum()
    assert abs(total - (fx[0] - fb[0])) < 0.01 * abs(fx[0] - fb[0])
  # export.attribution --saved_model reads the same signature.
  explainer = attribution_models.load('ig', {'saved_model': result.exports['final']},
                                      'sum')
  weights = readout_lib.Readout([1], (0, net.bins)).weights(net.bins, net.num_targets)
  hyp, _, _ = explainer.explain(rows[:1], (weights[0][None], weights[1][None]), None)
  np.testing.assert_allclose(
      hyp[0], attribution.explain(net, rows[:1], (weights[0][None], weights[1][None]),
                                  attribution.Options('ig'))[0][0],
      rtol=1e-4, atol=1e-5 * np.abs(hyp).max())


def attribution_regions_fasta(root):
  from estimator_pipeline.records import genome_files  # pylint: disable=g-import-not-at-top
  return genome_files.read_fasta(str(root / 'heldout.fa'))


def test_bad_motif_input_is_one_line_and_writes_nothing(tmp_path):
  rng = np.random.RandomState(0)
  onehot = np.eye(4, dtype=np.float32)[rng.randint(0, 4, (20, 100))].transpose(0, 2, 1)
  attr = tmp_path / 'attr'
  attr.mkdir()
  np.savez(attr / 'ohe.npz', arr_0=onehot)
  np.savez(attr / 'hypothetical.npz', arr_0=np.zeros_like(onehot))
  not_meme = tmp_path / 'motifs.txt'
  not_meme.write_text('>MA0001 something\nA [ 1 2 3 ]\n')
  out = tmp_path / 'out'
  cases = {'is not a MEME motif file': ['--motif_db=%s' % not_meme],
           'TF-MoDISco found no seqlets in 20 sequences': [
               '--motif_db=' + write_meme(tmp_path / 'db.meme')]}
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    runs = {k: pool.submit(run_cli, ['-m', 'export.motifs', '--attributions=%s' % attr,
                                     '--output_dir=%s' % out] + v)
            for k, v in cases.items()}
  for expected, future in runs.items():
    done = future.result()
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and expected in last, last
    assert 'Traceback' not in done.stderr
  assert not os.path.exists(out)
