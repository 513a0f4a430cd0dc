"""Bad input, one line and exit 2 with model_dir untouched: the catalogue of every bad
flag, file and record a user can give, each run through the real command line.
Signals, kills and the lock: test_crash_safety.py; bad records while training, NaN and
untrusted files: test_bad_records.py.

  .venv/bin/python -m pytest -q tests/test_reliability.py
"""

import concurrent.futures
import fcntl
import os
import json

import pytest

from conftest import run_cli
from conftest import tree_digest
from estimator_pipeline import config
from estimator_pipeline.train import lock as lock_lib
from reliability_support import mount
from reliability_support import umount


_TRAIN = 'train.py'
_INSPECT = '-m estimator_pipeline.records inspect'
_LAUNCH = '-m estimator_pipeline.launch_local'

# (id, command, arguments ({data}, {bad}, {root} filled in), words the error names,
#  set-up). Each runs in its own copy of an existing model_dir holding a user file.
CATALOGUE = [
    ('glob_matches_nothing', _TRAIN, ['--train_record_path={data}/nothing-*.tfrecord'],
     'matches no file', None),
    ('glob_empty', _TRAIN, ['--train_record_path='], '--train_record_path is empty',
     None),
    ('glob_of_empty_files', _TRAIN, ['--train_record_path={bad}/empty.tfrecord'],
     'holds no record', None),
    ('directory_as_records', _TRAIN, ['--train_record_path={data}'],
     'is a directory', None),
    ('random_bytes', _TRAIN, ['--train_record_path={bad}/random.tfrecord'],
     'random.tfrecord is not a TFRecord file', None),
    ('zlib_read_uncompressed', _TRAIN, ['--train_record_path={bad}/zlib.tfrecord'],
     'zlib.tfrecord is ZLIB-compressed', None),
    ('uncompressed_read_as_zlib', _INSPECT,
     ['--compression=ZLIB', '{data}/train-00000-of-00002.tfrecord'],
     'is uncompressed TFRecords, but it is read as ZLIB', None),
    ('jpeg_that_is_text', _TRAIN, ['--train_record_path={bad}/textjpeg.tfrecord'],
     'textjpeg.tfrecord record 0: image/encoded is not an image', None),
    ('label_as_string', _TRAIN, ['--train_record_path={bad}/labelstr.tfrecord'],
     'image/class/label is a string', None),
    ('label_out_of_range_mid_file', _TRAIN,
     ['--train_record_path={bad}/label7.tfrecord', '--num_classes=3',
      '--validate_data'], 'label7.tfrecord record 3: label 7 is outside [0, 3)', None),
    ('corrupt_record_mid_file', _TRAIN,
     ['--train_record_path={bad}/corrupt.tfrecord', '--validate_data'],
     'corrupt.tfrecord record 2: bad CRC', None),
    ('num_classes_too_small', _TRAIN, ['--num_classes=2'], 'pass --num_classes=3',
     None),
    ('labels_file_malformed', _TRAIN, ['--labels_file={bad}/labels_bad.txt'],
     "labels_bad.txt line 1 is 'red'", None),
    ('unknown_model', _TRAIN, ['--model_name=resnet_v9'], 'known: alexnet_v2', None),
    ('missing_warm_start_checkpoint', _TRAIN, ['--checkpoint_path={root}/no.ckpt'],
     '--checkpoint_path=', None),
    ('warm_start_of_other_architecture', _TRAIN,
     ['--checkpoint_path={root}/lenet.ckpt'],
     'holds none of the 10 variables of this model (its variables are under LeNet)',
     None),
    ('scope_of_no_variable', _TRAIN, ['--scopes_to_freeze=CifarNet/conv9'],
     'CifarNet/conv9', None),
    ('unknown_flag', _TRAIN, ['--num_stepz=3'], 'num_stepz', None),
    ('negative_batch_size', _TRAIN, ['--batch_size=-4'], '--batch_size=-4', None),
    ('positional_argument', _TRAIN, ['runs/x'], "unexpected argument 'runs/x'", None),
    ('model_dir_of_other_model', _TRAIN, [], 'holds a model with model_name=resnet_v1_50',
     'other_model'),
    ('model_dir_config_not_json', _TRAIN, [],
     'config.json is not valid JSON (line 1, column 2', 'bad_config'),
    ('model_dir_being_trained', _TRAIN, [], 'is being trained by pid', 'locked'),
    ('read_only_model_dir', _TRAIN, [], 'read-only file system', 'read_only'),
    ('disk_too_small_for_a_checkpoint', _TRAIN, [], 'MB free', 'tiny_disk'),
    ('params_file_json_syntax', _TRAIN,
     ['--model_name=seqnn', '--params_file={bad}/params_syntax.json'],
     'params_syntax.json line 50 column 1: Expecting property name enclosed in double '
     'quotes: fix the JSON syntax', None),
    ('params_file_unknown_block', _TRAIN,
     ['--model_name=seqnn', '--params_file={bad}/params_block.json'],
     "model trunk[0]: unknown block name 'conv_blok'; known: Cropping1D", None),
    ('eval_glob_matches_nothing_with_early_stopping', _TRAIN,
     ['--eval_record_path={data}/nothing-*.tfrecord', '--early_stopping_patience=2'],
     'nothing-*.tfrecord matches no file', None),
    ('learning_rate_nan', _TRAIN, ['--learning_rate=nan'],
     '--learning_rate=nan is not a finite number', None),
    ('momentum_inf', _TRAIN, ['--momentum=inf'],
     '--momentum=inf is not a finite number', None),
    ('ps_timeout_secs_zero', _TRAIN, ['--ps_timeout_secs=0'],
     '--ps_timeout_secs=0 must be positive', None),
    ('gelu_unknown', _TRAIN, ['--model_name=seqnn', '--gelu=erf'],
     '--gelu=erf is not known; known: tanh', None),
    ('head_without_params_file', _TRAIN, ['--head=head_human'],
     '--head=head_human picks a head of --params_file, which is empty', None),
    ('clip_per_variable_negative', _TRAIN, ['--clip_gradient_norm_per_variable=-1'],
     '--clip_gradient_norm_per_variable=-1.0 must be >= 0', None),
    ('clip_per_variable_nan', _TRAIN, ['--clip_gradient_norm_per_variable=nan'],
     '--clip_gradient_norm_per_variable=nan is not a finite number', None),
    ('early_stopping_metric_of_another_model', _TRAIN,
     ['--early_stopping_metric=pearsonr', '--early_stopping_patience=2',
      '--eval_record_path={data}/validation-*.tfrecord'],
     '--early_stopping_metric=pearsonr is not an evaluation metric of '
     '--model_name=cifarnet', None),
    ('launch_local_grace_secs_nan', _LAUNCH, ['--grace_secs=nan'],
     '--grace_secs=nan must be a positive number of seconds', None),
    ('launch_local_on_a_model_dir_being_trained', _LAUNCH, [],
     'is being trained by pid', 'locked'),
]


