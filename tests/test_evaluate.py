"""The test-set report (python -m export.evaluate) for both kinds of model: its numbers
equal the eval/ metrics training logged for the same checkpoint and records.

  .venv/bin/python -m pytest -q tests/test_evaluate.py
"""

import csv
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli
from conftest import scalars
from conftest import small_config
import seq_helpers
from estimator_pipeline import config
from estimator_pipeline import train
from estimator_pipeline.analysis import evaluation
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import sequence_evaluation
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models.seqnn import metrics as seq_metrics
from estimator_pipeline.models.seqnn import report as seqnn_report
from estimator_pipeline.train.tasks import base as tasks_base

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f, delimiter='\t'))


def _png_size(path):
  with open(path, 'rb') as f:
    head = f.read(24)
  assert head[:8] == PNG_MAGIC, path
  return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


@pytest.fixture(scope='module')
def seq_run(tmp_path_factory):
  """A few steps of the tiny SeqNN, evaluated once, with a targets.txt."""
  root = tmp_path_factory.mktemp('evaluate_seq')
  records = seq_helpers.write_dataset(root / 'data', 'new', n_train=16, n_valid=12)
  with open(os.path.join(str(root / 'data'), 'targets.txt'), 'w') as f:
    f.write('\tidentifier\tfile\tclip\tscale\tsum_stat\tdescription\n'
            '0\tGC\tgc.bw\t32\t1\tsum\tCAGE:gc content\n'
            '1\tAT\tat.bw\t32\t1\tsum\tDNASE:at content\n')
  params = seq_helpers.write_params(root / 'params.json')
  cfg = small_config(root / 'run', os.path.join(records, 'train-*.tfr'),
                     os.path.join(records, 'valid-*.tfr'), model_name='seqnn',
                     params_file=params, num_steps=6, save_checkpoints_steps=6,
                     log_every_steps=6, batch_size=4,
                     learning_rate=config.Config.default('learning_rate'))
  train.run(cfg)
  return cfg, records, root


def test_image_report_equals_the_training_evaluation(serving_run, tmp_path):
  cfg = serving_run['cfg']
  logged = scalars(os.path.join(cfg.model_dir, 'eval'))
  out = str(tmp_path / 'report')
  result = evaluation.evaluate(cfg.model_dir, cfg.eval_record_path, out,
                               checkpoint='best', progress=False)
  step = files.checkpoint_step(result.checkpoint)
  assert result.checkpoint == serving_run['checkpoints']['tf_example']
  for name in ('accuracy', 'loss', 'mean_per_class_accuracy'):
    assert result.metrics[name] == pytest.approx(logged[name][step], rel=1e-6), name
  rows = _rows(os.path.join(out, 'metrics.tsv'))
  assert [r['name'] for r in rows] == ['-', 'red', 'green', 'blue']
  assert [int(r['examples']) for r in rows] == [12, 4, 4, 4]
  assert float(rows[0]['accuracy']) == pytest.approx(logged['accuracy'][step],
                                                     abs=1e-5)
  # Per class: recall is that class's accuracy; top-5 of 3 classes holds every one.
  mean_recall = np.mean([float(r['recall']) for r in rows[1:]])
  assert mean_recall == pytest.approx(logged['mean_per_class_accuracy'][step],
                                      abs=1e-5)
  assert all(float(r['top_5_accuracy']) == 1.0 for r in rows)
  width, height = _png_size(os.path.join(out, 'confusion_matrix.png'))
  assert width > 200 and height > 200
  assert sorted(os.listdir(out)) == ['confusion_matrix.png', 'metrics.tsv']


def test_sequence_report_equals_the_training_evaluation(seq_run, tmp_path):
  cfg, records, _ = seq_run
  out = tmp_path / 'report'
  result = evaluation.evaluate(cfg.model_dir, os.path.join(records, 'valid-*.tfr'),
                               str(out), progress=False)
  logged = scalars(os.path.join(cfg.model_dir, 'eval'))
  rows = _rows(out / 'acc.tsv')
  assert list(rows[0]) == ['index', 'pearsonr', 'r2', 'identifier', 'description']
  assert [(r['index'], r['identifier'], r['description']) for r in rows] == [
      ('0', 'GC', 'CAGE:gc content'), ('1', 'AT', 'DNASE:at content')]
  for name in ('pearsonr', 'r2', 'loss'):
    assert result.metrics[name] == pytest.approx(logged[name][6], rel=1e-6), name
  for name in ('pearsonr', 'r2'):
    mean = np.mean([float(r[name]) for r in rows])
    assert mean == pytest.approx(logged[name][6], abs=6e-6), name  # %.5f in acc.tsv
    assert '%s %.4f' % (name, logged[name][6]) in result.lines[0]
  assert 'pearsonr mean' in result.lines[1]
  assert _png_size(out / 'scatter.png')[0] > 400
  assert result.paths == [str(out / 'acc.tsv'), str(out / 'scatter.png')]


