"""Every 1D params file of calico/basenji and calico/baskerville builds here with the
trainable parameters basenji's own SeqNN gives; the rules for their keys and heads.

  .venv/bin/python -m pytest -q tests/test_seqnn_params_files.py

tests/data/basenji/params/param_counts.tsv was written by basenji's and baskerville's
own code (tests/data/basenji/README.md). Graphs are built, never initialized, at the
files' own lengths; files whose model sections are identical (the transfer variants of
one architecture) share one build.
"""

import csv
import json
import os

import pytest

from conftest import REPO
from conftest import run_cli
import estimator_pipeline  # noqa: F401  (compat fixes before TF)

from estimator_pipeline import config
from estimator_pipeline import models
from estimator_pipeline.config import params as params_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.models import overview
from estimator_pipeline.models.image import describe as image_describe
from estimator_pipeline.models.seqnn import describe as seqnn_describe

DATA = os.path.join(REPO, 'tests', 'data', 'basenji')
PARAMS = os.path.join(DATA, 'params')


def _table():
  with open(os.path.join(PARAMS, 'param_counts.tsv')) as f:
    return [row for row in csv.DictReader(f, delimiter='\t')
            if row['output_shape'] != 'BUILD FAILED']


def _path(row):
  return os.path.join(PARAMS, row['repo'], row['params_file'])


def test_every_published_params_file_builds_with_basenjis_parameter_count():
  rows = _table()
  assert len(rows) == 25
  built, checked = {}, []
  for row in rows:
    params = params_lib.load(_path(row))  # every file loads as it is
    _, head = params_lib.select_head(params)
    assert head == row['head'], row['params_file']
    key = json.dumps(params['model'], sort_keys=True)
    if key not in built:
      built[key] = seqnn_describe.sequence_overview(models.get('seqnn'),
                                                    _path(row))[0]
    found = built[key]
    checked.append((row['params_file'], found.trainable, str(found.output_shape)))
    assert (found.trainable, str(found.output_shape)) == (
        int(row['trainable_parameters']), row['output_shape']), row['params_file']
  assert len(built) == 11 and len(checked) == 25


def test_summary_command_prints_blocks_field_and_count():
  done = run_cli(['-m', 'estimator_pipeline.models', '--model_name=seqnn',
                  '--params_file=' + os.path.join(DATA, 'baskerville_params.json'),
                  '--head=head_mouse', '--seq_length=8192'])
  assert done.returncode == 0, done.stderr[-2000:]
  lines = done.stdout.splitlines()
  assert 'head_mouse, 8192 bp' in lines[0]
  assert lines[1].split() == ['block', 'output', 'shape', 'trainable', 'parameters']
  rows = {line.split()[0]: line.split()[1:] for line in lines[2:-2]}
  assert rows['trunk/conv_dna_0'] == ['(None,1024,32)', '928']
  assert rows['trunk/transformer_tower_2'][0] == '(None,64,64)'
  assert rows['head/final_0'] == ['(None,192,32)', str(64 * 32 + 32)]
  # Attention sees the whole input; 614 bp is the conv tower's field before it.
  assert lines[-2].startswith('receptive field: every position of the 8192 bp input')
  assert '614 bp before that' in lines[-2]
  assert lines[-1] == 'trainable parameters: %d' % (114442 - 4810 + 64 * 32 + 32)


def test_summary_of_a_slim_net_and_a_conv_only_field():
  found = image_describe.image_overview(models.get('cifarnet'), num_classes=10)
  assert [r[0] for r in found.rows][:2] == ['CifarNet/conv1', 'CifarNet/pool1']
  # conv 5 -> pool 2 -> conv 5 -> pool 2: 5, 6 (jump 2), 14, 16; then flattened.
  assert found.receptive_field == overview.WHOLE and found.largest_finite == 16
  assert found.trainable == 4864 + 102464 + 1573248 + 73920 + 1930
  tutorial, _ = seqnn_describe.sequence_overview(
      models.get('seqnn'), os.path.join(DATA, 'basenji_params.json'))
  # 15 -> pool 8 -> 2 x (5, pool 4) -> 6 dilated 3-wide convs, rates 1..32.
  assert tutorial.receptive_field == 22 + 4 * 8 + 3 * 8 + 4 * 32 + 3 * 32 + 2 * 63 * 128
  assert overview.lines(tutorial)[-1] == 'trainable parameters: 109235'


