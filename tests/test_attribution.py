"""Attributions (python -m export.attribution) on basenji's reference model: IG's
completeness, DeepSHAP's summation to delta, ISM against export.mutagenesis, saliency
against export.saliency, the files TF-MoDISco reads, the readouts, and bad input.

  .venv/bin/python -m pytest -q tests/test_attribution.py

The model is tests/data/basenji's .h5 (GELU, batch norm, max pooling, dilated
residual blocks, softplus), built from its params file as the command builds it.
"""

import concurrent.futures
import os

import h5py
import numpy as np
import pyBigWig
import pytest

from conftest import REPO
from conftest import run_cli
from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import attribution_graph
from estimator_pipeline.analysis import attribution_models
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.analysis import saliency
from estimator_pipeline.core.errors import UserError

DATA = os.path.join(REPO, 'tests', 'data', 'basenji')
PARAMS = os.path.join(DATA, 'basenji_params.json')
H5 = os.path.join(DATA, 'basenji_model.h5')
GENOME = os.path.join(DATA, 'reference', 'genome.fa')
BED = os.path.join(DATA, 'reference', 'regions.bed')


def _rows():
  x = np.load(os.path.join(DATA, 'basenji_input.npy'))
  codes = np.where(x.sum(-1) > 0, x.argmax(-1), 4).astype(np.uint8)
  return [attribution.Row(c, 'r%d' % i) for i, c in enumerate(codes)]


def _weights(readout, net, rows):
  pairs = [readout.weights(net.bins, net.num_targets, r.strand) for r in rows]
  return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


@pytest.fixture(scope='module')
def nets():
  return {name: attribution_graph.load(PARAMS, H5, transform, deeplift=deeplift)
          for name, transform, deeplift in (('plain', 'sum', False),
                                            ('deeplift', 'log', True))}


def _explain(net, readout, options):
  rows = _rows()
  hyp, fx, fb = attribution.explain(net, rows, _weights(readout, net, rows), options)
  x = attribution.dna.one_hot(np.stack([r.codes for r in rows]))
  return hyp, (hyp * x).sum(axis=(1, 2)), fx - fb


def test_ig_is_complete_within_one_percent_at_50_steps(nets):
  readout = readout_lib.Readout([0, 2], (12, 20), 'sum')
  _, total, delta = _explain(nets['plain'], readout, attribution.Options('ig',
                                                                         steps=50))
  error = np.abs(total - delta) / np.abs(delta)
  assert error.max() < 0.01, (total, delta)
  # Too few steps miss it: the test can fail.
  _, total, delta = _explain(nets['plain'], readout, attribution.Options('ig',
                                                                         steps=2))
  assert (np.abs(total - delta) / np.abs(delta)).max() > 0.01


def test_deepshap_sums_to_delta_on_a_basenji_conv_net(nets):
  readout = readout_lib.Readout([0, 2], (12, 20), 'log')
  hyp, total, delta = _explain(nets['deeplift'], readout, attribution.Options(
      'deepshap', references=3))
  assert np.all(np.abs(total - delta) <= 1e-3 * np.abs(delta)), (total, delta)
  # A broken rule (the plain gradient) misses it by far.
  _, plain, _ = _explain(nets['plain'], readout, attribution.Options('saliency'))
  assert np.all(np.abs(plain - delta) > 0.1 * np.abs(delta))
  assert np.isfinite(hyp).all()


def test_deepshap_equals_shap_on_a_small_network():
  """tests/data/attribution: a conv/max-pool/ReLU/softplus SeqNN and the values
  shap.DeepExplainer gave for it (make_reference.py there), against the same
  references."""
  folder = os.path.join(REPO, 'tests', 'data', 'attribution')
  reference = np.load(os.path.join(folder, 'reference.npz'))
  net = attribution_graph.load(os.path.join(folder, 'params.json'),
                               os.path.join(folder, 'model.ckpt'), deeplift=True)
  rows = [attribution.Row(c, 'r%d' % i) for i, c in enumerate(reference['codes'])]
  for row, references in zip(rows, reference['references']):
    np.testing.assert_array_equal(
        attribution.shuffled_references(row.codes, 3, seed=0), references)
  hyp, values, baselines = attribution.explain(
      net, rows, _weights(readout_lib.Readout([0], (0, net.bins)), net, rows),
      attribution.Options('deepshap', references=3, seed=0))
  x = attribution.dna.one_hot(reference['codes'])
  # shap gives each channel's share, m (x - r); summed per position they are the
  # contribution of the base present.
  np.testing.assert_allclose((hyp * x).sum(-1), reference['shap_values'].sum(-1),
                             rtol=0, atol=1e-4 * np.abs(reference['shap_values']).max())
  np.testing.assert_allclose(values, reference['readout'], rtol=1e-5)
  np.testing.assert_allclose(baselines, reference['reference_readout'], rtol=1e-5)


