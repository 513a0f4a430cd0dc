"""Stranded targets: Borzoi's strand_pair column, exports that carry their pairs, and
the reverse-complement ensemble of a stranded model by every route.

The reference is baskerville's own ensemble of its small stranded model through its
targets table (model_pred_script_ensemble.npy: the forward and reverse-complement
average, each reverse-complemented column k taken from column pair[k]).
"""

import json
import os

import h5py
import numpy as np
import pytest

from baskerville_snp_model import DATA, PARAMS, TARGETS, model_input, write_model
from conftest import run_cli
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import targets
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.train import exporting
from seq_helpers import write_records

# The table's pairs over the model's 12 outputs (outputs 4 and 9 are not in it).
PAIRS = (1, 0, 3, 2, 4, 5, 7, 6, 8, 9, 11, 10)
COLLAPSED = ['RNA_A+', 'CAGE_A+', 'DNASE_A', 'RNA_B+', 'ATAC_A', 'RNA_C+']


def _table(tmp_path, edit=None, name='t.txt'):
  """targets.txt with edit(rows) applied to its rows of fields."""
  with open(TARGETS) as f:
    lines = [line.rstrip('\n').split('\t') for line in f]
  if edit:
    edit(lines[1:])
  path = tmp_path / name
  path.write_text(''.join('\t'.join(fields) + '\n' for fields in lines))
  return str(path)


def test_the_table_pairs_strands_and_sums_each_pair_into_its_plus_row():
  table = targets.read(TARGETS, 12)
  assert table.pair == (1, 0, 3, 2, 4, 6, 5, 7, 9, 8)
  assert ''.join(table.strand) == '+-+-.-+.+-'
  assert [table.ids[k] for k in table.collapsed] == COLLAPSED
  assert table.model_pairs(12) == PAIRS
  values = np.arange(1.0, 11.0)  # one statistic per row, in table order
  np.testing.assert_array_equal(values @ table.sum_matrix(),
                                [1 + 2, 3 + 4, 5, 6 + 7, 8, 9 + 10])


def test_pairs_on_rows_apart_are_summed_by_partner_not_by_position():
  """baskerville's running counter adds the wrong rows when a pair's rows are not
  adjacent (its quirk Q7); each column here is still a track's two strands."""
  table = targets.read(os.path.join(DATA, 'targets_nonadjacent.txt'), 12)
  columns = [table.ids[k] for k in table.collapsed]
  matrix = table.sum_matrix()
  summed = {columns[c]: sorted(table.ids[k] for k in np.flatnonzero(matrix[:, c]))
            for c in range(len(columns))}
  assert summed == {'RNA_A+': ['RNA_A+', 'RNA_A-'], 'CAGE_A+': ['CAGE_A+', 'CAGE_A-'],
                    'DNASE_A': ['DNASE_A'], 'ATAC_A': ['ATAC_A'],
                    'RNA_C+': ['RNA_C+', 'RNA_C-'], 'RNA_B+': ['RNA_B+', 'RNA_B-']}


def _set(row, column, value):
  def edit(rows):
    rows[row][column] = value
  return edit


@pytest.mark.parametrize('edit, words', [
    (_set(0, 7, '4'), 'strand_pair 4 is not the index of a row'),
    (_set(0, 7, '2'), 'strand_pair is not mutual'),
    (_set(0, 7, 'x'), "strand_pair 'x' is not a whole number"),
    (_set(0, 1, 'RNA_A'), r'does not end in \+ or -'),
    (_set(1, 1, 'RNA_A+'), r'are both on the \+ strand'),
    (_set(0, 0, '12'), 'index 12 is not an output of the model'),
    (_set(1, 0, '0'), 'lists model output 0 twice'),
])
def test_a_bad_strand_pair_is_named(tmp_path, edit, words):
  with pytest.raises(UserError, match=words):
    targets.read(_table(tmp_path, edit), 12)


@pytest.fixture(scope='module')
def exports(tmp_path_factory):
  """The reference .h5, exported plain and with its strand pairs in the params."""
  root = tmp_path_factory.mktemp('stranded')
  h5 = write_model(str(root / 'model.h5'))
  with open(PARAMS) as f:
    params = json.load(f)
  params['model']['strand_pair'] = [list(PAIRS)]
  stranded = root / 'params_stranded.json'
  stranded.write_text(json.dumps(params))
  found = {'h5': h5, 'stranded_params': str(stranded)}
  for name, path in (('plain', PARAMS), ('stranded', str(stranded))):
    found[name], _ = exporting.export('', h5, str(root / name),
                                      overrides={'params_file': path})
  return found


def _ensemble(**kwargs):
  model = model_source.load(ensemble_rc=True, batch_size=2, **kwargs)
  preds = model.predict(model_input())
  return preds[..., list(model.targets.index)] if model.targets.path else preds


