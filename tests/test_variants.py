"""Variant effects against basenji_sad.py's own outputs, its fail cases, and bad input.

  .venv/bin/python -m pytest -q tests/test_variants.py

The model is basenji's .h5 (tests/data/basenji), loaded once per module through the
shared loader with basenji_sad.py's ensemble (--rc --shifts 1,0,-1); the reference
outputs and tolerances are in tests/data/basenji/reference/README.md.
"""

import os
import re
import shutil

import h5py
import numpy as np
import pysam
import pytest

from conftest import REPO
from conftest import run_cli
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.analysis import variants
from estimator_pipeline.core.errors import UserError

DATA = os.path.join(REPO, 'tests', 'data', 'basenji')
REF = os.path.join(DATA, 'reference')
PARAMS = os.path.join(DATA, 'basenji_params.json')
H5 = os.path.join(DATA, 'basenji_model.h5')
ALL = variant_stats.STATS
# Absolute float32-rounding terms of the reference README, beside 2e-3 x |ref|.
ABSOLUTE = dict(SAD=1e-4, logSAD=1e-4, sqrtSAD=1e-4, D1=1e-4, logD1=1e-4,
                sqrtD1=1e-4, SAX=2e-5, D2=2e-5, logD2=2e-5, sqrtD2=2e-5, JS=1e-7,
                logJS=1e-7, REF=1e-5, ALT=1e-5)


@pytest.fixture(scope='module')
def model():
  return model_source.load(params_file=PARAMS, checkpoint=H5, ensemble_rc=True,
                           ensemble_shifts=(1, 0, -1), batch_size=8)


@pytest.fixture(scope='module')
def genome(tmp_path_factory):
  """The reference genome in a writable folder (pysam may write its index)."""
  folder = tmp_path_factory.mktemp('genome')
  for name in ('genome.fa', 'genome.fa.fai'):
    shutil.copy(os.path.join(REF, name), folder / name)
  return str(folder / 'genome.fa')


def _vcf(path, lines):
  header = '##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n'
  path.write_text(header + ''.join('\t'.join(map(str, l)) + '\t.\tPASS\t.\n'
                                   for l in lines))
  return str(path)


def _assert_like_reference(mine_path, ref_path):
  with h5py.File(mine_path) as mine, h5py.File(ref_path) as ref:
    assert sorted(mine) == sorted(ref)
    for key in ref:
      a, b = mine[key][()], ref[key][()]
      assert (a.dtype, a.shape) == (b.dtype, b.shape), key
      if b.dtype.kind != 'f':
        np.testing.assert_array_equal(a, b, err_msg=key)
        continue
      a, b = a.astype(np.float64), b.astype(np.float64)
      bound = 2e-3 * np.abs(b) + ABSOLUTE.get(key.replace('_pct', ''), 0)
      assert (np.abs(a - b) <= bound).all(), (key, np.abs(a - b).max())


@pytest.mark.parametrize('targets', ['', 'targets_subset.txt'])
def test_equals_basenji_sad(model, genome, tmp_path, targets):
  out = tmp_path / 'out'
  summary = variants.score(model, genome, os.path.join(REF, 'variants.vcf'), str(out),
                           ALL, targets and os.path.join(REF, targets))
  assert (summary.rows, summary.skipped, summary.multi_allelic) == (23, [], 1)
  _assert_like_reference(out / 'sad.h5', os.path.join(
      REF, 'sad_targets' if targets else 'sad', 'sad.h5'))
  with h5py.File(out / 'sad.h5') as f:
    # basenji #113: the duplicated line is two identical rows, no NaN anywhere.
    np.testing.assert_array_equal(f['SAD'][4], f['SAD'][5])
    assert all(np.isfinite(f[s][()]).all() for s in ALL)
  lines = (out / 'sad.tsv').read_text().splitlines()
  assert len(lines) == 1 + 23 * 12
  assert lines[0].split('\t')[:8] == ['row', 'snp', 'chr', 'pos', 'ref_allele',
                                      'alt_allele', 'stat', 'T0002' if targets else 't0']
  assert lines[1].split('\t')[:7] == ['0', 'rsA001', 'chr1', '1', 'A', 'C', 'SAD']
  if not targets:
    # Run to run the same bytes (basenji #113), whatever the batch size.
    model.batch_size = 4
    try:
      variants.score(model, genome, os.path.join(REF, 'variants.vcf'),
                     str(tmp_path / 'again'), ALL)
    finally:
      model.batch_size = 8
    for name in ('sad.h5', 'sad.tsv'):
      assert (out / name).read_bytes() == (tmp_path / 'again' / name).read_bytes()


