"""Bad records while training, NaN, and untrusted input: a NaN never replaces a good
checkpoint; a bad record is named by file and index, skipped on request and counted;
`records inspect` reports every one; flag files, config.json and converters' inputs
stay data.

  .venv/bin/python -m pytest -q tests/test_bad_records.py
"""

import glob
import os
import re
import shutil

import numpy as np
import pytest

from conftest import image_example
from conftest import run_cli
from estimator_pipeline import config
from estimator_pipeline import train
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import image_files
from estimator_pipeline.records import images as images_lib
from estimator_pipeline.records import inspect as inspect_lib
from reliability_support import good_records
from reliability_support import small_run
from reliability_support import write_records
import tensorflow as tf


# ---------------------------------------------------------------------------------
# NaN, bad records, validation and inspection (library calls: no start-up cost).


def test_nan_stops_with_the_step_and_keeps_the_last_good_checkpoint(bad_data,
                                                                    tmp_path):
  model_dir = tmp_path / 'run'
  train.run(small_run(bad_data / 'data', model_dir))
  with pytest.raises(UserError) as raised:
    train.run(small_run(bad_data / 'data', model_dir, num_steps=40,
                          learning_rate=1e12, save_checkpoints_steps=1))
  message = str(raised.value)
  assert 'lower --learning_rate' in message and '--clip_gradient_norm' in message
  step = int(re.search(r'NaN or Inf at step (\d+)', message).group(1))
  state = tf.train.get_checkpoint_state(str(model_dir))
  assert files.checkpoint_step(state.model_checkpoint_path) < step
  assert state.model_checkpoint_path in message
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    for name in reader.get_variable_to_shape_map():
      value = reader.get_tensor(name)
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        assert np.all(np.isfinite(value)), (path, name)


@pytest.fixture(scope='module')
def mixed_data(tmp_path_factory, bad_data):
  """A good shard and one with 2 bad records of 6 (an undecodable image, label 7)."""
  data = tmp_path_factory.mktemp('mixed')
  good = bad_data / 'data' / 'train-00000-of-00002.tfrecord'
  records = good_records(good)
  write_records(data / 'train-a.tfrecord', records)
  mixed = records[:6]
  mixed[2] = image_example(b'GIF89a-but-cut-off', 1, 32, 32, b'gif').SerializeToString()
  label7 = tf.train.Example.FromString(records[7])
  label7.features.feature['image/class/label'].int64_list.value[0] = 7
  mixed[4] = label7.SerializeToString()
  write_records(data / 'train-b.tfrecord', mixed)
  (data / 'labels.txt').write_text((bad_data / 'data' / 'labels.txt').read_text())
  return data


def test_first_bad_record_stops_training_with_file_and_index(mixed_data, tmp_path):
  with pytest.raises(UserError, match=r'train-b\.tfrecord record 2: the GIF image'):
    train.run(small_run(mixed_data, tmp_path / 'run', num_steps=30))


