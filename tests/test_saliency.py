"""End to end on a tiny synthetic genome: records sequences -> train -> export ->
saliency; and basenji's reference .h5 through --params_file with --checkpoint.

  .venv/bin/python -m pytest -q tests/test_saliency.py

The genome, its records and a few training steps of a tiny SeqNN are made in tmp_path;
`python -m export.saliency` then runs as a user runs it, on FASTA regions, and its
library on the records (whose coordinates come from sequences.bed).
"""

import json
import os
import subprocess
import sys

import estimator_pipeline  # noqa: F401  (compat fixes before TF)
import numpy as np
import pytest

from estimator_pipeline import config
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import saliency
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import sequences
from estimator_pipeline.records import synthetic_genome
from estimator_pipeline import train
from estimator_pipeline.train import exporting
import seq_helpers  # tests/, on sys.path under pytest like conftest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQ_LENGTH = 256
POOL_WIDTH = 8


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp('saliency')
  genome = synthetic_genome.write_synthetic_genome(
      str(root / 'genome'), seed=1, num_chroms=3, chrom_length=4096,
      seq_length=SEQ_LENGTH, site_spacing=150)
  data = root / 'data'
  result = sequences.convert_sequences(
      genome.fasta, genome.bed, genome.coverage, str(data), seq_length=SEQ_LENGTH,
      pool_width=POOL_WIDTH, seqs_per_tfr=16, progress=False)
  assert result.counts == {'train': 31, 'valid': 16, 'test': 16}
  params = seq_helpers.write_params(root / 'params.json')
  cfg = config.Config(
      model_name='seqnn', params_file=params, model_dir=str(root / 'run'),
      train_record_path=str(data / 'tfrecords' / 'train-*.tfr'),
      eval_record_path=str(data / 'tfrecords' / 'valid-*.tfr'),
      num_steps=6, save_checkpoints_steps=6, log_every_steps=3, batch_size=4)
  train.run(cfg)
  return genome, data, root


def _run(args):
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  return subprocess.run([sys.executable, '-m', 'export.saliency'] + args, cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=600,
                        check=False)


def test_saliency_cli_on_fasta_regions(exported):
  genome, _, root = exported
  bed = root / 'some.bed'
  # Two regions of the test chromosome, one unknown chromosome, one at its end and one
  # at its start: their windows run past the chromosome and are N there.
  bed.write_text('chr3\t0\t256\nchr3\t1000\t1100\nchrQ\t0\t256\nchr3\t4000\t4096\n'
                 'chr3\t0\t10\n')
  output = root / 'scores.npz'
  run = _run(['--saved_model=' + str(root / 'run' / 'export' / 'best'),
              '--fasta=' + genome.fasta, '--bed=' + str(bed), '--target_index=1',
              '--output=' + str(output), '--batch_size=2'])
  assert run.returncode == 0, run.stderr
  assert ('skipped --bed line 3 (chrQ:0-256): chromosome chrQ is not in the FASTA'
          in run.stderr)
  scores = np.load(output)
  assert list(scores['names']) == ['chr3:0-256', 'chr3:922-1178', 'chr3:3920-4176',
                                   'chr3:-123-133']
  assert list(scores['starts']) == [0, 922, 3920, -123]
  assert list(scores['ends']) == [256, 1178, 4176, 133]
  assert int(scores['target_index']) == 1
  assert scores['saliency'].shape == (4, SEQ_LENGTH, 4)
  assert scores['saliency'].dtype == np.float32
  assert scores['scores'].shape == (4, SEQ_LENGTH)
  # The genome's own bases, N past its ends, and input x gradient: zero off the base
  # present (everywhere at an N), and the per-base score is the saliency of that base.
  dna = {name: codes for name, _, codes in genome_files.read_fasta(genome.fasta)}
  np.testing.assert_array_equal(scores['bases'][1], dna['chr3'][922:1178])
  np.testing.assert_array_equal(scores['bases'][2][:176], dna['chr3'][3920:])
  np.testing.assert_array_equal(scores['bases'][3][123:], dna['chr3'][:133])
  assert (scores['bases'][2][176:] == 4).all() and (scores['bases'][3][:123] == 4).all()
  onehot = np.eye(5, 4, dtype=bool)[scores['bases']]
  assert np.all(scores['saliency'][~onehot] == 0)
  np.testing.assert_allclose(scores['scores'], scores['saliency'].sum(-1), rtol=1e-6)
  assert np.any(scores['scores'] != 0)
  assert not [n for n in os.listdir(root) if n.startswith('.saliency-')]


