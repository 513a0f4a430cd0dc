"""The sequence layout end to end, in both basenji record layouts (today's base indices
with float16 targets, and the older one-hot with float lists): export without training,
`records inspect`, --validate_data and --skip_corrupt_records; the format module's
decoder and layout detection.

  .venv/bin/python -m pytest -q tests/test_sequence_layout.py
"""

import os

import numpy as np
import pytest

from conftest import run_cli
from conftest import small_config
import seq_helpers
import tensorflow as tf

from estimator_pipeline import train
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import sequence_format
from estimator_pipeline.train import exporting

SIGNATURES = {'serving_default', 'onehot', 'saliency', 'variant_effect'}


def _config(records, model_dir, params, **kw):
  values = dict(model_name='seqnn', params_file=params, num_steps=4,
                save_checkpoints_steps=2, log_every_steps=2, batch_size=32,
                learning_rate=0.01, random_flip=True)
  values.update(kw)
  return small_config(model_dir, os.path.join(records, 'train-*.tfr'),
                      os.path.join(records, 'valid-*.tfr'), **values)


@pytest.fixture(scope='module', params=['new', 'old'])
def trained(request, tmp_path_factory):
  root = tmp_path_factory.mktemp('seq_%s' % request.param)
  records = seq_helpers.write_dataset(root / 'data', request.param, n_train=16,
                                      n_valid=8)
  params = seq_helpers.write_params(root / 'params.json')
  cfg = _config(records, root / 'run', params)
  return request.param, cfg, records, train.run(cfg)


def _signatures(version):
  return tf.saved_model.load(version).signatures


def test_export_cli_writes_every_sequence_signature(trained, tmp_path):
  layout, cfg, _, result = trained
  proc = run_cli(['-m', 'export', '--model_dir=' + cfg.model_dir, '--checkpoint=best',
                  '--export_dir=' + str(tmp_path / 'out')])
  assert proc.returncode == 0, proc.stderr[-3000:]
  version = proc.stdout.strip().splitlines()[-1]
  assert os.path.dirname(version) == str(tmp_path / 'out')
  # best: the kept checkpoint of the highest evaluation Pearson R (the run's metric).
  history = files.eval_history(cfg.model_dir)
  kept = tf.train.get_checkpoint_state(cfg.model_dir).all_model_checkpoint_paths
  steps = [files.checkpoint_step(p) for p in kept]
  best = max((m['pearsonr'], step) for step, m in history.items() if step in steps)
  assert 'from %s-%d.' % (os.path.join(cfg.model_dir, 'model.ckpt'), best[1]
                          ) in proc.stderr, proc.stderr[-2000:]
  signatures = _signatures(version)
  assert SIGNATURES <= set(signatures), (layout, sorted(signatures))
  assert os.path.exists(os.path.join(version, 'assets.extra',
                                     'tf_serving_warmup_requests'))
  # The latest checkpoint exported without training answers as training's own export.
  latest, checkpoint = exporting.export(cfg.model_dir, 'latest',
                                        str(tmp_path / 'latest'))
  assert checkpoint.endswith('-%d' % cfg.num_steps)
  rng = np.random.RandomState(0)
  dna = [''.join(rng.choice(list('ACGTN'), 256)) for _ in range(3)]
  mine = _signatures(latest)['serving_default'](sequence=tf.constant(dna))
  theirs = _signatures(result.exports['final'])['serving_default'](
      sequence=tf.constant(dna))
  np.testing.assert_allclose(mine['predictions'].numpy(),
                             theirs['predictions'].numpy(), rtol=1e-6)


def _bad_set(folder, layout):
  """train-0.tfr: 6 good records, then one of each kind of bad one, then a good one."""
  os.makedirs(folder, exist_ok=True)
  bases, targets = seq_helpers.make_examples(8)
  good = [seq_helpers.example(
      (b if layout == 'new' else seq_helpers.one_hot(b)).tobytes(), t, layout == 'new')
          for b, t in zip(bases, targets)]
  short = seq_helpers.example(bases[0][:100].tobytes(), targets[0], layout == 'new')
  nan_target = targets[1].copy()
  nan_target[3, 1] = np.nan
  nan = seq_helpers.example(
      (bases[1] if layout == 'new' else seq_helpers.one_hot(bases[1])).tobytes(),
      nan_target, layout == 'new')
  records = good[:6] + [short, nan] + good[6:7]
  path = os.path.join(folder, 'train-0.tfr')
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(compression_type='ZLIB')) as w:
    for record in records:
      w.write(record.SerializeToString())
  return path


