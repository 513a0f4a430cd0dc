"""The variant_effect signature of sequence exports, over gRPC and in the warm-up file;
the shared loader on an export (--saved_model) with its ensemble around the graph;
predictions over BED regions (`python -m export.predict --fasta --bed`).

  .venv/bin/python -m pytest -q tests/test_variant_signature.py

The export is basenji's .h5 (tests/data/basenji) written by `python -m export`'s
library, without an ensemble, once per module.
"""

import os
import shutil

import h5py
import numpy as np
import pyBigWig
import pytest

from conftest import run_cli
import serving_support
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
import grpc
import tensorflow as tf

from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import variants
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import vcf
from estimator_pipeline.serving import warmup
from estimator_pipeline.train import exporting
from test_variants import H5
from test_variants import PARAMS
from test_variants import REF

# Reference rows (sad/sad.h5) of plain SNPs: rsA004, rsA006, rsA011.
ROWS = (3, 6, 11)


@pytest.fixture(scope='module')
def export(tmp_path_factory):
  root = tmp_path_factory.mktemp('variant_signature')
  path, _ = exporting.export('', H5, str(root / 'exports'), '',
                             {'params_file': PARAMS})
  for name in ('genome.fa', 'genome.fa.fai', 'variants.vcf'):
    shutil.copy(os.path.join(REF, name), root / name)
  return path, root


def _windows(root, rows):
  genome = fasta_index.open_genome(str(root / 'genome.fa'), str(root))
  reader = genome.reader()
  found = list(vcf.iter_vcf(str(root / 'variants.vcf')))
  pairs = [vcf.allele_windows(found[row], 4096, reader) for row in rows]
  return [dna.text(r) for r, _ in pairs], [dna.text(a[0]) for _, a in pairs]


