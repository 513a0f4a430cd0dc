"""--xla: SeqNN training examples/sec with XLA auto-clustering against without it.

Three models, each trained by this project's full path (train.py's, with the sequence
benchmark's tuned flags) from basenji-layout records, `pipeline` and `pipeline_xla`
interleaved in one process, the ratio taken per repeat:

- `small`: basenji's params_small.json at 131072 bp (bench/sequence.py);
- `basenji2`: Basenji2's cross2020 params_human.json (288-1536 filters, 11 dilated
  residual blocks, 5313 targets) at 32768 bp, the length that fits 2 cores;
- `transformer`: Enformer's params_enformer.json shrunk (a quarter of the filters, 2 of
  its 8 transformer blocks, 16 targets) at 16384 bp.

  python -m bench --only=xla        # about 15 minutes on 2 cores
"""

import json
import os

from bench import common
from bench import sequence
from bench import training
from estimator_pipeline import config as config_lib

DATA = os.path.join(common.REPO, 'tests', 'data', 'basenji', 'params', 'basenji',
                    'manuscripts')


def basenji2_params(seq_length):
  with open(os.path.join(DATA, 'cross2020', 'params_human.json')) as f:
    params = json.load(f)
  params['model']['seq_length'] = seq_length
  params['model'].pop('target_length', None)
  return params


def transformer_params(seq_length, targets=16):
  """Enformer's params at a quarter of the filters, 2 transformer blocks, 16 targets."""
  with open(os.path.join(DATA, 'enformer', 'params_enformer.json')) as f:
    params = json.load(f)
  model = params['model']
  model['seq_length'] = seq_length
  model['norm_type'] = 'batch'  # One replica: the same numbers as batch-sync.
  trunk = model['trunk']
  trunk[0]['filters'] = 128
  trunk[1].update(filters_init=152, filters_end=384)
  trunk[2]['repeat'] = 2
  trunk[3]['cropping'] = seq_length // 128 // 8
  trunk[4]['filters'] = 576
  model['head'] = dict(model.pop('head_human'), units=targets)
  model.pop('head_mouse')
  params['train']['batch_size'] = 2
  return params


def target_shape(params):
  """(targets, bins) of a record for params: the head's units, the cropped length."""
  model = params['model']
  head = model.get('head') or model['head_human']
  crop = sum(2 * b.get('cropping', 0) for b in model['trunk']
             if b['name'] == 'Cropping1D')
  return head['units'], model['seq_length'] // sequence.POOL - crop


def _bench_model(name, params, work_dir, warmup, steps, repeats, count):
  os.makedirs(work_dir, exist_ok=True)
  params_file = os.path.join(work_dir, 'params.json')
  with open(params_file, 'w') as f:
    json.dump(params, f)
  units, target_length = target_shape(params)
  seq_length = params['model']['seq_length']
  records = sequence.write_records(os.path.join(work_dir, 'data'), count, seq_length,
                                   units, target_length=target_length)
  batch = params['train']['batch_size']
  counter = [0]

  def run(**flags):
    counter[0] += 1
    cfg = config_lib.Config(
        model_dir=os.path.join(work_dir, 'run%d' % counter[0]),
        train_record_path=records, model_name='seqnn', params_file=params_file,
        batch_size=batch, num_steps=warmup + steps,
        save_checkpoints_steps=warmup + steps, log_every_steps=50,
        **dict(sequence.TUNED_FLAGS, **flags))
    return training.run_pipeline(cfg, warmup)

  common.log('xla %s: %d bp, %d targets, batch %d, %d warm-up + %d steps'
             % (name, seq_length, units, batch, warmup, steps))
  raw = common.interleave({'pipeline': run, 'pipeline_xla': lambda: run(xla=True)},
                          repeats, log=common.log)
  results = {v + '_examples_per_sec': common.stats(raw[v]) for v in raw}
  results['xla_vs_pipeline_ratio'] = common.stats(
      common.ratios(raw['pipeline_xla'], raw['pipeline']))
  results['setup'] = '%d bp, %d targets, batch %d, flags %s' % (
      seq_length, units, batch, sequence.TUNED_FLAGS)
  return results


def run(work_dir, toy=False, repeats=3):
  if toy:
    # XLA compiles the whole train step first (tens of seconds even for a toy model):
    # tests/test_xla.py trains with --xla, sees the clusters run and checks the numbers.
    return {'xla_small': {'toy': 'skipped at toy size (tests/test_xla.py covers --xla)'}}
  small = json.loads(json.dumps(sequence.PARAMS_SMALL))
  return {
      'xla_small': _bench_model('small', small, os.path.join(work_dir, 'small'), 3, 12,
                                repeats, 32),
      'xla_basenji2': _bench_model('basenji2', basenji2_params(32768),
                                   os.path.join(work_dir, 'basenji2'), 2, 6, repeats,
                                   16),
      'xla_transformer': _bench_model('transformer', transformer_params(16384),
                                      os.path.join(work_dir, 'transformer'), 2, 8,
                                      repeats, 16),
  }