def test_skip_corrupt_records_trains_and_counts(mixed_data, tmp_path, capfd):
  result = train.run(small_run(mixed_data, tmp_path / 'run', num_steps=20,
                                 skip_corrupt_records=True, validate_data=True))
  err = capfd.readouterr().err
  assert result.global_step == 20
  # --validate_data's report: counts per label, sizes, formats, each bad record.
  assert 'labels: 0: 10, 1: 9, 2: 9' in err
  assert 'sizes (width x height): 32x32 28' in err and 'formats: png 28' in err
  assert 'train-b.tfrecord record 2: the GIF image' in err
  assert 'train-b.tfrecord record 4: label 7 is outside [0, 3)' in err
  # 2 of every 30 records are bad; each batch of 8 is whole.
  used = 20 * 8
  assert result.records_read - result.skipped_records == used
  assert 2 * (used // 28) <= result.skipped_records <= 2 * (used // 28 + 1)
  assert ('skipped %d of %d training records' % (result.skipped_records,
                                                 result.records_read)) in err


def test_inspect_cli_reports_everything_and_every_bad_record(bad_data, mixed_data):
  proc = run_cli(['-m', 'estimator_pipeline.records', 'inspect',
                  str(mixed_data / 'train-*.tfrecord'),
                  str(bad_data / 'bad' / 'corrupt.tfrecord'),
                  str(bad_data / 'bad' / 'zlib.tfrecord')])
  assert proc.returncode == 2, proc.stderr[-2000:]
  out = proc.stdout
  assert '%s: 24 records, ZLIB' % (bad_data / 'bad' / 'zlib.tfrecord') in out
  assert 'bad: %s record 2: bad CRC' % (bad_data / 'bad' / 'corrupt.tfrecord') in out
  assert 'bad: %s record 2: the GIF image' % (mixed_data / 'train-b.tfrecord') in out
  assert 'bad: %s record 4: label 7 is outside [0, 3)' % (
      mixed_data / 'train-b.tfrecord') in out
  # Records after a bad CRC are still read: 24 - 1 good in corrupt.tfrecord.
  assert '78 records in 4 files (image layout), 3 bad' in out
  assert 'labels: 0: 26, 1: 25, 2: 24' in out and 'formats: png 75' in out
  error_lines = [l for l in proc.stderr.splitlines() if l.startswith('error:')]
  assert len(error_lines) == 1 and '3 bad records in 4 files' in error_lines[0]

  clean = inspect_lib.inspect_files(
      sorted(glob.glob(str(bad_data / 'data' / 'train-*'))), 'image', num_classes=3)
  assert clean.num_bad == 0 and clean.num_records == 48
  assert clean.checker.labels == {0: 16, 1: 16, 2: 16}


def test_truncated_file_is_named(bad_data, tmp_path):
  good = open(bad_data / 'data' / 'train-00001-of-00002.tfrecord', 'rb').read()
  (tmp_path / 'cut.tfrecord').write_bytes(good[:-500])
  report = inspect_lib.inspect_files([str(tmp_path / 'cut.tfrecord')], 'image',
                                     num_classes=3)
  assert [(b.index, b.problem) for b in report.bad] == [
      (23, 'truncated: the file ends inside record 23')]



# ---------------------------------------------------------------------------------
# Untrusted input stays data.


def test_flag_file_is_parsed_never_executed(tmp_path):
  marker = tmp_path / 'executed'
  flagfile = tmp_path / 'flags.txt'
  flagfile.write_text("__import__('os').system('touch %s')\n"
                      "--model_name=$(touch %s)\n--num_steps=4\n" % (marker, marker))
  proc = run_cli(['train.py', '--flagfile=%s' % flagfile,
                  '--model_dir=%s' % (tmp_path / 'run'),
                  '--train_record_path=%s' % (tmp_path / 'none-*')])
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert not marker.exists()


def test_config_json_is_parsed_never_executed(tmp_path):
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  (model_dir / 'config.json').write_text("{'model_name': __import__('os').getcwd()}")
  with pytest.raises(UserError, match=r'config.json is not valid JSON \(line 1, '
                                      r'column 2'):
    config.load(str(model_dir))


def _photo_folder(root):
  rng = np.random.RandomState(0)
  for name in ('cats', 'dogs'):
    (root / name).mkdir(parents=True)
    for i in range(3):
      (root / name / ('%d.png' % i)).write_bytes(
          tf.io.encode_png(rng.randint(0, 255, (8, 8, 3)).astype(np.uint8)).numpy())


def test_converter_refuses_symlinks_out_of_the_input_folder(tmp_path):
  photos = tmp_path / 'photos'
  _photo_folder(photos)
  outside = tmp_path / 'elsewhere'
  _photo_folder(outside)
  (photos / 'cats' / 'link.png').symlink_to(photos / 'dogs' / '0.png')  # Inside: fine.
  images_lib.convert_image_folder(str(photos), str(tmp_path / 'ok'), progress=False)

  (photos / 'birds').symlink_to(outside / 'cats')
  with pytest.raises(UserError, match='class folder .*birds is a symlink to .*'
                                      'outside --image_dir'):
    images_lib.convert_image_folder(str(photos), str(tmp_path / 'out1'),
                                    progress=False)
  (photos / 'birds').unlink()
  (photos / 'dogs' / 'secret.png').symlink_to(outside / 'dogs' / '1.png')
  with pytest.raises(UserError, match='image .*secret.png is a symlink to .*outside'):
    images_lib.convert_image_folder(str(photos), str(tmp_path / 'out2'),
                                    progress=False)
  for name in ('../x', '..', 'a/b'):
    with pytest.raises(UserError, match='not a plain folder name'):
      image_files.check_class_name(name, str(photos))


def test_converter_writes_only_inside_output_dir(tmp_path):
  photos = tmp_path / 'photos'
  _photo_folder(photos)
  victim = tmp_path / 'victim.txt'
  victim.write_text('precious')
  out = tmp_path / 'out'
  out.mkdir()
  # A planted symlink at the name the converter writes first must not be followed.
  (out / 'train-00000-of-00001.tfrecord.tmp').symlink_to(victim)
  (out / 'labels.txt.tmp').symlink_to(victim)
  before = {p for p in tmp_path.rglob('*') if out not in p.parents and p != out}
  images_lib.convert_image_folder(str(photos), str(out), num_shards=1,
                                  validation_fraction=0, progress=False)
  after = {p for p in tmp_path.rglob('*') if out not in p.parents and p != out}
  assert after == before and victim.read_text() == 'precious'
  assert sorted(os.listdir(out)) == ['labels.txt', 'train-00000-of-00001.tfrecord']




def test_skip_count_is_exact_for_training_and_evaluation(bad_data, tmp_path, capfd):
  data = tmp_path / 'data'
  data.mkdir()
  # 24 records each: a bad CRC at record 2 (the 21 after it are still read), and a
  # file cut inside its last record (23 good, then the broken framing).
  shutil.copy(bad_data / 'bad' / 'corrupt.tfrecord', data / 'a-corrupt.tfrecord')
  good = open(bad_data / 'data' / 'train-00001-of-00002.tfrecord', 'rb').read()
  (data / 'b-cut.tfrecord').write_bytes(good[:-500])
  (data / 'labels.txt').write_text((bad_data / 'data' / 'labels.txt').read_text())
  pattern = str(data / '*.tfrecord')
  result = train.run(small_run(data, tmp_path / 'run', train_record_path=pattern,
                               eval_record_path=pattern, num_steps=8,
                               skip_corrupt_records=True))
  err = capfd.readouterr().err
  # Evaluation reads every record once: 48, of which 2 are skipped.
  assert (result.eval_skipped_records, result.eval_records_read) == (2, 48)
  assert 'skipped 2 of 48 evaluation records in the last evaluation' in err
  # Training: 64 records batched; every 48 read hold 2 bad ones.
  used = 8 * 8
  assert result.records_read - result.skipped_records == used
  read = result.records_read
  assert 2 * (read // 48) <= result.skipped_records <= 2 * (read // 48 + 1), result
  assert ('skipped %d of %d training records' % (result.skipped_records, read)) in err
  assert result.unreadable == ('%s record 23: truncated: the file ends inside record '
                               '23' % (data / 'b-cut.tfrecord'),)
  assert 'could not read past %s' % result.unreadable[0] in err