def _check(preds, table_order=True):
  ref = np.load(os.path.join(DATA, 'model_pred_script_ensemble.npy'))
  if not table_order:
    preds = preds[..., list(targets.read(TARGETS, 12).index)]
  scale = np.abs(ref).max()
  assert np.abs(preds - ref).max() <= 2e-5 * scale


def test_every_route_to_a_stranded_ensemble_gives_baskervilles(exports):
  # A params file and the table's pairs: the ensemble in the graph swaps them.
  _check(_ensemble(params_file=PARAMS, checkpoint=exports['h5'], targets_file=TARGETS))
  # An export that carries no pairs, given the table's.
  _check(_ensemble(saved_model=exports['plain'], targets_file=TARGETS))
  # An export that carries its pairs: no table needed, the order is the model's.
  _check(_ensemble(saved_model=exports['stranded']), table_order=False)
  _check(_ensemble(saved_model=exports['stranded'], targets_file=TARGETS))
  # The params file's own pairs, without a table.
  _check(_ensemble(params_file=exports['stranded_params'], checkpoint=exports['h5']),
         table_order=False)


def test_without_pairs_the_ensemble_is_not_baskervilles(exports):
  """What the export's pairs fix: the same export, its strands left in place."""
  with pytest.raises(AssertionError):
    _check(_ensemble(saved_model=exports['plain']), table_order=False)


def test_an_export_carries_its_pairs(exports):
  for name, expected in (('plain', None), ('stranded', list(PAIRS))):
    with open(os.path.join(exports[name], 'assets.extra', 'strand_pair.json')) as f:
      assert json.load(f) == {'strand_pair': expected, 'num_targets': 12}


def test_a_table_that_contradicts_the_models_pairs_is_refused(exports, tmp_path):
  def swap(rows):  # RNA_B's strands pair with RNA_C's instead of each other
    rows[5][7], rows[8][7], rows[6][7], rows[9][7] = '11', '7', '10', '6'
  table = _table(tmp_path, swap)
  targets.read(table, 12)  # a valid table in itself
  with pytest.raises(UserError, match=r'RNA_B- \(output 7\) has strand_pair 11, but '
                     r'the model .* pairs output 7 with 6'):
    model_source.load(saved_model=exports['stranded'], targets_file=table)


# The commands, each given a stranded table (run as a user runs them).


def _fasta(tmp_path, length=9000, seed=5):
  bases = np.random.RandomState(seed).choice(list('ACGT'), length)
  path = tmp_path / 'genome.fa'
  path.write_text('>chr1\n' + ''.join(bases) + '\n')
  return str(path)


def _model_flags(exports, *extra):
  return ['--saved_model=' + exports['plain'], '--ensemble_rc'] + list(extra)


def test_predict_keeps_each_strand_and_swaps_it_in_the_ensemble(exports, tmp_path):
  fasta = _fasta(tmp_path)
  bed = tmp_path / 'r.bed'
  bed.write_text('chr1\t4000\t4100\tr1\t0\t+\n')
  out = tmp_path / 'preds.h5'
  proc = run_cli(['-m', 'export.predict', '--fasta=' + fasta, '--bed=' + str(bed),
                  '--output=' + str(out), '--targets_file=' + TARGETS] +
                 _model_flags(exports))
  assert proc.returncode == 0, proc.stderr
  with h5py.File(out, 'r') as h5:
    found = h5['preds'][()].astype(np.float32)
  model = model_source.load(params_file=exports['stranded_params'],
                            checkpoint=exports['h5'], ensemble_rc=True)
  genome = open(fasta).read().split('\n')[1]
  window = genome[4050 - 2048:4050 + 2048]
  x = np.eye(4, dtype=np.float32)[['ACGT'.index(b) for b in window]][None]
  expected = model.predict(x)[..., list(targets.read(TARGETS, 12).index)]
  assert found.shape == (1, 64, 10)
  assert np.abs(found - expected).max() <= 2e-3 * np.abs(expected).max()  # float16


def _mutagenesis(exports, tmp_path, table, name):
  out = tmp_path / name
  bed = tmp_path / 'm.bed'
  bed.write_text('chr1\t4000\t4004\tm1\t0\t-\n')
  proc = run_cli(['-m', 'export.mutagenesis', '--fasta=' + _fasta(tmp_path),
                  '--bed=' + str(bed), '--mutate_length=3', '--stats=sum,scd',
                  '--targets_file=' + table, '--output_dir=' + str(out),
                  '--saved_model=' + exports['plain']])
  assert proc.returncode == 0, proc.stderr
  with h5py.File(out / 'scores.h5', 'r') as h5:
    return ({s: h5[s][()].astype(np.float32) for s in ('sum', 'scd')},
            proc.stdout + proc.stderr)


