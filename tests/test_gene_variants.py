"""export.gene_variants against hound_snpgene.py's own outputs, --span, sed.tsv, where
the project differs on purpose, and bad input.

  .venv/bin/python -m pytest -q tests/test_gene_variants.py

The model is baskerville's .h5 (tests/data/baskerville_snp), loaded once per module,
with the reference's ensemble (--rc --shifts 1,0,-1).
"""

import csv
import gzip
import os
import shutil

import h5py
import numpy as np
import pytest

import baskerville_support as bs
from baskerville_support import genome, model, ref  # noqa: F401  (fixtures)
from conftest import run_cli
from estimator_pipeline.analysis import gtf
from estimator_pipeline.analysis import variant_effects
from estimator_pipeline.analysis import variant_genes
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index

STATS = bs.ALL_SNP + ('REF', 'ALT')
# Stitched at its window's first bin (it lies in the cropped flank), where
# baskerville's negative bin index stitches 4 bins from the end.
FLANK_PAIR = 'rsCG011/GENE_P2'


def _run(model, genome, out, stats=STATS, vcf='genes_variants.vcf', gtf_path='',
         span=False, **kwargs):
  scorer = bs.scorer(model, **kwargs)
  vcf = vcf if os.path.isabs(vcf) else bs.data(vcf)
  variant_genes.score(model, genome, gtf_path or bs.data('genes.gtf'), vcf, str(out),
                      stats, scorer, span=span)
  return h5py.File(os.path.join(out, 'scores.h5'), 'r')


@pytest.mark.parametrize('run,stitch', [('snpgene', False), ('snpgene_stitch', True)])
def test_equals_hound_snpgene(model, genome, ref, tmp_path, run, stitch):
  with _run(model, genome, tmp_path, stitch=stitch) as mine:
    assert bs.h5_layout(mine) == ref.layout[run]
    for name in ('snp', 'chr', 'pos', 'ref_allele', 'alt_allele', 'target_ids',
                 'target_labels', 'gene'):
      np.testing.assert_array_equal(mine[name][()], ref(run, name), err_msg=name)
    pairs = [p.decode() for p in ref(run, 'pairs')]
    keep = [p != FLANK_PAIR or not stitch for p in pairs]
    for stat in bs.ALL_SNP:
      values = np.stack([mine['%s/%s' % (stat, p)][()] for p in pairs])
      if stat != 'logJS':
        bs.assert_within(values[keep], ref(run, stat)[keep], stat, run)
    for name in ref.arrays:
      if name.startswith(run + '|REF/') or name.startswith(run + '|ALT/'):
        key = name.split('|')[1]
        bs.assert_within(mine[key][()], ref.arrays[name], key, run)
    if stitch:
      assert (mine['D1/' + FLANK_PAIR][()] !=
              ref(run, 'D1')[pairs.index(FLANK_PAIR)]).all()


def test_span_and_table(model, genome, ref, tmp_path):
  """--span scores every bin of the gene's span (baskerville ignores the flag), and
  sed.tsv holds the statistics of every (variant, gene) pair."""
  with _run(model, genome, tmp_path / 'exons', ('logSUM', 'SUM', 'REF', 'ALT')) as exons, \
      _run(model, genome, tmp_path / 'span', ('logSUM', 'SUM', 'REF', 'ALT'),
           span=True) as span:
    genes = {g.gene_id: g for g in variant_genes.unique_genes(
        gtf.read_genes(bs.data('genes.gtf')))}
    # GENE_P2: window [11147, 15243), bins from 12171; span 11000-15100.
    assert span['REF/rsCG012/GENE_P2'].shape == (3, 64, 6)
    assert exons['REF/rsCG012/GENE_P2'].shape == (3, 11, 6)
    bins = variant_genes.gene_bins(genes['GENE_P2'], 11147 + 1024, 64, 32)
    np.testing.assert_array_equal(span['REF/rsCG012/GENE_P2'][()][:, bins],
                                  exons['REF/rsCG012/GENE_P2'][()])
    for key in ('rsCG012/GENE_P2', 'rsCG009/GENE_M2'):
      r, a = (span['%s/%s' % (n, key)][()].astype(np.float64) for n in ('REF', 'ALT'))
      expected = a.sum(axis=(0, 1)) / 3 - r.sum(axis=(0, 1)) / 3
      np.testing.assert_allclose(span['SUM/' + key][()], expected, atol=0.02,
                                 rtol=2e-3)
    with open(tmp_path / 'span' / 'sed.tsv') as f:
      rows = list(csv.DictReader(f, delimiter='\t'))
    # GENE_FAR's exons are outside its window's bins, its span is not.
    assert len(rows) == 16 and 'logSUM/rsCG008/GENE_FAR' in span
    assert 'logSUM/rsCG008' not in exons
    first = rows[0]
    assert (first['snp'], first['gene'], first['strand']) == ('rsCG001', 'GENE_P1', '+')
    ids = [t.decode() for t in span['target_ids'][()]]
    np.testing.assert_array_equal(
        np.float16([first['logSUM:%s' % t] for t in ids]),
        span['logSUM/rsCG001/GENE_P1'][()])


