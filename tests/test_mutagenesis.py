"""Saturation mutagenesis (python -m export.mutagenesis) against basenji_sat_bed.py's
own scores.h5 on the reference model and genome; --vcf, --plot and bad input.

  .venv/bin/python -m pytest -q tests/test_mutagenesis.py
"""

import os

import h5py
import numpy as np
import pytest

from conftest import REPO
from conftest import run_cli
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import mutagenesis_output
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

DATA = os.path.join(REPO, 'tests', 'data', 'basenji')
REFERENCE = os.path.join(DATA, 'reference')
GENOME = os.path.join(REFERENCE, 'genome.fa')
# The reference README's tolerances: 2 float16 ulps of |ref| plus these.
ABSOLUTE = {'sum': 5e-5, 'center': 1e-5, 'scd': 1e-5}


@pytest.fixture(scope='module')
def model():
  """The reference basenji model with basenji_sat_bed.py's --rc --shifts 1,0,-1."""
  return model_source.load(
      params_file=os.path.join(DATA, 'basenji_params.json'),
      checkpoint=os.path.join(DATA, 'basenji_model.h5'), ensemble_rc=True,
      ensemble_shifts=(1, 0, -1), batch_size=16)


def _png_size(path):
  with open(path, 'rb') as f:
    head = f.read(24)
  assert head[:8] == b'\x89PNG\r\n\x1a\n', path
  return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


def test_bed_scores_equal_basenji_sat_bed(model, tmp_path):
  out = str(tmp_path / 'sat')
  done = mutagenesis_output.run(
      model, GENOME, out, bed=os.path.join(REFERENCE, 'regions.bed'),
      mutate_length=20, stats=('sum', 'center', 'scd'), plot=True)
  assert [d.region.name for d in done] == ['chr1:14990-15010(+)',
                                           'chr2:1000-1020(-)']
  with h5py.File(os.path.join(REFERENCE, 'sat', 'scores.h5'), 'r') as ref, \
      h5py.File(os.path.join(out, 'scores.h5'), 'r') as mine:
    assert sorted(mine) == sorted(ref)
    for name in ref:
      want, got = ref[name][()], mine[name][()]
      assert (got.dtype, got.shape) == (want.dtype, want.shape), name
      if name in ABSOLUTE:
        ulps = np.spacing(np.abs(want)).astype(np.float32)
        diff = np.abs(got.astype(np.float32) - want.astype(np.float32))
        assert np.all(diff <= 2 * ulps + ABSOLUTE[name]), (name, diff.max())
      else:
        np.testing.assert_array_equal(got, want, err_msg=name)
  pngs = sorted(p for p in os.listdir(out) if p.endswith('.png'))
  assert pngs == ['region000_chr1_14990_15010.png', 'region001_chr2_1000_1020.png']
  width, height = _png_size(os.path.join(out, pngs[0]))
  assert width > 400 and height > 250


def test_vcf_mutates_each_allele_window(model, tmp_path):
  vcf = tmp_path / 'variants.vcf'
  vcf.write_text('##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n'
                 '1\t15000\trsX\t%s\tA,T\n'
                 'chr9\t100\trsMissing\tA\tC\n'
                 'chr2\t5000\t.\t%s\tG\n' % (_base('chr1', 15000), _base('chr2', 5000)))
  out = str(tmp_path / 'out')
  done = mutagenesis_output.run(model, GENOME, out, vcf=str(vcf), mutate_length=2,
                                stats=('scd', 'js'))
  assert len(done) == 5
  with h5py.File(os.path.join(out, 'scores.h5'), 'r') as h5:
    assert sorted(h5) == ['js', 'label', 'scd', 'seqs']
    ref, alt = _base('chr1', 15000), _base('chr2', 5000)
    assert [s.decode() for s in h5['label'][()]] == [
        'rsX_' + ref, 'rsX_A', 'rsX_T', 'chr2:5000_' + alt, 'chr2:5000_G']
    assert h5['scd'].shape == (5, 2, 4, 3) and h5['scd'].dtype == np.float16
    # The variant sits at L/2 - 1, the first of the two mutated positions.
    assert h5['seqs'][1, 0].tolist() == [True, False, False, False]
    # The base that is there scores the unmutated window: no distance from itself.
    seqs, scd = h5['seqs'][()], h5['scd'][()]
    assert np.all(scd[seqs] == 0) and np.all(scd[~seqs] > 0)


def _base(chrom, pos):
  with open(GENOME) as f:
    text = f.read()
  sequence = ''.join(text.split('>%s\n' % chrom)[1].split('>')[0].split())
  return sequence[pos - 1].upper()


def test_mutant_order_is_basenji_s():
  codes = np.array([0, 4, 2, 3], np.uint8)
  assert mutagenesis.mutants(codes, (1, 3)) == [
      None, (1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (2, 3)]
  assert dna.reverse_complement_codes(codes).tolist() == [0, 1, 4, 3]


def test_bad_input_names_the_file_and_writes_nothing(model, tmp_path):
  out = str(tmp_path / 'out')
  short_bed = tmp_path / 'short.bed'
  short_bed.write_text('chr1\t100\t120\nchr1\t200\n')
  other_bed = tmp_path / 'other.bed'
  other_bed.write_text('chrX\t100\t120\n')
  # mutate_length=1: the first region's 4 sequences are predicted before line 2.
  cases = [(dict(bed=str(short_bed), mutate_length=1),
            'short.bed line 2: expected chrom, start, end'),
           (dict(bed=str(other_bed)), 'chromosome chrX is not in the FASTA'),
           (dict(bed=str(other_bed), mutate_length=5000), 'between 1 and'),
           (dict(), 'neither is set')]
  for kwargs, message in cases:
    with pytest.raises(UserError, match=message):
      mutagenesis_output.run(model, GENOME, out, **kwargs)
    assert not os.path.exists(out)
  with pytest.raises(UserError, match='known statistics are sum, center, scd, js'):
    variant_stats.parse_stats('sum,SAD', mutagenesis.STATS)
  cli = run_cli(['-m', 'export.mutagenesis', '--fasta=' + GENOME,
                 '--bed=' + str(short_bed), '--stats=sum,bogus', '--output_dir=' + out,
                 '--saved_model=' + str(tmp_path)])
  assert cli.returncode == 2
  assert cli.stderr.strip().splitlines()[-1].startswith(
      'error: --stats=sum,bogus: unknown statistic bogus')
  assert 'Traceback' not in cli.stderr and not os.path.exists(out)
