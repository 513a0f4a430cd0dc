"""export.variants --format=baskerville against hound_snp.py's own outputs, where the
project differs on purpose, and bad input.

  .venv/bin/python -m pytest -q tests/test_variants_baskerville.py

The model is baskerville's .h5 (tests/data/baskerville_snp), loaded once per module
bare, with the ensemble of the reference (--rc --shifts 1,0,-1) around it.
"""

import os

import h5py
import numpy as np
import pytest

import baskerville_support as bs
from baskerville_support import genome, model, ref  # noqa: F401  (fixtures)
from conftest import run_cli
from estimator_pipeline.analysis import variant_alleles
from estimator_pipeline.analysis import variant_effects
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.analysis import variants
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index

# Rows the project builds differently on purpose: a complex deletion, an MNP.
OWN_ROWS = (16, 17)
_META = ('snp', 'chr', 'pos', 'ref_allele', 'alt_allele', 'target_ids',
         'target_labels')


def _run(model, genome, out, stats, vcf='variants.vcf', pct=0.0, **kwargs):
  scorer = bs.scorer(model, **kwargs)
  vcf = vcf if os.path.isabs(vcf) else bs.data(vcf)
  variant_scores.score(model, genome, vcf, str(out), stats, scorer, pct=pct)
  return h5py.File(os.path.join(out, 'scores.h5'), 'r')


def _assert_like(mine, ref, run, skip_rows=(), skip_stats=('logJS',)):
  """Layout exact, strings exact, statistics within tolerance, <stat>_pct the
  percentiles of my own column."""
  layout = bs.h5_layout(mine)
  assert layout == ref.layout[run]
  for name in _META:
    np.testing.assert_array_equal(mine[name][()], ref(run, name), err_msg=name)
  np.testing.assert_array_equal(mine['percentiles'][()], variant_stats.percentiles())
  keep = np.setdiff1d(np.arange(mine['snp'].shape[0]), skip_rows)
  for name, _, _ in layout:
    if name in _META or name == 'percentiles':
      continue
    if name.endswith('_pct'):
      column = mine[name[:-4]][()]
      expected = np.percentile(column, 100 * variant_stats.percentiles(), axis=0).T
      np.testing.assert_array_equal(mine[name][()], expected.astype(np.float16))
    elif name not in skip_stats and name not in ('REF', 'ALT'):
      bs.assert_within(mine[name][()][keep], ref(run, name)[keep], name, run)


@pytest.mark.parametrize('run,stitch', [('snp', False), ('snp_stitch', True)])
def test_equals_hound_snp(model, genome, ref, tmp_path, run, stitch):
  with _run(model, genome, tmp_path, bs.ALL_SNP, stitch=stitch) as mine:
    _assert_like(mine, ref, run, OWN_ROWS)
    # The rows built differently do differ: baskerville leaves the complex
    # deletion's ALT equal to the reference and blanks the MNP's first base only.
    assert (mine['D1'][()][16] != ref(run, 'D1')[16]).all()
    assert (mine['D1'][()][17] != ref(run, 'D1')[17]).all()


def test_other_hound_snp_runs(model, genome, ref, tmp_path):
  """Default statistics, JS with one shift, REF / ALT, the old untransform."""
  with _run(model, genome, tmp_path / 'd', ('logSUM',), shifts=(0,)) as mine:
    _assert_like(mine, ref, 'snp_default', OWN_ROWS)
  with _run(model, genome, tmp_path / 'js', ('logSUM', 'D2', 'JS', 'logJS'),
            shifts=(0,), stitch=True) as mine:
    _assert_like(mine, ref, 'snp_js', OWN_ROWS)
  with _run(model, genome, tmp_path / 'old', ('logSUM', 'D2'), old=True) as mine:
    _assert_like(mine, ref, 'snp_untransform_old', OWN_ROWS)
  with _run(model, genome, tmp_path / 'ra', ('logSUM', 'D2', 'REF', 'ALT'),
            targets='targets_nostrand.txt', stitch=True) as mine:
    _assert_like(mine, ref, 'snp_refalt', OWN_ROWS)
    rows = [0, 5, 6, 12]  # a SNP, a deletion, an insertion, a flipped deletion
    for name in ('REF', 'ALT'):
      bs.assert_within(mine[name][()][rows], ref('snp_refalt', name), name)


def test_stranded_refalt_and_unstitched_indels(model, genome, ref, tmp_path):
  """baskerville leaves REF / ALT at zero for a stranded table and for unstitched
  indels; here they are the strand sums of the predictions at the shifts."""
  vcf = _subset(tmp_path, [2, 5, 6])
  with _run(model, genome, tmp_path / 's', ('logSUM', 'REF', 'ALT'), vcf) as mine:
    bs.assert_within(mine['logSUM'][()], ref('fail_cases/refalt_stranded', 'logSUM'),
                     'logSUM')
    assert mine['REF'].shape == mine['ALT'].shape == (3, 3, 64, 6)
    scorer = bs.scorer(model)
    reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
    # Row 1: the deletion TCGG>T at chr1:9000; its ALT loses 3 bases after index 2047.
    codes = reader.codes('chr1', 9000 - 2048, 9000 + 2048)
    reader.close()
    alt = np.concatenate([codes[:2048], codes[2051:], [4, 4, 4]]).astype(np.uint8)
    for name, seq in (('REF', codes), ('ALT', alt)):
      expected = scorer.predict(np.stack([seq] * 3), bs.SHIFTS) @ scorer.strand_sum
      bs.assert_within(mine[name][()][1], expected.astype(np.float16), name)