def test_unsorted_gzipped_and_flipped(model, genome, tmp_path):
  """An unsorted VCF and a gzipped GTF give the same scores (baskerville stops on
  both), and a variant whose genome holds its ALT is scored flipped."""
  with open(bs.data('genes_variants.vcf')) as f:
    lines = f.readlines()
  header = [l for l in lines if l.startswith('#')]
  body = [l for l in lines if not l.startswith('#')]
  (tmp_path / 'u.vcf').write_text(''.join(header + body[::-1]))
  with open(bs.data('genes.gtf'), 'rb') as f, gzip.open(tmp_path / 'g.gtf.gz', 'wb') as g:
    shutil.copyfileobj(f, g)
  with _run(model, genome, tmp_path / 'a', ('logSUM',), vcf=str(tmp_path / 'u.vcf'),
            gtf_path=str(tmp_path / 'g.gtf.gz'), shifts=(0,)) as unsorted, \
      _run(model, genome, tmp_path / 'b', ('logSUM',), shifts=(0,)) as plain:
    for key in ('rsCG001/GENE_P1', 'rsCG005/GENE_M1', 'rsCG012/GENE_P2'):
      np.testing.assert_array_equal(unsorted['logSUM/' + key][()],
                                    plain['logSUM/' + key][()])
    np.testing.assert_array_equal(unsorted['snp'][()], plain['snp'][()][::-1])
  # chr1:6000 G>T: written T>G, the genome holds T's ALT G: scored as T -> G.
  flipped = tmp_path / 'f.vcf'
  flipped.write_text(''.join(header) + 'chr1\t6000\tflip\tT\tG\t.\tPASS\t.\n')
  with _run(model, genome, tmp_path / 'f', ('logSUM',), vcf=str(flipped),
            shifts=(0,)) as f, h5py.File(tmp_path / 'b' / 'scores.h5') as plain:
    np.testing.assert_array_equal(f['logSUM/flip/GENE_P1'][()],
                                  -plain['logSUM/rsCG003/GENE_P1'][()])


def test_bad_input(model, genome, tmp_path):
  out = tmp_path / 'out'
  (tmp_path / 'not.gtf').write_text('>chr1\nACGTACGT\n')
  (tmp_path / 'other.gtf').write_text(
      'chrX\tsrc\texon\t1\t100\t.\t+\t.\tgene_id "G1";\n')
  far = tmp_path / 'far.vcf'
  far.write_text('#CHROM\tPOS\tID\tREF\tALT\n'
                 + 'chr1\t23000\tv\tT\tA\n')  # only in GENE_FAR, which has no exon bins
  for kwargs, expected in (
      (dict(gtf_path=str(tmp_path / 'not.gtf')), 'a GTF line has 9'),
      (dict(gtf_path=str(tmp_path / 'other.gtf')), 'names none of the FASTA'),
      (dict(vcf=str(far)), 'nothing to score'),
  ):
    with pytest.raises(UserError, match=expected):
      _run(model, genome, out, ('logSUM',), shifts=(0,), **kwargs)
    assert not out.exists()
  with pytest.raises(UserError, match="SAD is basenji's name"):
    variant_effects.parse_stats('SAD')


