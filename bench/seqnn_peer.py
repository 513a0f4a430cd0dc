"""SeqNN training against baskerville's own trainer: same params file, records, batch.

Three trainers of the same params file on the same basenji-layout records, each in a
process of its own, interleaved over the repeats, with TF_ENABLE_ONEDNN_OPTS=0
(Eigen's kernels) and =1 (oneDNN's), for two models: basenji's params_small.json at
131072 bp (`small`) and Basenji2's cross2020 params_human.json at 32768 bp, the length
that fits 2 cores (`basenji2`: 288-1536 filters, 11 dilated residual blocks, 5313
targets; its one head as `head`, which both trainers read alike):

- `pipeline`: this project's train.py path (bench/training.run_pipeline), with the
  sequence benchmark's tuned flags;
- `keras_fit`: hound_train.py --keras_fit: baskerville's Trainer.fit_keras;
- `tape`: hound_train.py without it: Trainer.fit_tape, its tf.GradientTape loop.

baskerville runs in a virtualenv of its own that this benchmark makes once, under
$BENCH_CACHE_DIR (default ~/.cache/estimator-pipeline-bench), from exact pins:
TensorFlow 2.15.1 (the project's) and baskerville at commit 544073b, installed from
$BENCH_BASKERVILLE_SOURCE (default its git repository at that commit; a local
checkout of that commit works too). The project never imports baskerville: the peer
runs bench/peer_baskerville.py in that virtualenv, which times baskerville's own
training loop step by step. Without the virtualenv and no way to make it, the
benchmark says why and writes no figure.

  python -m bench --only=seqnn_peer          # about 25 minutes on 2 cores
  BENCH_BASKERVILLE_SOURCE=~/src/baskerville python -m bench --only=seqnn_peer
"""

import json
import os
import subprocess
import sys

from bench import common

COMMIT = '544073b87245d9f43ba63442c75bdbf32a9f8720'
SOURCE = 'git+https://github.com/calico/baskerville@' + COMMIT
# What baskerville's training imports (hound_train.py, dataset, seqnn, trainer), at
# the versions the project runs, so only the trainers differ.
PINS = ('tensorflow==2.15.1', 'numpy==1.26.4', 'protobuf==4.25.9', 'pandas==3.0.6',
        'scipy==1.17.1', 'h5py==3.16.0', 'natsort==7.1.1',
        'google-cloud-storage==2.0.0')
VARIANTS = ('pipeline', 'keras_fit', 'tape')


def cache_dir():
  return os.environ.get('BENCH_CACHE_DIR') or os.path.join(
      os.path.expanduser('~'), '.cache', 'estimator-pipeline-bench')