def test_saliency_of_records_with_coordinates(exported):
  _, data, root = exported
  model = model_source.load(saved_model=str(root / 'run' / 'export' / 'best'),
                            batch_size=5)
  assert (model.seq_length, model.num_targets) == (SEQ_LENGTH, 2)
  items = list(saliency.record_sequences(str(data / 'tfrecords' / 'test-*.tfr'),
                                         model.seq_length))
  arrays = saliency.compute_saliency(model, items, target_index=0)
  rows = [line.split('\t') for line in (data / 'sequences.bed').read_text().splitlines()
          if line.endswith('\ttest')]
  assert list(arrays['names']) == ['%s:%s-%s' % tuple(r[:3]) for r in rows]
  assert arrays['saliency'].shape == (16, SEQ_LENGTH, 4)
  stats = json.loads((data / 'statistics.json').read_text())
  assert stats['test_seqs'] == 16
  # Other batches give the same numbers.
  model.batch_size = 2
  again = saliency.compute_saliency(model, items[:3], target_index=0)
  np.testing.assert_allclose(again['scores'], arrays['scores'][:3], rtol=1e-4,
                             atol=1e-6)
  with pytest.raises(UserError, match='--target_index=2 is out of range: the model '
                                      'predicts 2 targets'):
    saliency.compute_saliency(model, items, target_index=2)
  output = root / 'records.npz'
  saliency.write_npz(str(output), arrays)
  assert set(np.load(output).files) == {'names', 'chroms', 'starts', 'ends', 'bases',
                                        'saliency', 'scores', 'target_index'}


def test_saliency_of_a_params_file_and_h5_equals_its_exports(tmp_path):
  """basenji's reference model as --params_file with --checkpoint (the graph built
  here) and as an export of the same .h5 (its saliency signature) give the same
  scores; regions at both ends of a chromosome are N-padded."""
  basenji = os.path.join(REPO, 'tests', 'data', 'basenji')
  params = os.path.join(basenji, 'basenji_params.json')
  h5 = os.path.join(basenji, 'basenji_model.h5')
  fasta = os.path.join(basenji, 'reference', 'genome.fa')  # chr1 is 30000 bp
  bed = tmp_path / 'ends.bed'
  bed.write_text('chr1\t0\t20\nchr1\t29980\t30000\tr\t0\t-\n')
  out = tmp_path / 'params.npz'
  run = _run(['--params_file=' + params, '--checkpoint=' + h5, '--fasta=' + fasta,
              '--bed=' + str(bed), '--target_index=2', '--output=' + str(out)])
  assert run.returncode == 0, run.stderr[-3000:]
  mine = np.load(out)
  assert list(mine['names']) == ['chr1:-2038-2058', 'chr1:27942-32038']
  assert (mine['bases'][0][:2038] == 4).all() and (mine['bases'][1][2058:] == 4).all()
  assert mine['saliency'].shape == (2, 4096, 4) and np.any(mine['scores'] != 0)
  export, _ = exporting.export('', h5, str(tmp_path / 'exports'), '',
                               {'params_file': params})
  theirs = saliency.run(model_source.load(saved_model=export), str(tmp_path / 'x.npz'),
                        2, fasta, str(bed))
  np.testing.assert_array_equal(mine['bases'], theirs['bases'])
  scale = np.abs(theirs['saliency']).max()
  np.testing.assert_allclose(mine['saliency'], theirs['saliency'], rtol=0,
                             atol=1e-5 * scale)
  # The model flags are the other sequence commands': one wording for a mistake.
  bad = _run(['--params_file=' + params, '--fasta=' + fasta, '--bed=' + str(bed),
              '--output=' + str(tmp_path / 'bad.npz')])
  assert bad.returncode == 2 and 'Traceback' not in bad.stderr
  assert bad.stderr.strip().splitlines()[-1] == (
      "error: --params_file=%s needs --checkpoint: the .h5 basenji's SeqNN.save "
      'wrote, a model_dir or a checkpoint path.' % params)
  assert not (tmp_path / 'bad.npz').exists()