def test_sequence_report_of_a_model_without_its_model_dir(seq_run, tmp_path):
  cfg, records, _ = seq_run
  export = files.newest_version(os.path.join(cfg.model_dir, 'export', 'final'))
  model = model_source.load(saved_model=export, batch_size=5)
  out = str(tmp_path / 'report')
  result = sequence_evaluation.evaluate_model(
      model, os.path.join(records, 'valid-*.tfr'), out, progress=False)
  # The same records, made again, through the export: numpy's Pearson R per target.
  bases, targets = seq_helpers.make_examples(12, seed=2)
  targets = targets.astype(np.float16).astype(np.float32)
  preds = model.predict(seq_helpers.one_hot(bases).astype(np.float32))
  want = [np.corrcoef(targets[..., t].ravel(), preds[..., t].ravel())[0, 1]
          for t in range(2)]
  rows = _rows(os.path.join(out, 'acc.tsv'))
  assert [float(r['pearsonr']) for r in rows] == pytest.approx(want, abs=6e-6)
  assert result.metrics['pearsonr'] == pytest.approx(np.mean(want), abs=1e-6)
  # The command line, from the params file and the model_dir's checkpoint, with the
  # reverse-complement ensemble.
  cli = run_cli(['-m', 'export.evaluate', '--params_file=' + os.path.join(
      cfg.model_dir, 'params.json'), '--checkpoint=' + cfg.model_dir, '--ensemble_rc',
                 '--records=' + os.path.join(records, 'valid-*.tfr'),
                 '--output_dir=' + str(tmp_path / 'cli')])
  assert cli.returncode == 0, cli.stderr[-3000:]
  assert len(_rows(tmp_path / 'cli' / 'acc.tsv')) == 2
  assert 'pearsonr mean' in cli.stderr
  assert cli.stdout.split() == [str(tmp_path / 'cli' / name)
                                for name in ('acc.tsv', 'scatter.png')]


def test_bce_report_has_auroc_and_auprc_per_target(tmp_path):
  rng = np.random.RandomState(3)
  labels = (rng.rand(6, 16, 3) < [0.2, 0.5, 0.7]).astype(np.float32)
  preds = np.clip(labels * 0.3 + rng.rand(6, 16, 3) * 0.7, 0, 1).astype(np.float32)
  report = seqnn_report.SequenceReport(3, True, [str(tmp_path / 'test-0.tfr')])
  with tf.Graph().as_default():
    y, p = tf.constant(labels), tf.constant(preds)
    ours = report.eval_metrics({'predictions': p}, y)
    logged = seq_metrics.binary_metrics(y, p)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.local_variables_initializer())
      session.run([v[1] for v in list(ours.values()) + list(logged.values())])
      values = session.run({name: v[0] for name, v in ours.items()})
      means = session.run({name: logged[name][0] for name in ('auroc', 'auprc')})
  for name in ('auroc', 'auprc'):
    assert values[name].shape == (3,)
    assert np.mean(values[name]) == pytest.approx(means[name], abs=1e-6)
  report.add(labels, {'predictions': preds})
  paths, lines = report.write(str(tmp_path), 'bce', values)
  rows = _rows(paths[0])
  assert list(rows[0]) == ['index', 'auroc', 'auprc', 'identifier', 'description']
  assert float(rows[1]['auroc']) == pytest.approx(values['auroc'][1], abs=1e-5)
  assert 'auroc mean %.5f' % np.mean(values['auroc']) in lines[0]