def peer_python():
  """The peer virtualenv's python, made on first use; raises RuntimeError with why."""
  env_dir = os.path.join(cache_dir(), 'baskerville-' + COMMIT[:7])
  python = os.path.join(env_dir, 'bin', 'python')
  ready = os.path.join(env_dir, '.ready')
  if os.path.exists(ready):
    return python
  source = os.environ.get('BENCH_BASKERVILLE_SOURCE') or SOURCE
  common.log('making the baskerville virtualenv in %s (once; TensorFlow is a large '
             'download)' % env_dir)
  env = dict(os.environ, SETUPTOOLS_SCM_PRETEND_VERSION='0.0.0+' + COMMIT[:7])
  steps = ([sys.executable, '-m', 'venv', env_dir],
           [python, '-m', 'pip', 'install', '--quiet'] + list(PINS),
           [python, '-m', 'pip', 'install', '--quiet', '--no-deps', source])
  for step in steps:
    done = subprocess.run(step, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
      raise RuntimeError('could not make the baskerville virtualenv (%s): %s' % (
          ' '.join(step[:4]), done.stderr.strip()[-600:]))
  open(ready, 'w').close()
  return python


def write_data(directory, count, params):
  """basenji-layout train and valid records as baskerville's SeqDataset reads them."""
  from bench import sequence  # pylint: disable=g-import-not-at-top
  from bench import xla  # pylint: disable=g-import-not-at-top
  units, target_length = xla.target_shape(params)
  sequence.write_records(os.path.join(directory, 'tfrecords'), count,
                         params['model']['seq_length'], units,
                         target_length=target_length)
  records = os.path.join(directory, 'tfrecords')
  # One valid file (hound_train.py builds an evaluation set) and baskerville's keys.
  with open(os.path.join(records, 'train-0.tfr'), 'rb') as f:
    data = f.read()
  with open(os.path.join(records, 'valid-0.tfr'), 'wb') as f:
    f.write(data)
  with open(os.path.join(records, 'statistics.json')) as f:
    stats = json.load(f)
  os.remove(os.path.join(records, 'statistics.json'))
  stats.update(seq_1hot=True, valid_seqs=count)
  with open(os.path.join(directory, 'statistics.json'), 'w') as f:
    json.dump(stats, f)
  with open(os.path.join(directory, 'targets.txt'), 'w') as f:
    f.write('\tidentifier\tfile\tclip\tscale\tsum_stat\tdescription\n')
    f.writelines('%d\tt%d\tt%d.bw\t32\t1\tsum\tt%d\n' % (i, i, i, i)
                 for i in range(units))
  return directory


def ours(data_dir, params_file, warmup, steps, model_dir):
  """Child: this project's training path; prints {"examples_per_sec": ...}."""
  import estimator_pipeline  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from bench import sequence  # pylint: disable=g-import-not-at-top
  from bench import training  # pylint: disable=g-import-not-at-top
  from estimator_pipeline import config as config_lib  # pylint: disable=g-import-not-at-top
  with open(params_file) as f:
    batch = json.load(f)['train']['batch_size']
  cfg = config_lib.Config(
      model_dir=model_dir, model_name='seqnn', params_file=params_file,
      train_record_path=os.path.join(data_dir, 'tfrecords', 'train-*.tfr'),
      batch_size=batch, num_steps=warmup + steps, save_checkpoints_steps=warmup + steps,
      log_every_steps=50, **sequence.TUNED_FLAGS)
  print(json.dumps({'examples_per_sec': training.run_pipeline(cfg, warmup)}))


def _child(command, onednn):
  env = common.python_env()
  env['TF_ENABLE_ONEDNN_OPTS'] = onednn
  done = subprocess.run(command, cwd=common.REPO, env=env, capture_output=True,
                        text=True, check=False)
  if done.returncode:
    raise RuntimeError('%s failed (exit %d): %s' % (' '.join(command[:4]),
                                                    done.returncode,
                                                    done.stderr[-2000:]))
  return json.loads(done.stdout.strip().splitlines()[-1])['examples_per_sec']


def models():
  """name -> (params, records, warm-up steps, measured steps) of the two models."""
  from bench import sequence  # pylint: disable=g-import-not-at-top
  from bench import xla  # pylint: disable=g-import-not-at-top
  basenji2 = xla.basenji2_params(32768)
  basenji2['model']['head'] = basenji2['model'].pop('head_human')
  # About 0.3 s (small) and 3 s (basenji2) a step on 2 cores with oneDNN.
  return {'small': (json.loads(json.dumps(sequence.PARAMS_SMALL)), 32, 3, 12),
          'basenji2': (basenji2, 16, 2, 6)}


def _bench_model(name, peer, work_dir, params, count, warmup, steps, repeats):
  os.makedirs(work_dir, exist_ok=True)
  params_file = os.path.join(work_dir, 'params.json')
  with open(params_file, 'w') as f:
    json.dump(params, f)
  data_dir = write_data(os.path.join(work_dir, 'data'), count, params)
  counter = [0]

  def fresh(run_name):
    counter[0] += 1
    return os.path.join(work_dir, '%s%d' % (run_name, counter[0]))

  def variants(onednn):
    driver = os.path.join(common.REPO, 'bench', 'peer_baskerville.py')
    peer_args = [params_file, data_dir, str(warmup), str(steps)]
    return {
        'pipeline': lambda: _child([sys.executable, '-m', 'bench.seqnn_peer', 'ours',
                                    data_dir, params_file, str(warmup), str(steps),
                                    fresh('ours')], onednn),
        'keras_fit': lambda: _child([peer, driver, 'fit', fresh('fit')] + peer_args,
                                    onednn),
        'tape': lambda: _child([peer, driver, 'tape', fresh('tape')] + peer_args,
                               onednn),
    }
  out = {}
  for onednn in ('0', '1'):
    common.log('seqnn_peer %s: %d bp, batch %d, %d warm-up + %d steps, '
               'TF_ENABLE_ONEDNN_OPTS=%s' % (name, params['model']['seq_length'],
                                             params['train']['batch_size'], warmup,
                                             steps, onednn))
    raw = common.interleave(variants(onednn), repeats, log=common.log)
    results = {v + '_examples_per_sec': common.stats(raw[v]) for v in raw}
    for peer_name in ('keras_fit', 'tape'):
      results['pipeline_vs_%s_ratio' % peer_name] = common.stats(
          common.ratios(raw['pipeline'], raw[peer_name]))
    results['pipeline_vs_faster_peer_ratio'] = common.stats(
        [p / max(k, t) for p, k, t in zip(raw['pipeline'], raw['keras_fit'],
                                          raw['tape'])])
    # The small model's keys keep their names from before the second model.
    prefix = 'seqnn_peer' if name == 'small' else 'seqnn_peer_' + name
    out['%s_onednn%s' % (prefix, onednn)] = results
  return out


def run(work_dir, toy=False, repeats=3):
  from bench import sequence  # pylint: disable=g-import-not-at-top
  if toy:
    # The peer's virtualenv is a large download: make bench runs this, tests do not.
    return {'seqnn_peer': {'toy': 'skipped at toy size (needs the peer virtualenv)'}}
  try:
    peer = peer_python()
  except RuntimeError as e:
    common.log('seqnn_peer: %s' % e)
    return {'seqnn_peer': {'skipped': str(e)}}
  out = {}
  setup = {}
  for name, (params, count, warmup, steps) in models().items():
    out.update(_bench_model(name, peer, os.path.join(work_dir, name), params, count,
                            warmup, steps, repeats))
    setup[name] = ('%d bp, %d targets, batch %d, %d warm-up + %d measured steps, %d '
                   'records' % (params['model']['seq_length'],
                                params['model']['head']['units'],
                                params['train']['batch_size'], warmup, steps, count))
  out['seqnn_peer'] = dict(setup, baskerville=COMMIT[:7],
                           pipeline_flags=str(sequence.TUNED_FLAGS))
  return out


if __name__ == '__main__':
  ours(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