def _setup(kind, model_dir, holders):
  """Prepares one case's model_dir; returns False if this machine cannot."""
  if kind == 'other_model':
    config.Config(model_dir=str(model_dir), model_name='resnet_v1_50',
                  num_classes=3, image_size=224).save()
  elif kind == 'bad_config':
    (model_dir / 'config.json').write_text("{'model_name': 'cifarnet'}")
  elif kind == 'locked':
    fd = os.open(str(model_dir / lock_lib.LOCK_FILE), os.O_RDWR | os.O_CREAT)
    os.write(fd, json.dumps({'pid': os.getpid(), 'host': 'here',
                             'started': 'now'}).encode())
    fcntl.flock(fd, fcntl.LOCK_EX)
    holders.append(lambda: os.close(fd))
  elif kind == 'read_only':
    # Tests run as root, whom chmod does not stop: a read-only bind mount does.
    if not mount(['--bind', str(model_dir)], model_dir):
      return False
    holders.append(lambda: umount(model_dir))
    if not mount(['-o', 'remount,ro,bind'], model_dir):
      return False
  elif kind == 'tiny_disk':
    keep = (model_dir / 'keep.txt').read_bytes()
    if not mount(['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs'], model_dir):
      return False
    holders.append(lambda: umount(model_dir))
    (model_dir / 'keep.txt').write_bytes(keep)
  return True


@pytest.fixture(scope='module')
def catalogue_results(bad_data, tmp_path_factory):
  """Runs every case at once (they are mostly start-up time); {id: outcome}."""
  root = tmp_path_factory.mktemp('catalogue')
  holders, jobs, results = [], {}, {}
  try:
    for case_id, command, args, _, kind in CATALOGUE:
      model_dir = root / case_id
      model_dir.mkdir()
      (model_dir / 'keep.txt').write_text('a user file')
      if kind and not _setup(kind, model_dir, holders):
        results[case_id] = 'cannot set up %s here (needs mount as root)' % kind
        continue
      train = {'--model_dir': str(model_dir),
               '--train_record_path': str(bad_data / 'data' / 'train-*.tfrecord'),
               '--model_name': 'cifarnet', '--num_steps': '4', '--batch_size': '4'}
      base, positional = train, []
      if command == _INSPECT:
        base = {}
      elif command == _LAUNCH:
        # The launcher's own flags, then train.py's after '--'.
        base, positional = {}, ['--'] + ['%s=%s' % kv for kv in train.items()]
      for arg in args:
        arg = arg.format(data=bad_data / 'data', bad=bad_data / 'bad', root=bad_data)
        if arg.startswith('--'):
          key, equals, value = arg.partition('=')
          base[key] = value if equals else None  # None: a bare boolean flag.
        else:
          positional.append(arg)
      argv = command.split() + [k if v is None else '%s=%s' % (k, v)
                                for k, v in base.items()] + positional
      jobs[case_id] = (argv, model_dir, tree_digest(model_dir))
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
      futures = {case_id: pool.submit(run_cli, argv)
                 for case_id, (argv, _, _) in jobs.items()}
      for case_id, future in futures.items():
        _, model_dir, before = jobs[case_id]
        results[case_id] = (future.result(), before, tree_digest(model_dir))
  finally:
    for release in reversed(holders):
      release()
  return results


@pytest.mark.parametrize('case_id,expected', [(c[0], c[3]) for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_one_line_exit_2_and_model_dir_unchanged(catalogue_results,
                                                              case_id, expected):
  outcome = catalogue_results[case_id]
  if isinstance(outcome, str):
    pytest.skip(outcome)
  proc, before, after = outcome
  assert proc.returncode == 2, (case_id, proc.stdout[-2000:], proc.stderr[-3000:])
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
  error_lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(error_lines) == 1, proc.stderr[-3000:]
  assert expected in error_lines[0], error_lines[0]
  assert after == before, 'model_dir changed'