def test_bad_input_is_one_line_and_writes_nothing(seq_run, serving_run, tmp_path):
  cfg, records, root = seq_run
  image_records = serving_run['cfg'].eval_record_path
  out = str(tmp_path / 'report')
  short = seq_helpers.write_dataset(root / 'short', 'new', n_train=2, n_valid=2,
                                    seq_length=128)
  cases = [
      (dict(model_dir=str(tmp_path)), 'holds no config.json'),
      (dict(records=image_records), 'cannot be read as ZLIB-compressed'),
      (dict(model_dir=serving_run['cfg'].model_dir),
       'pass test records of the layout the model was trained on'),
      (dict(records=os.path.join(short, 'valid-*.tfr')), 'takes 256 bp'),
      (dict(checkpoint=os.path.join(serving_run['cfg'].model_dir, 'model.ckpt-20')),
       'pass a checkpoint of that model'),
      (dict(records=str(tmp_path / 'none-*.tfr')), 'matches no file'),
  ]
  for overrides, message in cases:
    args = dict(model_dir=cfg.model_dir, records=os.path.join(records, 'valid-*.tfr'),
                output_dir=out, checkpoint='latest', progress=False)
    args.update(overrides)
    with pytest.raises(UserError, match=message):
      evaluation.evaluate(**args)
    assert not os.path.exists(out)
  before = {p: os.path.getmtime(os.path.join(cfg.model_dir, p))
            for p in os.listdir(cfg.model_dir)}
  cli = run_cli(['-m', 'export.evaluate', '--model_dir=' + cfg.model_dir,
                 '--records=' + image_records, '--output_dir=' + out, '--ensemble_rc'])
  assert cli.returncode == 2
  last = cli.stderr.strip().splitlines()[-1]
  assert last.startswith('error: --ensemble_rc is read without --model_dir')
  assert 'Traceback' not in cli.stderr
  assert not os.path.exists(out)
  assert before == {p: os.path.getmtime(os.path.join(cfg.model_dir, p))
                    for p in os.listdir(cfg.model_dir)}


def test_a_layout_without_a_report_says_so():
  # The report comes from the task of the model's layout; one without is refused in
  # one line (not given another layout's report).
  class NewTask(tasks_base.Task):
    layout = 'audio'

  with pytest.raises(UserError, match='the audio record layout have no test-set '
                     'report'):
    NewTask().test_report(None, ['test-0.tfrecord'])


def test_saved_model_of_an_image_classifier_is_refused_plainly(serving_run, tmp_path):
  """export.evaluate's --checkpoint defaults to latest: that default must not read as a
  --checkpoint the user typed beside --saved_model."""
  model_dir = serving_run['cfg'].model_dir
  version = serving_run['exports']['encoded_image']
  out = tmp_path / 'report'
  cli = run_cli(['-m', 'export.evaluate',
                 '--saved_model=' + os.path.join(model_dir, 'export', 'final'),
                 '--records=' + serving_run['cfg'].eval_record_path,
                 '--output_dir=' + str(out)])
  assert cli.returncode == 2 and 'Traceback' not in cli.stderr
  assert cli.stderr.strip().splitlines()[-1] == (
      "error: --saved_model=%s is an image classifier's export, and --saved_model is "
      'for sequence models: evaluate an image classifier by --model_dir=%s.' % (
          version, model_dir))
  assert not out.exists()
  # An export outside its model_dir: the flag, without a folder to name.
  other = serving_run['exports']['image_tensor']
  with pytest.raises(UserError) as e:
    model_source.load(saved_model=other, takes_model_dir=True)
  assert str(e.value) == (
      "--saved_model=%s is an image classifier's export, and --saved_model is for "
      'sequence models: evaluate an image classifier by its --model_dir.' % other)
  with pytest.raises(UserError) as e:
    model_source.load(saved_model=other)
  assert str(e.value) == (
      "--saved_model=%s is an image classifier's export, and --saved_model is for "
      'sequence models (--model_name=seqnn).' % other)


def test_sequence_export_on_the_command_line(seq_run, tmp_path):
  cfg, records, _ = seq_run
  cli = run_cli(['-m', 'export.evaluate',
                 '--saved_model=' + os.path.join(cfg.model_dir, 'export', 'final'),
                 '--records=' + os.path.join(records, 'valid-*.tfr'),
                 '--output_dir=' + str(tmp_path / 'cli')])
  assert cli.returncode == 0, cli.stderr[-3000:]
  assert len(_rows(tmp_path / 'cli' / 'acc.tsv')) == 2
  # A --checkpoint typed beside --saved_model is named.
  cli = run_cli(['-m', 'export.evaluate', '--saved_model=' + cfg.model_dir,
                 '--checkpoint=best', '--records=' + os.path.join(records, 'valid-*'),
                 '--output_dir=' + str(tmp_path / 'bad')])
  assert cli.returncode == 2
  assert cli.stderr.strip().splitlines()[-1] == (
      'error: --checkpoint is read with --params_file only; --saved_model=%s holds its '
      'own weights, head and gelu: leave --checkpoint out.' % cfg.model_dir)
  assert not (tmp_path / 'bad').exists()