def test_nonadjacent_pairs_sum_the_partner(model, genome, ref, tmp_path):
  """A table whose pairs are not on adjacent rows gives the adjacent table's
  numbers (baskerville adds the wrong rows together)."""
  vcf = _subset(tmp_path, [2, 5, 6])
  with _run(model, genome, tmp_path / 'a', ('logSUM', 'D2'), vcf) as adjacent, \
      _run(model, genome, tmp_path / 'n', ('logSUM', 'D2'), vcf,
           targets='targets_nonadjacent.txt') as apart:
    ids = list(adjacent['target_ids'][()])
    order = [ids.index(i) for i in apart['target_ids'][()]]
    for name in ('logSUM', 'D2'):
      np.testing.assert_array_equal(apart[name][()], adjacent[name][()][:, order])
      assert (apart[name][()] != ref('fail_cases/nonadjacent_pairs', name)).any()


def test_own_rows_and_logjs(model, genome, tmp_path):
  """The complex deletion and the MNP replace the whole REF by the whole ALT; logJS
  is JS on log2(x + 1), normalised over bins in each shift."""
  scorer = bs.scorer(model, shifts=(0, -1))
  reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
  for line, (pos, ref, alt) in ((16, (8000, 'TC', 'A')), (17, (10000, 'AC', 'CG'))):
    start = pos - 2048
    codes = reader.codes('chr2', start, start + 4096)
    assert dna.text(codes[2047:2047 + len(ref)]) == ref, line
    alt_codes = codes.copy()
    alt_codes[2047:2049] = dna.indices(alt + 'N' * (2 - len(alt)))
    if len(alt) == 1:  # the deletion: downstream bases move one to the left
      alt_codes = np.concatenate([codes[:2047], dna.indices(alt), codes[2049:],
                                  [dna.N_INDEX]]).astype(np.uint8)
    indel = len(alt) - len(ref)
    ref_shifts = [t for s in (0, -1) for t in ((s, s + indel) if indel else (s,))]
    r = scorer.predict(np.stack([codes] * len(ref_shifts)), ref_shifts)
    a = scorer.predict(np.stack([alt_codes] * 2), [0, -1])
    if indel:
      a = np.repeat(a, 2, axis=0)
    with _run(model, genome, tmp_path / str(line), ('D1', 'JS', 'logJS'),
              _subset(tmp_path, [line]), shifts=(0, -1)) as mine:
      expected = variant_effects.compute(r, a, ['D1'], scorer.strand_sum)['D1']
      np.testing.assert_array_equal(mine['D1'][()][0], expected)
      # JS with two shifts (baskerville's fails), logJS over bins in each shift.
      for name, (rr, aa) in (('JS', (r, a)),
                             ('logJS', (np.log2(r + 1), np.log2(a + 1)))):
        js = []
        for s in range(len(rr)):
          pc = np.percentile(rr[s], 25, axis=0)
          p = (rr[s] + pc) / (rr[s] + pc).sum(axis=0)
          q = (aa[s] + pc) / (aa[s] + pc).sum(axis=0)
          js.append(((p * np.log(p / q)).sum(0) + (q * np.log(q / p)).sum(0)) / 2)
        expected = np.mean(js, axis=0) @ scorer.strand_sum
        np.testing.assert_allclose(mine[name][()][0], expected, rtol=2e-3,
                                   atol=1e-7)
        assert (mine[name][()][0] > 0).all()
  reader.close()


def test_cluster_shares_a_window(model, genome, tmp_path):
  """--cluster_pct: two SNPs 40 bp apart share the window centred between them and
  its reference prediction; the scores are those of that window."""
  reader = fasta_index.open_genome(genome, str(tmp_path)).reader()
  start = 4120 - 2048
  codes = reader.codes('chr1', start, start + 4096)
  reader.close()
  bases = [dna.text(codes[pos - 1 - start:pos - start]) for pos in (4100, 4140)]
  vcf = _vcf(tmp_path / 'c.vcf', [('chr1', 4100, 'a', bases[0], 'A' if bases[0] != 'A'
                                   else 'C'),
                                  ('chr1', 4140, 'b', bases[1], 'G' if bases[1] != 'G'
                                   else 'T')])
  scorer = bs.scorer(model, shifts=(0,))
  with _run(model, genome, tmp_path / 'out', ('logSUM', 'SAX'), vcf, pct=0.1,
            shifts=(0,)) as mine:
    assert mine['snp'].shape == (2,)
    r = scorer.predict(codes[None], [0])
    for row, pos in enumerate((4100, 4140)):
      alt = variant_alleles.alt_codes(codes, pos - 1 - start, bases[row],
                                      mine['alt_allele'][row].decode())
      a = scorer.predict(alt[None], [0])
      expected = variant_effects.compute(r, a, ['logSUM', 'SAX'], scorer.strand_sum)
      for name in ('logSUM', 'SAX'):
        np.testing.assert_array_equal(mine[name][()][row], expected[name])