def test_command_line(genome, tmp_path):
  out = tmp_path / 'out'
  args = ['-m', 'export.gene_variants', '--params_file=' + bs.PARAMS,
          '--checkpoint=' + bs.H5, '--targets_file=' + bs.data('targets.txt'),
          '--fasta=' + genome, '--vcf=' + bs.data('genes_variants.vcf'),
          '--ensemble_rc', '--output_dir=' + str(out)]
  proc = run_cli(args + ['--gtf=' + bs.data('genes.gtf')])
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'GENE_FAR' in proc.stderr + proc.stdout
  with h5py.File(out / 'scores.h5') as f:
    # Every variant but rsCG008 (only in GENE_FAR) and rsCG013 (in no window).
    assert len(f['logSUM']) == 11
  (tmp_path / 'not.gtf').write_bytes(b'\x00\x01binary')
  bad = run_cli(args[:-1] + ['--gtf=' + str(tmp_path / 'not.gtf'),
                             '--output_dir=' + str(tmp_path / 'bad')])
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith('error: --gtf=')
  assert not (tmp_path / 'bad').exists()


def test_nonadjacent_pairs_keep_their_columns(model, genome, tmp_path):
  """Column k of a - gene is the other strand of collapsed target k, wherever the
  table lists the pair's rows: the non-adjacent table gives the same numbers."""
  with _run(model, genome, tmp_path / 'a', ('logSUM',), shifts=(0,)) as adjacent, \
      _run(model, genome, tmp_path / 'n', ('logSUM',), shifts=(0,),
           targets='targets_nonadjacent.txt') as apart:
    ids = list(adjacent['target_ids'][()])
    order = [ids.index(i) for i in apart['target_ids'][()]]
    assert order != list(range(len(ids)))
    for key in ('rsCG001/GENE_P1', 'rsCG005/GENE_M1', 'rsCG009/GENE_M2'):
      np.testing.assert_array_equal(apart['logSUM/' + key][()],
                                    adjacent['logSUM/' + key][()][order])


def test_table_without_strand_pairs(model, genome, tmp_path):
  """Without strand_pair every gene gets every target (baskerville crashes)."""
  with _run(model, genome, tmp_path, ('logSUM',), shifts=(0,),
            targets='targets_nostrand.txt') as f:
    assert f['target_ids'].shape == (10,)
    assert f['logSUM/rsCG005/GENE_M1'].shape == (10,)
    assert f['logSUM/rsCG001/GENE_P1'].shape == (10,)


def test_genes_share_a_window(model, genome, tmp_path):
  """--cluster_pct: GENE_P1 and GENE_M1B (midpoints 5799 and 6094) share the window
  centred on 5946, predicted once; their REF are that window's bins."""
  scorer = bs.scorer(model, shifts=(0,))
  variant_genes.score(model, genome, bs.data('genes.gtf'),
                      bs.data('genes_variants.vcf'), str(tmp_path), ('logSUM', 'REF'),
                      scorer, pct=0.2)
  genes = {g.gene_id: g for g in variant_genes.unique_genes(
      gtf.read_genes(bs.data('genes.gtf')))}
  start = (5799 + 6094) // 2 - 2048
  reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
  ref = scorer.predict(reader.codes('chr1', start, start + 4096)[None], [0])
  reader.close()
  columns = variant_genes.strand_columns(scorer.table)
  with h5py.File(tmp_path / 'scores.h5') as f:
    for gene in ('GENE_P1', 'GENE_M1B'):
      bins = variant_genes.gene_bins(genes[gene], start + 1024, 64, 32)
      expected = ref[:, bins][..., columns[genes[gene].strand]].astype(np.float16)
      np.testing.assert_array_equal(f['REF/rsCG001/' + gene][()], expected)
