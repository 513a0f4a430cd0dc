"""The gene_variant_effect signature and the strand sums of variant_effect, over gRPC,
against export.gene_variants' and export.variants' numbers for the same windows.

  .venv/bin/python -m pytest -q tests/test_gene_signature.py

The model is baskerville's stranded .h5 (tests/data/baskerville_snp) with its strand
pairs in the params file, exported with the reverse-complement ensemble once per
module. The commands read it bare, with a targets table that lists every output with
the same pairs and no transform to undo.
"""

import json
import os

import grpc
import h5py
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import baskerville_support as bs
import serving_support
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.analysis import variant_alleles
from estimator_pipeline.analysis import variant_genes
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.analysis import variants
from estimator_pipeline.analysis import gtf
from estimator_pipeline.models.seqnn import network
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import vcf
from estimator_pipeline.train import exporting

# SNPs of genes_variants.vcf and the gene scored: + and - genes.
PAIRS = (('rsCG001', 'GENE_P1'), ('rsCG006', 'GENE_M1'), ('rsCG012', 'GENE_P2'))
STATS = ('SUM', 'logSUM', 'logSED', 'D1', 'D2', 'SAX')
OUTPUT = dict(SUM='sum', logSUM='log_sum', logSED='log_sed', D1='d1', D2='d2',
              SAX='sax')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp('gene_signature')
  table = targets_lib.read(bs.data('targets.txt'), 12)
  pairs = list(table.model_pairs(12))
  with open(bs.PARAMS) as f:
    params = json.load(f)
  params['model']['strand_pair'] = [pairs]
  with open(root / 'params.json', 'w') as f:
    json.dump(params, f)
  # Every output, the table's pairs (outputs 4 and 9 unstranded), nothing to undo.
  names = {i: table.ids[k] for k, i in enumerate(table.index)}
  lines = ['\tidentifier\tclip_soft\tscale\tsum_stat\tstrand_pair\tdescription']
  lines += ['%d\t%s\t1e9\t1\tsum\t%d\tt%d' % (i, names.get(i, 'U%d' % i), pairs[i], i)
            for i in range(12)]
  (root / 'targets.txt').write_text('\n'.join(lines) + '\n')
  path, _ = exporting.export('', bs.H5, str(root / 'exports'), '',
                             {'params_file': str(root / 'params.json'),
                              'ensemble_rc': True})
  genome = bs.copy_genome(str(root))
  model = model_source.load(params_file=str(root / 'params.json'), checkpoint=bs.H5)
  return root, path, genome, model


@pytest.fixture(scope='module')
def address(setup):
  served = serving_support.ServedModel(setup[1], name='bask')
  assert {network.VARIANT_SIGNATURE, network.GENE_SIGNATURE} <= set(
      served.signature_defs)
  server, found = serving_support.start_grpc(served)
  yield found
  server.stop(None)


def _grpc(address, signature, inputs):
  request = predict_pb2.PredictRequest()
  request.model_spec.name = 'bask'
  request.model_spec.signature_name = signature
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
  with grpc.insecure_channel(address) as channel:
    response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
        request, timeout=120)
  return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def test_gene_variant_effect_equals_the_command(setup, address, tmp_path):
  root, _, genome, model = setup
  scorer = variant_scores.Scorer(model, str(root / 'targets.txt'), True, (0,),
                                 params_file=bs.PARAMS)
  variant_genes.score(model, genome, bs.data('genes.gtf'),
                      bs.data('genes_variants.vcf'), str(tmp_path), STATS, scorer)
  genes = {g.gene_id: g for g in variant_genes.unique_genes(
      gtf.read_genes(bs.data('genes.gtf')))}
  clusters = {c.genes[0].gene_id: c for c in variant_genes.gene_clusters(
      list(genes.values()), {'chr1': 0, 'chr2': 0}, 4096, 0)}
  variants_by_id = {v.snp: v for v in vcf.iter_vcf(bs.data('genes_variants.vcf'))}
  reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
  refs, alts, masks = [], [], []
  for snp, gene in PAIRS:
    c, v = clusters[gene], variants_by_id[snp]
    codes = reader.codes(v.chrom, c.start, c.start + 4096)
    refs.append(dna.text(codes))
    alts.append(dna.text(variant_alleles.alt_codes(codes, v.pos - 1 - c.start, v.ref,
                                                   v.alt)))
    mask = np.zeros(64, np.float32)
    mask[variant_genes.gene_bins(genes[gene], c.start + 1024, 64, 32)] = 1
    masks.append(mask)
  reader.close()
  out = _grpc(address, network.GENE_SIGNATURE, {
      'ref_sequence': refs, 'alt_sequence': alts, 'exon_bins': np.stack(masks)})
  assert out['sum'].shape == (3, 12) and out['ref_predictions'].shape == (3, 64, 12)
  strands = variant_genes.strand_columns(scorer.table)
  with h5py.File(tmp_path / 'scores.h5') as f:
    for row, (snp, gene) in enumerate(PAIRS):
      keep = strands[genes[gene].strand]
      for stat in STATS:
        mine = out[OUTPUT[stat]][row][keep]
        # Statistics in float32 in the graph: the reference README's float32 terms.
        absolute = 4e-3 if stat in bs.SUMS else 2e-4
        theirs = f['%s/%s/%s' % (stat, snp, gene)][()].astype(np.float64)
        assert (np.abs(mine - theirs) <= 2 * bs.ulp(theirs) + absolute).all(), (
            stat, snp, gene, np.abs(mine - theirs).max())