def test_basenji_fail_cases_are_scored_or_skipped(model, genome, tmp_path, capfd):
  lines = []
  for name in ('fail_ref_mismatch.vcf', 'fail_window_start0.vcf'):
    with open(os.path.join(REF, 'fail_cases', name)) as f:
      lines += [l.rstrip('\n').split('\t') for l in f if not l.startswith('#')]
  lines += [('chrX', 500, 'rsNOCHROM', 'A', 'C', '.', 'PASS', '.'),
            ('chr1', 9100, 'rsA007', 'A', 'C,G', '.', 'PASS', '.')]
  plain = tmp_path / 'v.vcf'
  plain.write_text(''.join('\t'.join(map(str, l)) + '\n' for l in lines))
  bgzipped = str(tmp_path / 'v.vcf.gz')
  pysam.tabix_compress(str(plain), bgzipped)
  summary = variants.score(model, genome, bgzipped, str(tmp_path / 'out'),
                           ('SAD', 'REF'), all_alts=True)
  # The window starting exactly at the chromosome start gets its one N and a score;
  # REF matching neither allele and the missing chromosome are skipped and named.
  assert summary.rows == 3
  assert [line for line, _ in summary.skipped] == [1, 3]
  assert 'matches neither REF T nor ALT C' in summary.skipped[0][1]
  assert 'chrX is not in the FASTA' in summary.skipped[1][1]
  err = capfd.readouterr().err
  assert 'skipped rsABADREF (line 1)' in err and '2 variant(s) skipped' in err
  with h5py.File(tmp_path / 'out' / 'sad.h5') as f:
    assert list(f['snp'][()]) == [b'rsASTART0', b'rsA007', b'rsA007']
    assert list(f['alt_allele'][()]) == [b'G', b'C', b'G']
    assert np.isfinite(f['SAD'][()]).all()
    with h5py.File(os.path.join(REF, 'sad', 'sad.h5')) as ref:
      # --all_alts: the first ALT's row is basenji's row of that line.
      np.testing.assert_allclose(f['SAD'][1].astype(float), ref['SAD'][7].astype(float),
                                 rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize('case', ['not_vcf', 'no_chromosomes', 'targets', 'empty',
                                  'strand_pair'])
def test_bad_input_is_one_error_and_writes_nothing(model, genome, tmp_path, case):
  vcf, targets = os.path.join(REF, 'variants.vcf'), ''
  expected = {'not_vcf': 'line 1: 1 tab-separated field(s)',
              'no_chromosomes': 'holds none of the chromosomes',
              'targets': "no 'clip_soft' column",
              'empty': 'holds no variant',
              'strand_pair': 'strand_pair is not mutual'}[case]
  if case == 'not_vcf':
    vcf = os.path.join(REF, 'genome.fa')
  elif case == 'no_chromosomes':
    vcf = _vcf(tmp_path / 'v.vcf', [('chrZ', 100, 'rs1', 'A', 'C')])
  elif case == 'empty':
    vcf = _vcf(tmp_path / 'v.vcf', [])
  elif case == 'targets':
    targets = tmp_path / 'targets.txt'
    targets.write_text('\tidentifier\tfile\tclip\tsum_stat\tdescription\n'
                       '0\tT0\tt.bw\t768\tsum\tt0\n')
  else:
    targets = tmp_path / 'targets.txt'
    targets.write_text('\tidentifier\tclip_soft\tsum_stat\tstrand_pair\n'
                       '0\tT0+\t1e6\tsum\t1\n1\tT0-\t1e6\tsum\t1\n')
  with pytest.raises(UserError, match=re.escape(expected)) as e:
    variants.score(model, genome, vcf, str(tmp_path / 'out'), ('SAD',), str(targets))
  assert '\n' not in str(e.value)
  assert not (tmp_path / 'out').exists()


def test_cli_scores_and_refuses_bad_flags(genome, tmp_path):
  vcf = _vcf(tmp_path / 'v.vcf', [('chr1', 6200, 'rsA006', 'C', 'G'),
                                  ('chr1', 20000, 'rsA011', 'C', 'G')])
  out = tmp_path / 'out'
  proc = run_cli(['-m', 'export.variants', '--params_file=' + PARAMS,
                  '--checkpoint=' + H5, '--ensemble_rc', '--ensemble_shifts=1,0,-1',
                  '--fasta=' + genome, '--vcf=' + vcf, '--stats=SAD,JS',
                  '--output_dir=' + str(out)])
  assert proc.returncode == 0, proc.stderr[-3000:]
  with h5py.File(out / 'sad.h5') as f, h5py.File(os.path.join(REF, 'sad',
                                                              'sad.h5')) as ref:
    np.testing.assert_allclose(f['SAD'][()].astype(float),
                               ref['SAD'][[6, 11]].astype(float), rtol=2e-3, atol=1e-4)
  proc = run_cli(['-m', 'export.variants', '--params_file=' + PARAMS,
                  '--checkpoint=' + H5, '--fasta=' + genome, '--vcf=' + vcf,
                  '--stats=SAD,CAGE', '--output_dir=' + str(tmp_path / 'bad')])
  assert proc.returncode == 2
  assert [l for l in proc.stderr.splitlines() if 'error' in l.lower()] == [
      'error: --stats=SAD,CAGE: unknown statistic CAGE; the known statistics are '
      + ', '.join(ALL) + '.']
  assert not (tmp_path / 'bad').exists()


@pytest.mark.parametrize('kwargs, expected', [
    (dict(saved_model='a', params_file='b'), 'are both set: pass the model one way'),
    (dict(), 'no model given'),
    (dict(params_file=PARAMS), 'needs --checkpoint'),
    (dict(saved_model='a', head='head_mouse'), '--head is read with --params_file'),
    (dict(saved_model=REF), 'holds no saved_model.pb'),
    (dict(params_file=PARAMS, checkpoint=H5, batch_size=0), 'must be positive'),
])
def test_loader_names_what_is_wrong(kwargs, expected):
  with pytest.raises(UserError, match=re.escape(expected)):
    model_source.load(**kwargs)
