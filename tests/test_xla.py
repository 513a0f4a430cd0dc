"""--xla: a SeqNN trains with XLA auto-clustering on the CPU, XLA really compiles
clusters, and its predictions equal the uncompiled graph's on the same weights to
float32 rounding (1e-5 of the largest prediction).

  .venv/bin/python -m pytest -q tests/test_xla.py
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_config
import seq_helpers
from estimator_pipeline import config as config_lib
from estimator_pipeline import train
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import plan as plan_lib
from estimator_pipeline.train import xla



@pytest.fixture(scope='module')
def xla_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('xla')
  records = seq_helpers.write_dataset(root / 'data', 'new')
  cfg = small_config(root / 'run', os.path.join(records, 'train-*.tfr'),
                     os.path.join(records, 'valid-*.tfr'), model_name='seqnn',
                     params_file=seq_helpers.write_params(root / 'params.json'),
                     num_steps=6, save_checkpoints_steps=6, batch_size=4, xla=True)
  result = train.run(cfg)
  # What the run resolved (the params file's optimizer): what a later run must match.
  return config_lib.load(cfg.model_dir), result


def _predictions(cfg, use_xla):
  plan = plan_lib.preflight(cfg.replace(xla=use_xla))
  estimator = estimator_lib.build_estimator(plan)
  _, eval_input = plan.task.input_fns(plan)
  return np.stack([p['predictions'] for p in estimator.predict(eval_input)])


def test_xla_trains_and_predicts_as_without_it(xla_run):
  cfg, result = xla_run
  assert result.global_step == 6 and np.isfinite(result.eval_metrics['loss'])
  compiled, plain = _predictions(cfg, True), _predictions(cfg, False)
  assert compiled.shape == plain.shape and compiled.shape[1:] == (32, 2)
  scale = np.abs(plain).max()
  assert np.abs(compiled - plain).max() <= 1e-5 * scale, (
      np.abs(compiled - plain).max(), scale)


def test_xla_compiles_clusters_on_the_cpu(xla_run):
  """The session config makes TensorFlow run compiled clusters (XlaRun ops)."""
  cfg, _ = xla_run
  plan = plan_lib.preflight(cfg)
  estimator = estimator_lib.build_estimator(plan)
  _, eval_input = plan.task.input_fns(plan)
  graph = tf.Graph()
  with graph.as_default():
    features, _ = tf.compat.v1.data.make_one_shot_iterator(eval_input()).get_next()
    spec = estimator.model_fn(features, None, tf.estimator.ModeKeys.PREDICT,
                              estimator.config)
    saver = tf.compat.v1.train.Saver()
  traced = {}
  for use_xla in (False, True):
    config = xla.session_config(tf.compat.v1.ConfigProto(), use_xla)
    with tf.compat.v1.Session(graph=graph, config=config) as session:
      saver.restore(session, estimator.latest_checkpoint())
      metadata = tf.compat.v1.RunMetadata()
      session.run(spec.predictions, options=tf.compat.v1.RunOptions(
          trace_level=tf.compat.v1.RunOptions.FULL_TRACE), run_metadata=metadata)
      traced[use_xla] = [node.node_name for device in metadata.step_stats.dev_stats
                         for node in device.node_stats]
  assert any(name.endswith('xla_run') for name in traced[True]), traced[True][:20]
  assert not any(name.endswith('xla_run') for name in traced[False])