def test_saliency_equals_export_saliency(nets):
  model = model_source.load(params_file=PARAMS, checkpoint=H5, saliency=True)
  rows = _rows()
  items = [(r.name, '', -1, -1, r.codes) for r in rows]
  expected = saliency.compute_saliency(model, items, target_index=1)['saliency']
  hyp, _, _ = attribution.explain(
      nets['plain'], rows, _weights(readout_lib.Readout([1], (0, 32)), nets['plain'],
                                    rows), attribution.Options('saliency'))
  x = attribution.dna.one_hot(np.stack([r.codes for r in rows]))
  np.testing.assert_allclose(hyp * x, expected, rtol=1e-5, atol=1e-6)


def test_ism_equals_mutagenesis_mean_centred():
  model = model_source.load(params_file=PARAMS, checkpoint=H5, batch_size=16)
  rows = _rows()
  span = mutagenesis.mutated_span(model.seq_length, 3)
  done = mutagenesis.score(model, [mutagenesis.Region(r.codes) for r in rows], span,
                           ('sum',))
  explainer = attribution_models.PredictionExplainer(model, 'sum')
  readout = readout_lib.Readout([1], (0, model.bins))
  hyp, _, _ = explainer.explain(rows, _weights(readout, explainer, rows),
                                attribution.Options('ism', ism_length=3))
  for i, region_scores in enumerate(done):
    expected = region_scores.scores()['sum'][..., 1].astype(np.float32)
    np.testing.assert_allclose(hyp[i, span[0]:span[1]], expected, rtol=2e-3,
                               atol=2e-4)
  assert not hyp[:, :span[0]].any() and not hyp[:, span[1]:].any()


def test_dinucleotide_shuffle_keeps_pairs_and_ns():
  rng = np.random.RandomState(0)
  codes = rng.randint(0, 4, 300).astype(np.uint8)
  codes[100:110] = 4
  refs = attribution.shuffled_references(codes, 3, seed=0)

  def pairs(c):
    return sorted(zip(c[:-1].tolist(), c[1:].tolist()))
  for ref in refs:
    assert (ref[100:110] == 4).all()
    assert pairs(ref[:100]) == pairs(codes[:100])
    assert pairs(ref[110:]) == pairs(codes[110:])
    assert not np.array_equal(ref, codes)


def test_readouts_bins_genes_and_strands(tmp_path):
  assert readout_lib.parse_bins('center:4', 32) == (14, 18)
  assert readout_lib.parse_bins('3:9', 32) == (3, 9)
  with pytest.raises(UserError, match='outside the model.s 32 bins'):
    readout_lib.parse_bins('30:40', 32)
  readout = readout_lib.Readout([0, 2], (0, 4), strand_pair=[1, 0, 2])
  bins, targets = readout.weights(4, 3, strand='-', exon_bins=[1, 3])
  assert bins.tolist() == [0, 1, 0, 1] and targets.tolist() == [0, 1, 1]
  table = tmp_path / 'targets.txt'
  table.write_text('index\tidentifier\tfile\tclip\tscale\tsum_stat\tdescription\n'
                   '2\tt2\tx.bw\t32\t1\tsum\tt2\n')
  assert readout_lib.parse_targets(str(table), 3) == [2]


def _cli(args):
  return run_cli(['-m', 'export.attribution', '--params_file=' + PARAMS,
                  '--checkpoint=' + H5, '--fasta=' + GENOME] + args)