def test_head_defaults_to_basenjis_and_a_wrong_head_lists_the_heads():
  params = params_lib.load(os.path.join(DATA, 'baskerville_params.json'))
  chosen, head = params_lib.select_head(params)
  assert head == 'head_human' and chosen['model']['head']['units'] == 74
  assert 'head_mouse' not in chosen['model']
  _, head = params_lib.select_head(params, 'head_mouse')
  assert head == 'head_mouse'
  with pytest.raises(UserError) as e:
    params_lib.select_head(params, 'head_dog')
  assert str(e.value) == ('--head=head_dog names no head of the params file; its '
                          'heads: head_human, head_mouse.')
  # Natural order: head_2 before head_10, as basenji's natsorted.
  assert params_lib.head_names({'head_10': 1, 'head_2': 1, 'trunk': []}) == [
      'head_2', 'head_10']


@pytest.mark.parametrize('path, words', [
    ('basenji/manuscripts/akita/params.json',
     ['model head_hic[0]: block one_to_two is not supported',
      '2D models are not supported']),
    ('basenji/manuscripts/saluki/params.json',
     ['rnn_type', 'recurrent models are not supported']),
])
def test_akita_and_saluki_are_refused_naming_the_block(path, words):
  with pytest.raises(UserError) as e:
    params_lib.load(os.path.join(PARAMS, path))
  message = str(e.value)
  assert '\n' not in message
  for word in words:
    assert word in message, message


def test_keys_basenji_ignores_are_listed_and_misspelled_keys_refused():
  lite = params_lib.load(os.path.join(
      PARAMS, 'baskerville/tests/data/transfer/json/borzoilite_262k.json'))
  notes = dict(params_lib.not_applied(lite))
  assert set(notes) == {'model.trunk[2] (transformer_tower).adapter',
                        'model.trunk[2] (transformer_tower).latent'}
  borzoi = params_lib.load(os.path.join(PARAMS, 'baskerville/docs/transfer_human/'
                                        'params.json'))
  # The transfer section is applied (tests/test_seqnn_transfer.py).
  assert 'transfer' not in dict(params_lib.not_applied(borzoi))
  _, skipped = params_lib.train_values(borzoi, set(config.Config.field_names()))
  assert set(dict(skipped)) == {'train_epochs_min', 'train_epochs_max'}
  # A global basenji would pass to a block that cannot take it (basenji stops).
  with_l1 = json.loads(json.dumps(lite))
  with_l1['model']['l1_scale'] = 1e-6
  assert 'model.l1_scale' in dict(params_lib.not_applied(with_l1))
  lite['model']['trunk'][2]['key_sise'] = 64
  with pytest.raises(UserError) as e:
    params_lib.check(lite, 'lite.json')
  assert 'trunk[2] (transformer_tower): unknown key key_sise' in str(e.value)


def test_train_section_follows_basenjis_trainer():
  enformer = params_lib.load(os.path.join(PARAMS, 'basenji/manuscripts/enformer/'
                                          'params_enformer.json'))
  cfg = config.Config(params_file=os.path.join(PARAMS, 'basenji/manuscripts/enformer/'
                                               'params_enformer.json'),
                      eval_record_path='data/valid-*.tfr')
  resolved, _, _ = params_lib.resolve_config(cfg)
  assert (resolved.optimizer, resolved.adam_epsilon) == ('adam', 1e-7)  # Keras' Adam
  assert resolved.clip_gradient_norm == 0.15  # global_clipnorm
  assert resolved.clip_gradient_norm_per_variable == 0
  assert (resolved.batch_size, resolved.shuffle_buffer_size) == (2, 256)
  assert resolved.warmup_steps == 20000 and resolved.early_stopping_patience == 30
  assert enformer['model']['norm_type'] == 'batch-sync'
  human = config.Config(params_file=os.path.join(PARAMS, 'basenji/manuscripts/'
                                                 'cross2020/params_human.json'))
  resolved, _, skipped = params_lib.resolve_config(human)
  # Without evaluation records there is nothing for patience to count.
  assert resolved.early_stopping_patience == 0 and 'patience' in dict(skipped)
  # basenji's clip_norm is Keras' clipnorm: each variable's gradient on its own.
  assert (resolved.clip_gradient_norm_per_variable, resolved.clip_gradient_norm) == (
      2, 0.0)
  assert (resolved.optimizer, resolved.momentum, resolved.decay_rate) == (
      'momentum', 0.99, 1.0)