def test_variant_effect_over_grpc_and_in_the_warmup_file(export):
  path, root = export
  served = serving_support.ServedModel(path, name='basenji')
  assert {'serving_default', 'onehot', 'saliency', network.VARIANT_SIGNATURE,
          network.GENE_SIGNATURE} <= set(served.signature_defs)
  refs, alts = _windows(root, ROWS)
  server, address = serving_support.start_grpc(served)
  try:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = 'basenji'
    request.model_spec.signature_name = network.VARIANT_SIGNATURE
    request.inputs['ref_sequence'].CopyFrom(tf.make_tensor_proto(refs))
    request.inputs['alt_sequence'].CopyFrom(tf.make_tensor_proto(alts))
    with grpc.insecure_channel(address) as channel:
      response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
          request, timeout=60)
  finally:
    server.stop(None)
  out = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
  assert {k: v.shape for k, v in out.items()} == {
      'sad': (3, 3), 'log_sad': (3, 3), 'ref_predictions': (3, 32, 3),
      'alt_predictions': (3, 32, 3)}
  # The same windows through the loader's one-hot graph, N = 0.25 as basenji_sad.py.
  model = model_source.load(saved_model=str(root / 'exports'))
  ref_preds = model.predict(dna.one_hot(np.stack([dna.indices(t) for t in refs]),
                                        n_value=0.25))
  alt_preds = model.predict(dna.one_hot(np.stack([dna.indices(t) for t in alts]),
                                        n_value=0.25))
  np.testing.assert_allclose(out['ref_predictions'], ref_preds, atol=1e-5)
  np.testing.assert_allclose(out['alt_predictions'], alt_preds, atol=1e-5)
  np.testing.assert_allclose(out['sad'], alt_preds.sum(1) - ref_preds.sum(1),
                             atol=1e-4)
  np.testing.assert_allclose(
      out['log_sad'], np.log2(alt_preds + 1).sum(1) - np.log2(ref_preds + 1).sum(1),
      atol=1e-4)
  # TF Serving replays the warm-up file before it serves: every request must run.
  logs = warmup.read(os.path.join(path, 'assets.extra', warmup.WARMUP_FILE))
  names = [log.predict_log.request.model_spec.signature_name for log in logs]
  assert names == ['serving_default', network.VARIANT_SIGNATURE,
                   network.GENE_SIGNATURE]
  for log in logs:
    request = log.predict_log.request
    result = served.predict(request.model_spec.signature_name,
                            {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
    assert all(np.isfinite(v).all() for v in result.values())


def test_loader_ensembles_around_an_export_as_basenji(export, tmp_path):
  path, root = export
  model = model_source.load(saved_model=path, ensemble_rc=True,
                            ensemble_shifts=(1, 0, -1), batch_size=4)
  assert (model.seq_length, model.bins, model.num_targets) == (4096, 32, 3)
  lines = open(root / 'variants.vcf').read().splitlines(True)
  header = [l for l in lines if l.startswith('#')]
  body = [l for l in lines if not l.startswith('#')]
  (root / 'some.vcf').write_text(''.join(header + [body[r] for r in ROWS]))
  variants.score(model, str(root / 'genome.fa'), str(root / 'some.vcf'),
                 str(tmp_path), ('SAD', 'REF'))
  with h5py.File(tmp_path / 'sad.h5') as mine, h5py.File(
      os.path.join(REF, 'sad', 'sad.h5')) as ref:
    for stat, absolute in (('SAD', 1e-4), ('REF', 1e-5)):
      theirs = ref[stat][list(ROWS)].astype(np.float64)
      assert (np.abs(mine[stat][()] - theirs) <= 2e-3 * np.abs(theirs) +
              absolute).all(), stat


# Predictions over regions (python -m export.predict --fasta --bed).

def _bed(path, lines):
  path.write_text(''.join('\t'.join(map(str, l)) + '\n' for l in lines))
  return str(path)


def test_predict_over_regions_writes_h5_and_a_bigwig_per_target(export, tmp_path):
  path, root = export
  # Second region: N past chr1's end; third: overlaps the first; fourth: no such
  # chromosome.
  bed = _bed(tmp_path / 'r.bed', [('chr1', 14990, 15010, 'a'),
                                  ('chr1', 29900, 29950, 'end'),
                                  ('chr1', 15500, 15600, 'overlap'),
                                  ('chrZ', 10, 20, 'nowhere'),
                                  ('chr2', 1000, 1020, 'b', 0, '-')])
  out = tmp_path / 'out'
  proc = run_cli(['-m', 'export.predict', '--saved_model=' + path,
                  '--fasta=' + str(root / 'genome.fa'), '--bed=' + bed,
                  '--targets_file=' + os.path.join(REF, 'targets_subset.txt'),
                  '--output=' + str(out / 'preds.h5'),
                  '--bigwig_dir=' + str(out / 'tracks'), '--batch_size=3'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'skipped --bed line 4 (chrZ:10-20): chromosome chrZ is not in the FASTA' \
      in proc.stderr
  model = model_source.load(saved_model=path)
  genome = fasta_index.open_genome(str(root / 'genome.fa'), str(tmp_path))
  reader = genome.reader()
  mids = [(14990 + 15010) // 2, (29900 + 29950) // 2, 15550, 1010]
  chroms = ['chr1', 'chr1', 'chr1', 'chr2']
  codes = np.stack([reader.codes(c, m - 2048, m + 2048) for c, m in zip(chroms, mids)])
  inside = 30000 - (mids[1] - 2048)  # chr1 is 30000 bp: N after that.
  assert (codes[1, inside:] == dna.N_INDEX).all() and codes[1, inside - 1] < 4
  expected = model.predict(dna.one_hot(codes))[..., [2, 0]]
  with h5py.File(out / 'preds.h5') as f:
    assert f['preds'].dtype == np.float16 and f['preds'].shape == (4, 32, 2)
    np.testing.assert_allclose(f['preds'][()], expected, rtol=2e-3, atol=1e-4)
    assert list(f['chrom'][()]) == [c.encode() for c in chroms]
    np.testing.assert_array_equal(f['start'][()], [m - 2048 for m in mids])
    np.testing.assert_array_equal(f['end'][()], [m + 2048 for m in mids])
  assert sorted(os.listdir(out / 'tracks')) == ['T0000.bw', 'T0002.bw']
  track = pyBigWig.open(str(out / 'tracks' / 'T0000.bw'))
  try:
    assert track.chroms() == {'chr1': 30000, 'chr2': 29000}
    # The first region's bins are written whole; of the overlapping third region
    # only the bins past the first's end; the second stops at chr1's end.
    first = track.intervals('chr1', mids[0] - 2048, mids[2] + 2048)
    past = [b for b in range(32) if mids[2] - 2048 + 128 * b >= mids[0] + 2048]
    assert len(first) == 32 + len(past) and len(past) == 4
    np.testing.assert_allclose([v for _, _, v in first[:32]],
                               expected[0, :, 1], rtol=2e-3, atol=1e-4)
    assert track.intervals('chr1', 29000, 30000)[-1][1] <= 30000
  finally:
    track.close()


def test_predict_over_regions_refuses_a_short_bed_line(export, tmp_path):
  path, root = export
  bed = _bed(tmp_path / 'r.bed', [('chr1', 14990, 15010), ('chr1', 200)])
  proc = run_cli(['-m', 'export.predict', '--saved_model=' + path,
                  '--fasta=' + str(root / 'genome.fa'), '--bed=' + bed,
                  '--output=' + str(tmp_path / 'out' / 'preds.h5')])
  assert proc.returncode == 2, proc.stderr[-3000:]
  errors = [l for l in proc.stderr.splitlines() if 'error' in l.lower()]
  assert len(errors) == 1 and errors[0].startswith('error: --bed=%s line 2: ' % bed)
  assert not (tmp_path / 'out').exists()