def test_cli_writes_what_tfmodisco_reads(tmp_path):
  out, bw = tmp_path / 'attr', tmp_path / 'bw'
  gtf = tmp_path / 'genes.gtf'
  gtf.write_text('chr1\tx\texon\t14001\t14200\t.\t-\t.\tgene_id "G1"; gene_name '
                 '"GENE1";\nchr1\tx\texon\t15601\t15900\t.\t-\t.\tgene_id "G1";\n')
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    bed_run = pool.submit(_cli, ['--method=deepshap', '--references=2', '--bed=' + BED,
                                 '--targets=0,1', '--bins=center:8',
                                 '--output_dir=%s' % out, '--bigwig_dir=%s' % bw])
    gene_run = pool.submit(_cli, ['--method=ig', '--steps=10', '--gtf=%s' % gtf,
                                  '--gene=GENE1', '--transform=log',
                                  '--output_dir=%s' % (tmp_path / 'gene')])
  for done in (bed_run.result(), gene_run.result()):
    assert done.returncode == 0, done.stderr[-3000:]
  assert 'largest' in bed_run.result().stderr
  arrays = {n: np.load(out / (n + '.npz'))['arr_0']
            for n in ('ohe', 'hypothetical', 'contributions')}
  assert {a.shape for a in arrays.values()} == {(2, 4, 4096)}
  np.testing.assert_allclose(arrays['contributions'],
                             arrays['hypothetical'] * arrays['ohe'], atol=1e-7)
  lines = (out / 'regions.tsv').read_text().splitlines()
  assert lines[1].split('\t')[:6] == ['0', 'chr1:14990-15010', 'chr1', '12952',
                                      '17048', '+']
  assert lines[2].split('\t')[5] == '-'
  with h5py.File(out / 'attributions.h5', 'r') as h5:
    np.testing.assert_array_equal(h5['hypothetical'][()], arrays['hypothetical'])
    assert h5.attrs['method'] == 'deepshap'
    assert h5['chrom'][()].tolist() == [b'chr1', b'chr2']
  track = pyBigWig.open(str(bw / 'contributions.bw'))
  values = np.nan_to_num(track.values('chr1', 12952, 17048, numpy=True))
  np.testing.assert_allclose(values, arrays['contributions'][0].sum(0), rtol=1e-5,
                             atol=1e-7)
  gene = (tmp_path / 'gene' / 'regions.tsv').read_text().splitlines()[1].split('\t')
  # Centred on the gene's span (14000-15900) and on its strand.
  assert gene[1:6] == ['GENE1', 'chr1', '12902', '16998', '-']


def test_bad_input_is_one_line_and_writes_nothing(tmp_path):
  gtf = tmp_path / 'genes.gtf'
  gtf.write_text('chr1\tx\texon\t14001\t14200\t.\t+\t.\tgene_id "G1";\n')
  bed = tmp_path / 'other.bed'
  bed.write_text('chr1\t100\t120\nchrQ\t100\t120\n')
  out = str(tmp_path / 'out')
  skerville = os.path.join(DATA, 'baskerville')
  cases = {
      '--gene=NOPE is not in --gtf=': ['--method=ig', '--gtf=%s' % gtf, '--gene=NOPE'],
      '--bins=30:40 is outside the model\'s 32 bins': ['--bed=' + BED,
                                                     '--bins=30:40'],
      'line 2 (chrQ:100-120): chromosome chrQ is not in the FASTA': [
          '--bed=%s' % bed],
      'cannot explain the model\'s block trunk/transformer_tower': [
          '--method=deepshap', '--bed=' + BED,
          '--params_file=%s_params.json' % skerville,
          '--checkpoint=%s_model.h5' % skerville],
      '--method=magic: pick one of': ['--method=magic', '--bed=' + BED],
  }
  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    runs = {k: pool.submit(_cli, v + ['--output_dir=' + out])
            for k, v in cases.items()}
  for expected, future in runs.items():
    done = future.result()
    assert done.returncode == 2, (expected, done.stderr[-2000:])
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and expected in last, (expected, last)
    assert 'Traceback' not in done.stderr
  assert not os.path.exists(out)
