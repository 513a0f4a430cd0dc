"""What the analysis commands read before any model runs: the one BED -> window rule,
the one --stats parser and the one check of how a model is named.

  .venv/bin/python -m pytest -q tests/test_analysis_inputs.py
"""

import numpy as np
import pytest

from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import regions
from estimator_pipeline.analysis import saliency
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.analysis import windows
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index

CHROM = 'ACGTTGCAAC' * 10  # chrA, 100 bp


@pytest.fixture
def genome(tmp_path):
  fasta = tmp_path / 'genome.fa'
  fasta.write_text('>chrA\n%s\n%s\n>chrB\nACGT\n' % (CHROM[:60], CHROM[60:]))
  return fasta_index.open_genome(str(fasta), str(tmp_path))


def test_windows_are_centred_and_n_past_either_chromosome_end(genome, tmp_path):
  bed = tmp_path / 'r.bed'
  bed.write_text('chrA\t0\t4\n'  # at position 0: 6 N before the chromosome
                 'chrA\t96\t100\tend\t0\t-\n'  # at its end: 6 N after it
                 'chrZ\t10\t20\n'
                 'chrA\t40\t50\n')
  skipped = []
  found = list(windows.bed_windows(genome, str(bed), 16, skipped))
  assert [(w.region.line, w.start, w.end, w.strand) for w in found] == [
      (1, -6, 10, '+'), (2, 90, 106, '-'), (4, 37, 53, '+')]
  codes = dna.indices(CHROM)
  np.testing.assert_array_equal(found[0].codes, np.r_[[4] * 6, codes[:10]])
  np.testing.assert_array_equal(found[1].codes, np.r_[codes[90:], [4] * 6])
  np.testing.assert_array_equal(found[2].codes, codes[37:53])
  assert [(r.line, reason) for r, reason in skipped] == [
      (3, 'chromosome chrZ is not in the FASTA')]
  assert windows.describe(skipped[0][0]) == 'line 3 (chrZ:10-20)'
  bed.write_text('chrA\t0\t4\nchrA\t5\n')
  with pytest.raises(UserError, match=r'r.bed line 2: expected chrom, start, end'):
    list(windows.bed_windows(genome, str(bed), 16, []))


def test_stats_are_parsed_once_case_sensitive_as_basenji():
  assert variant_stats.parse_stats('SAD, logSAD,SAD') == ('SAD', 'logSAD')
  assert variant_stats.parse_stats('scd,sum', mutagenesis.STATS) == ('scd', 'sum')
  cases = [
      (('sad',), '--stats=sad: unknown statistic sad (did you mean SAD?); the known '
                 'statistics are SAD, logSAD,'),
      (('SUM', mutagenesis.STATS), '--stats=SUM: unknown statistic SUM (did you mean '
                                   'sum?); the known statistics are sum, center, '
                                   'scd, js.'),
      (('SAD,bogus',), '--stats=SAD,bogus: unknown statistic bogus; the known'),
      ((' , ',), '--stats= , : name at least one statistic; the known statistics'),
  ]
  for args, words in cases:
    with pytest.raises(UserError) as e:
      variant_stats.parse_stats(*args)
    assert str(e.value).startswith(words), str(e.value)


WAYS = ('--saved_model=DIR (an export) or --params_file=params.json with '
        '--checkpoint=model_best.h5')


@pytest.mark.parametrize('kwargs, message', [
    (dict(saved_model='x', params_file='p.json', checkpoint='m.h5'),
     '--saved_model and --params_file are both set: pass the model one way, as %s.'
     % WAYS),
    (dict(), 'no model given: pass it as %s.' % WAYS),
    (dict(saved_model='runs/x/export/best', checkpoint='latest'),
     '--checkpoint is read with --params_file only; --saved_model=runs/x/export/best '
     'holds its own weights, head and gelu: leave --checkpoint out.'),
    (dict(saved_model='runs/x/export/best', head='head_mouse'),
     '--head is read with --params_file only; --saved_model=runs/x/export/best holds '
     'its own weights, head and gelu: leave --head out.'),
    (dict(saved_model='runs/x/export/best', gelu='sigmoid'),
     '--gelu is read with --params_file only; --saved_model=runs/x/export/best holds '
     'its own weights, head and gelu: leave --gelu out.'),
    (dict(params_file='p.json'),
     "--params_file=p.json needs --checkpoint: the .h5 basenji's SeqNN.save wrote, a "
     'model_dir or a checkpoint path.'),
    (dict(saved_model='x', batch_size=0), '--batch_size=0 must be positive, e.g. 8.'),
])
def test_each_model_source_mistake_has_one_wording(kwargs, message):
  with pytest.raises(UserError) as e:
    model_source.check_source(**kwargs)
  assert str(e.value) == message
  # load checks the same way before it reads anything.
  with pytest.raises(UserError) as e:
    model_source.load(**kwargs)
  assert str(e.value) == message


def test_saliency_and_region_inputs_are_checked_before_a_model_loads(tmp_path):
  fasta = tmp_path / 'g.fa'
  fasta.write_text('>chrA\nACGT\n')
  out = str(tmp_path / 'scores.npz')
  cases = [
      (lambda: saliency.check_inputs('', str(fasta)), '--output is required'),
      (lambda: saliency.check_inputs(out, str(fasta), records='r-*.tfr'),
       'give exactly one of --fasta (with or without --bed) and --records'),
      (lambda: saliency.check_inputs(out, bed='r.bed', records='r-*.tfr'),
       '--bed needs --fasta'),
      (lambda: saliency.check_inputs(str(tmp_path / 'no' / 'x.npz'), str(fasta)),
       'folder %s does not exist' % (tmp_path / 'no')),
      (lambda: regions.check_inputs(str(fasta), '', 'preds.h5'),
       'sequence predictions need --fasta, --bed and --output=preds.h5 together.'),
      (lambda: regions.check_inputs(str(fasta), str(tmp_path / 'none.bed'),
                                    'preds.h5'), 'none.bed is not a file.'),
      (lambda: regions.check_inputs(str(fasta), str(fasta), 'preds.csv'),
       '--output=preds.csv: name the .h5 file to write'),
  ]
  for call, words in cases:
    with pytest.raises(UserError) as e:
      call()
    assert words in str(e.value), str(e.value)
  assert not list(tmp_path.glob('*.npz'))