def test_same_bytes_whatever_the_batch_size(model, genome, tmp_path):
  outputs = []
  try:
    for batch_size in (2, 7):
      model.batch_size = batch_size
      _run(model, genome, tmp_path / str(batch_size), ('logSUM', 'SAX', 'D2'),
           _subset(tmp_path, [0, 5, 6, 9, 12])).close()
      with open(tmp_path / str(batch_size) / 'scores.h5', 'rb') as f:
        outputs.append(f.read())
  finally:
    model.batch_size = 8
  assert outputs[0] == outputs[1]


def test_sax_tie_takes_the_first_bin():
  """|alt - ref| ties between bins of opposite sign: the first bin wins, as numpy's
  argmax, in both formats."""
  ref = np.ones((1, 4, 2))
  alt = ref.copy()
  alt[0, 1] = [1.5, 0.5]
  alt[0, 3] = [0.5, 1.5]
  np.testing.assert_array_equal(variant_effects.compute(ref, alt, ['SAX'])['SAX'],
                                np.float16([0.5, -0.5]))
  np.testing.assert_array_equal(
      variant_stats.compute(ref[0].astype(np.float32), alt[0].astype(np.float32),
                            ['SAX'])['SAX'], np.float16([0.5, -0.5]))


def test_bad_input(model, genome, tmp_path):
  out = tmp_path / 'out'
  for lines, expected in (
      ([('chr1', 5000, 'sv', 'A', '<DEL>')], 'symbolic alleles'),
      ([('chr1', 5000, 'big', 'A' * 2100, 'A')], 'longer than half')):
    with pytest.raises(UserError, match=expected):
      _run(model, genome, out, ('logSUM',), _vcf(tmp_path / 'bad.vcf', lines))
    assert not out.exists()
  with pytest.raises(UserError, match="SAD is basenji's name"):
    variant_effects.parse_stats('SAD,D2')


def test_command_line(genome, tmp_path):
  out = tmp_path / 'out'
  args = ['-m', 'export.variants', '--format=baskerville', '--params_file=' + bs.PARAMS,
          '--checkpoint=' + bs.H5, '--targets_file=' + bs.data('targets.txt'),
          '--fasta=' + genome, '--ensemble_rc', '--ensemble_shifts=1,0,-1',
          '--indel_stitch', '--output_dir=' + str(out)]
  proc = run_cli(args + ['--vcf=' + _subset(tmp_path, [0, 5])])
  assert proc.returncode == 0, proc.stderr[-2000:]
  with h5py.File(out / 'scores.h5') as f:
    assert sorted(f) == ['alt_allele', 'chr', 'logSUM', 'logSUM_pct', 'percentiles',
                         'pos', 'ref_allele', 'snp', 'target_ids', 'target_labels']
  bad = run_cli(args[:-1] + ['--vcf=' + bs.data('variants.vcf'), '--stats=logSAD',
                             '--output_dir=' + str(tmp_path / 'bad')])
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith('error: --stats=logSAD')
  assert not (tmp_path / 'bad').exists()


def _vcf(path, lines):
  header = '##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n'
  path.write_text(header + ''.join('\t'.join(map(str, l)) + '\t.\tPASS\t.\n'
                                   for l in lines))
  return str(path)


def _subset(tmp_path, rows):
  """variants.vcf with only these data rows (0-based)."""
  with open(bs.data('variants.vcf')) as f:
    data = [l for l in f if not l.startswith('#')]
  path = tmp_path / ('rows_%s.vcf' % '_'.join(map(str, rows)))
  path.write_text('#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n' +
                  ''.join(data[r] for r in rows))
  return str(path)


def test_basenji_format_sums_strand_pairs(model, genome, tmp_path):
  """--format=basenji with a stranded table: reverse-complemented copies swap
  strands (the ensemble of a sequence's reverse complement is its own, reversed and
  swapped), and the pairs are summed into the collapsed targets."""
  model.ensemble_rc = True
  try:
    summary = variants.score(model, genome, _subset(tmp_path, [2, 5]),
                             str(tmp_path / 'out'), ('SAD',), bs.data('targets.txt'))
    assert summary.rows == 2
    with h5py.File(tmp_path / 'out' / 'sad.h5') as f:
      assert [t.decode() for t in f['target_ids'][()]] == [
          'RNA_A+', 'CAGE_A+', 'DNASE_A', 'RNA_B+', 'ATAC_A', 'RNA_C+']
      assert f['SAD'].shape == (2, 6)
    x = dna.one_hot(np.random.RandomState(0).randint(0, 4, (1, 4096)))
    forward, reverse = model.predict(x), model.predict(x[:, ::-1, ::-1])
    np.testing.assert_array_equal(
        forward, reverse[:, ::-1][..., list(model.strand_pair)])
  finally:
    model.ensemble_rc, model.strand_pair = False, None