def test_mutagenesis_sums_a_tracks_two_strands_into_one(exports, tmp_path):
  stranded, said = _mutagenesis(exports, tmp_path, TARGETS, 'a')
  apart, _ = _mutagenesis(exports, tmp_path,
                          os.path.join(DATA, 'targets_nostrand.txt'), 'b')
  assert 'scoring 10 of them, strands summed into 6 targets' in said
  # 1 region x 3 bp: the window and 3 mutants per base.
  assert '10 sequences predicted' in said
  assert stranded['sum'].shape == (1, 3, 4, 6) and apart['sum'].shape == (1, 3, 4, 10)
  matrix = targets.read(TARGETS, 12).sum_matrix()
  summed = apart['sum'] @ matrix
  assert np.abs(stranded['sum'] - summed).max() <= 2e-3 * np.abs(summed).max()
  # scd of the summed tracks is not the sum of each strand's scd.
  assert not np.allclose(stranded['scd'], apart['scd'] @ matrix, rtol=1e-2)


def _records(root, model, pairs_column):
  """Four windows whose targets are the stranded ensemble's own predictions, and a
  targets.txt of the model's 12 outputs beside them."""
  rng = np.random.RandomState(7)
  bases = rng.randint(0, 4, size=(4, 4096)).astype(np.uint8)
  preds = model.predict(np.eye(4, dtype=np.float32)[bases])
  records = root / 'tfrecords'
  records.mkdir(parents=True)
  write_records(records / 'test-0.tfr', bases, preds)
  (root / 'statistics.json').write_text(json.dumps({
      'seq_length': 4096, 'seq_1hot': False, 'pool_width': 32, 'crop_bp': 1024,
      'target_length': 64, 'num_targets': 12, 'test_seqs': 4}))
  # Outputs 4, 5, 8 and 9 are unstranded; of each pair the lower output is +.
  names = ['T%d%s' % (i, '' if PAIRS[i] == i else '+-'[PAIRS[i] < i])
           for i in range(12)]
  header = '\tidentifier\tfile\tclip\tscale\tsum_stat' + (
      '\tstrand_pair' if pairs_column else '') + '\tdescription\n'
  lines = ['%d\t%s\tx.bw\t32\t1\tsum%s\td%d\n' % (
      i, names[i], '\t%d' % PAIRS[i] if pairs_column else '', i) for i in range(12)]
  (root / 'targets.txt').write_text(header + ''.join(lines))
  return str(records / 'test-*.tfr')


def test_evaluate_takes_the_pairs_from_the_records_targets(exports, tmp_path):
  truth = model_source.load(params_file=exports['stranded_params'],
                            checkpoint=exports['h5'], ensemble_rc=True)
  r2 = {}
  for pairs_column in (True, False):
    root = tmp_path / str(pairs_column)
    records = _records(root, truth, pairs_column)
    proc = run_cli(['-m', 'export.evaluate', '--records=' + records,
                    '--output_dir=' + str(root / 'report')] + _model_flags(exports))
    assert proc.returncode == 0, proc.stderr
    with open(root / 'report' / 'acc.tsv') as f:
      rows = [line.split('\t') for line in f.read().splitlines()]
    column = rows[0].index('r2')
    r2[pairs_column] = np.array([float(row[column]) for row in rows[1:]])
  # Not 1: the records hold the targets as float16.
  assert r2[True].min() > 0.999
  assert r2[False][[4, 5, 8, 9]].min() > 0.999  # the unstranded outputs
  assert r2[False][[0, 1, 2, 3, 6, 7, 10, 11]].max() < 0.5


def test_export_of_an_h5_takes_the_tables_pairs(exports, tmp_path):
  """Borzoi's params files have no strand_pair: `python -m export --targets_file`
  gives the export the table's, in its ensemble and its asset."""
  out = tmp_path / 'out'
  proc = run_cli(['-m', 'export', '--params_file=' + PARAMS,
                  '--checkpoint=' + exports['h5'], '--targets_file=' + TARGETS,
                  '--ensemble_rc', '--export_dir=' + str(out)])
  assert proc.returncode == 0, proc.stderr
  version = proc.stdout.strip().splitlines()[-1]
  with open(os.path.join(version, 'assets.extra', 'strand_pair.json')) as f:
    assert json.load(f)['strand_pair'] == list(PAIRS)
  # The ensemble is in the graph: no --ensemble_rc around it.
  _check(model_source.load(saved_model=version).predict(model_input()),
         table_order=False)
  proc = run_cli(['-m', 'export', '--params_file=' + PARAMS,
                  '--checkpoint=' + exports['h5'], '--export_dir=' + str(out),
                  '--targets_file=' + os.path.join(DATA, 'targets_nostrand.txt')])
  assert proc.returncode == 2 and 'has no strand_pair column' in proc.stderr
  assert 'Traceback' not in proc.stderr and len(os.listdir(out)) == 1