def test_variant_effect_sums_strand_pairs(setup, address, tmp_path):
  """strand_sad: each target plus its other strand, as export.variants sums a
  stranded table's pairs; the ensemble swaps strands on the reverse complement."""
  root, _, genome, model = setup
  model.ensemble_rc = True
  model.strand_pair = None  # set by the command from its table
  try:
    _variant_effect_sums(root, genome, model, address, tmp_path)
  finally:
    model.ensemble_rc, model.strand_pair = False, None


def _variant_effect_sums(root, genome, model, address, tmp_path):
  rows = [0, 2, 5]
  lines = open(bs.data('genes_variants.vcf')).read().splitlines(True)
  (tmp_path / 'v.vcf').write_text(
      ''.join([l for l in lines if l.startswith('#')] +
              [[l for l in lines if not l.startswith('#')][r] for r in rows]))
  variants.score(model, genome, str(tmp_path / 'v.vcf'), str(tmp_path / 'out'),
                 ('SAD',), str(root / 'targets.txt'))
  reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
  windows = [vcf.allele_windows(v, 4096, reader)
             for v in vcf.iter_vcf(str(tmp_path / 'v.vcf'))]
  reader.close()
  out = _grpc(address, network.VARIANT_SIGNATURE, {
      'ref_sequence': [dna.text(r) for r, _ in windows],
      'alt_sequence': [dna.text(a[0]) for _, a in windows]})
  pairs = np.array(targets_lib.read(str(root / 'targets.txt'), 12).pair)
  np.testing.assert_allclose(out['strand_sad'], out['sad'] + np.where(
      pairs != np.arange(12), out['sad'][:, pairs], 0), rtol=1e-6, atol=1e-6)
  table = targets_lib.read(str(root / 'targets.txt'), 12)
  with h5py.File(tmp_path / 'out' / 'sad.h5') as f:
    theirs = f['SAD'][()].astype(np.float64)
    mine = out['strand_sad'][:, list(table.collapsed)]
    assert (np.abs(mine - theirs) <= 2e-3 * np.abs(theirs) + 1e-3).all(), np.abs(
        mine - theirs).max()


def test_gene_variants_from_the_export(setup, tmp_path):
  """export.gene_variants from --saved_model (--crop_bins places its bins) gives the
  numbers of the params-file route."""
  root, path, genome, model = setup
  found = []
  for source, crop in ((model, -1), (model_source.load(saved_model=path), 32)):
    scorer = variant_scores.Scorer(source, str(root / 'targets.txt'), True, (0,),
                                   crop_bins=crop, params_file='' if crop > 0 else
                                   bs.PARAMS)
    assert (scorer.stride, scorer.crop) == (32, 1024)
    out = tmp_path / str(crop)
    variant_genes.score(source, genome, bs.data('genes.gtf'),
                        bs.data('genes_variants.vcf'), str(out), ('logSUM', 'D2'),
                        scorer)
    with h5py.File(out / 'scores.h5') as f:
      found.append({(k, s, g): f['%s/%s/%s' % (k, s, g)][()]
                    for k in ('logSUM', 'D2') for s, g in PAIRS})
  for key, value in found[0].items():
    bs.assert_within(found[1][key], value, key[0], key)