def test_records_inspect_counts_lengths_and_names_bad_records(trained, tmp_path):
  layout, _, records, _ = trained
  good = run_cli(['-m', 'estimator_pipeline.records', 'inspect',
                  os.path.join(records, '*.tfr')])
  assert good.returncode == 0, good.stderr[-3000:]
  assert '24 records in 2 files (sequence layout), 0 bad' in good.stdout
  kind = 'base indices' if layout == 'new' else 'one-hot bytes'
  assert 'sequences: 256 bp (%s)' % kind in good.stdout, good.stdout
  assert 'targets: 32 bins x 2 targets' in good.stdout, good.stdout
  bad_path = _bad_set(str(tmp_path / 'bad'), layout)
  bad = run_cli(['-m', 'estimator_pipeline.records', 'inspect', bad_path])
  assert bad.returncode == 2, bad.stderr[-3000:]
  assert '9 records in 1 files (sequence layout), 2 bad' in bad.stdout, bad.stdout
  assert 'bad: %s record 6: sequence is' % bad_path in bad.stdout, bad.stdout
  assert 'bad: %s record 7: target holds NaN or Inf' % bad_path in bad.stdout
  errors = [l for l in bad.stderr.splitlines() if l.startswith('error:')]
  assert len(errors) == 1 and 'record 6' in errors[0], bad.stderr[-3000:]


def test_bad_records_are_named_validated_and_skipped(trained, tmp_path, capfd):
  layout, cfg, records, _ = trained
  bad_path = _bad_set(str(tmp_path / 'bad' / 'tfrecords'), layout)
  with open(os.path.join(records, '..', 'statistics.json')) as f:
    (tmp_path / 'bad' / 'statistics.json').write_text(f.read())
  base = cfg.replace(model_dir=str(tmp_path / 'run'), train_record_path=bad_path,
                     num_steps=2, batch_size=4)
  with pytest.raises(UserError, match=r'train-0\.tfr record 6: sequence is'):
    train.run(base.replace(validate_data=True))
  assert not os.path.exists(base.model_dir)
  # Without --validate_data the first bad record stops training when it is read (at
  # least one of the two is among the first 8 of the 9 shuffled), named the same way.
  with pytest.raises(UserError, match=r'train-0\.tfr record 6: sequence is'):
    train.run(base.replace(model_dir=str(tmp_path / 'unchecked')))
  capfd.readouterr()
  result = train.run(base.replace(validate_data=True, skip_corrupt_records=True))
  err = capfd.readouterr().err
  assert 'training without the 2 bad records of --train_record_path' in err, err
  assert result.global_step == 2
  assert result.skipped_records >= 2  # Both bad records lie in the first 9 read.


# Records.

@pytest.mark.parametrize('layout', ['new', 'old'])
def test_records_decode_in_both_layouts(tmp_path, layout):
  bases, targets = seq_helpers.make_examples(3, 64, 8, 2)
  bases[0, :5] = 4  # N
  path = seq_helpers.write_records(tmp_path / 'r.tfr', bases, targets, layout)
  shape = sequence_format.inspect_record(path)
  assert shape.target_bytes == (layout == 'new')
  lay = sequence_format.SequenceLayout(64, layout == 'old', 8, 2, layout == 'new')
  decoder = sequence_format.SequenceRecordDecoder(lay)
  got = [decoder.decode(r) for r in
         tf.data.TFRecordDataset(path, compression_type='ZLIB')]
  for i, item in enumerate(got):
    want = seq_helpers.one_hot(bases[i]).astype(np.float32)
    np.testing.assert_array_equal(item['sequence'].numpy(), want)
    np.testing.assert_allclose(item['target'].numpy(), targets[i], rtol=1e-3)
  assert got[0]['sequence'].numpy()[:5].sum() == 0  # N is all zeros


def test_layout_from_statistics_and_mismatch(tmp_path):
  records = seq_helpers.write_dataset(tmp_path, 'new', n_train=2, n_valid=1)
  path = os.path.join(records, 'train-0.tfr')
  stats_path, stats = sequence_format.read_statistics(path)
  shape = sequence_format.inspect_record(path)
  lay = sequence_format.layout_from_statistics(stats_path, stats, shape)
  assert (lay.seq_length, lay.seq_1hot, lay.target_length, lay.num_targets) == (
      256, False, 32, 2)
  stats['seq_length'] = 128
  with pytest.raises(UserError) as e:
    sequence_format.layout_from_statistics(stats_path, stats, shape)
  assert path in str(e.value) and '256 bytes' in str(e.value) and '128' in str(e.value)


def test_byte_lengths_without_statistics_choose_the_layout(tmp_path):
  bases, targets = seq_helpers.make_examples(1, 64, 8, 2)
  old = sequence_format.inspect_record(
      seq_helpers.write_records(tmp_path / 'o.tfr', bases, targets, 'old'))
  new = sequence_format.inspect_record(
      seq_helpers.write_records(tmp_path / 'n.tfr', bases, targets, 'new'))
  assert sequence_format.sequence_candidates(old)[0] == (64, True)
  assert sequence_format.sequence_candidates(new)[0] == (64, False)
