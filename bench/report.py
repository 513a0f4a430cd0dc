"""results.json -> RESULTS.md: machine, versions, date, every figure as min/median/max.

The changes section (bench/CHANGES.md, written by hand) keeps the before/after figures
of each speed change; it is copied into RESULTS.md as it is.

  python -c "import json; from bench import report; \
print(report.markdown(json.load(open('bench/results.json'))))"
"""

import os

# (section key, title, goals: {ratio key: (op, bound, text)})
SECTIONS = (
    ('input_pipeline', '1. Input pipeline (images/sec, 300x400 JPEG -> 224x224)', {
        'eval_vs_ceiling_ratio': ('>=', 0.95, 'evaluation path >= 0.95 of its ceiling'),
        'train_vs_keras_ratio': ('>=', 1.3, 'training path >= 1.3x Keras'),
    }),
    ('training_small_cnn', '2a. Training throughput, small CNN (cifarnet 32x32, batch 64)', {
        'pipeline_tuned_vs_keras_ratio': ('>=', 1.2, 'tuned pipeline >= 1.2x Keras'),
        'pipeline_tuned_vs_ceiling_ratio': ('>=', 0.8, 'tuned pipeline >= 0.8 of ceiling'),
    }),
    ('training_resnet_v1_50', '2b. Training throughput, resnet_v1_50 (224x224, batch 16)', {
        'pipeline_vs_ceiling_ratio': ('>=', 0.95, 'pipeline >= 0.95 of ceiling'),
    }),
    ('sequence', '3. Sequence model (SeqNN, params_small.json, 131072 bp)', {
        'pipeline_vs_ceiling_ratio': ('>=', 0.9, 'pipeline >= 0.9 of ceiling'),
    }),
    ('startup', '4. Start-up (seconds)', {}),
    ('scale', '5. Scale (input pipeline records/sec and peak RSS, 1x/4x/16x data)', {
        'peak_rss_16x_vs_1x_ratio': ('<=', 1.1, 'peak memory flat: 16x/1x <= 1.1'),
    }),
    ('genome', '6. Genome data preparation (records sequences: 1x and 16x genomes, two '
     'bigWig tracks, 131072 bp windows)', {
         'peak_rss_16x_vs_1x_ratio': ('<=', 1.15, 'peak memory flat: 16x/1x <= 1.15'),
         'worker_peak_rss_16x_vs_1x_ratio': ('<=', 1.15,
                                             'workers\' peak memory flat: <= 1.15'),
         'processes_2_vs_1_ratio': ('>=', 1.6, '2 processes >= 1.6x one'),
         'pipeline_vs_read_only_ratio': ('>=', 0.7, 'writing >= 0.7 of read-only'),
     }),
    ('variants', '7. Variant scoring (export.variants, variants/sec, 4096 bp SeqNN)', {
        'pipeline_vs_ceiling_ratio': ('>=', 0.8, 'scoring >= 0.8 of its ceiling'),
    }),
    ('variant_scores', '7b. Variant scoring as baskerville (export.variants '
     '--format=baskerville --cluster_pct, variants/sec, 4096 bp stranded model)', {
         'pipeline_vs_ceiling_ratio': ('>=', 0.8, 'scoring >= 0.8 of its ceiling'),
         'command_vs_baskerville_ratio': ('>=', 1.5, ">= 1.5x baskerville's "
                                          'hound_snp.py'),
     }),
    ('mutagenesis', '8. Saturation mutagenesis (sequences/sec, reference basenji model, '
     'rc + shifts ensemble)', {
         'pipeline_vs_ceiling_ratio': ('>=', 0.8, 'mutagenesis >= 0.8 of ceiling'),
     }),
    ('attribution', '9. Attributions (export.attribution, sequences/sec, reference '
     'basenji model)', {
         'ig_vs_ceiling_ratio': ('>=', 0.8, 'ig (50 steps) >= 0.8 of ceiling'),
         'deepshap_vs_ceiling_ratio': ('>=', 0.8,
                                       'deepshap (10 references) >= 0.8 of ceiling'),
     }),
    ('memory', '10. Memory of one Borzoi training step (borzoi_full.json, batch 1, '
     'CPU), without and with --recompute_trunk', {
         'recompute_vs_plain_memory_ratio': ('<=', 0.7, 'recompute <= 0.7 of the '
                                             'peak RSS'),
         'recompute_vs_plain_time_ratio': ('<=', 1.4, 'recompute <= 1.4x the time'),
     }),
    ('xla_small', '11a. --xla, SeqNN params_small.json (131072 bp): examples/sec with '
     'and without', {}),
    ('xla_basenji2', '11b. --xla, Basenji2 params_human.json (32768 bp)', {}),
    ('xla_transformer', '11c. --xla, Enformer params shrunk (16384 bp)', {}),
    ('seqnn_peer', '12. SeqNN training against baskerville\'s trainer (hound_train.py: '
     'Keras fit and its tape loop), same params file, records and batch', {}),
    ('seqnn_peer_onednn0', '12a. ... params_small.json (131072 bp), with '
     'TF_ENABLE_ONEDNN_OPTS=0 (Eigen)', {
        'pipeline_vs_faster_peer_ratio': ('>=', 1.2, 'train.py >= 1.2x the faster peer'),
    }),
    ('seqnn_peer_onednn1', '12b. ... params_small.json (131072 bp), with '
     'TF_ENABLE_ONEDNN_OPTS=1 (oneDNN)', {
        'pipeline_vs_faster_peer_ratio': ('>=', 1.2, 'train.py >= 1.2x the faster peer'),
    }),
    ('seqnn_peer_basenji2_onednn0', '12c. ... Basenji2 params_human.json (32768 bp), '
     'with TF_ENABLE_ONEDNN_OPTS=0 (Eigen)', {
         'pipeline_vs_faster_peer_ratio': ('>=', 1.2,
                                           'train.py >= 1.2x the faster peer'),
     }),
    ('seqnn_peer_basenji2_onednn1', '12d. ... Basenji2 params_human.json (32768 bp), '
     'with TF_ENABLE_ONEDNN_OPTS=1 (oneDNN)', {
         'pipeline_vs_faster_peer_ratio': ('>=', 1.2,
                                           'train.py >= 1.2x the faster peer'),
     }),
)


def _fmt(x):
  if isinstance(x, float):
    return '%.4g' % x
  return str(x)


def _is_stats(value):
  return isinstance(value, dict) and {'min', 'median', 'max'} <= set(value)


def _table(section, goals):
  rows = ['| figure | min | median | max | n | goal |',
          '| --- | ---: | ---: | ---: | ---: | --- |']
  notes = []
  for key in sorted(section):
    value = section[key]
    if _is_stats(value):
      goal = ''
      if key in goals:
        op, bound, text = goals[key]
        met = value['median'] >= bound if op == '>=' else value['median'] <= bound
        goal = '%s: **%s**' % (text, 'met' if met else 'not met')
      rows.append('| %s | %s | %s | %s | %d | %s |' % (
          key, _fmt(value['min']), _fmt(value['median']), _fmt(value['max']),
          value['n'], goal))
    elif isinstance(value, dict):
      notes.append('- %s: %s' % (key, ', '.join('%s %s' % (k, _fmt(v))
                                                   for k, v in value.items())))
    else:
      notes.append('- %s: %s' % (key, value))
  if len(rows) == 2:
    rows = []
  return '\n'.join(rows + ([''] + notes if notes and rows else notes))


# Above this share of the cores busy just before the run, other work was running.
BUSY_BEFORE_START = 0.25


def _load_note(meta):
  """What else ran on the machine, judged from a CPU sample taken before the run."""
  machine = meta['machine']
  cores = machine.get('cpu_count') or 1
  start = machine.get('load_average_at_start')
  end = meta.get('load_average_at_end')
  busy = machine.get('cpu_busy_before_start')
  figures = ('%s of the CPU busy in the 2 s before the run; load average (1, 5, 15 '
             'min) %s at start, %s at end, on %s cores' % (
                 '?' if busy is None else '%d%%' % round(100 * busy), start or '?',
                 end or '?', cores))
  if busy is None:
    busy = start[0] / cores if start else 0
  if busy >= BUSY_BEFORE_START:
    return ('**Taken on a busy machine** (%s): other work shared the cores, so '
            'absolute images/sec and examples/sec are depressed and noisy. The ratios, '
            'measured side by side, are what to read.' % figures)
  # The run itself keeps every core busy, so the load at the end says nothing about
  # other work; the load at the start does.
  return ('Taken on an otherwise idle machine (%s; the benchmark itself keeps the '
          'cores busy). Ratios, measured side by side, are still what to compare '
          'across machines.' % figures)


def _rerun_lines(meta):
  """One line per benchmark re-run later with --update, with its own date and load."""
  return ['- re-run later (`--update`): %s on %s, commit %s, %s s; %s of the CPU busy '
          'before it, load average %s at start, %s at end' % (
              name, run['date_utc'], run.get('commit', '?'), run.get('seconds'),
              '?' if run.get('cpu_busy_before_start') is None
              else '%d%%' % round(100 * run['cpu_busy_before_start']),
              run.get('load_average_at_start'), run.get('load_average_at_end'))
          for name, run in sorted(meta.get('reruns', {}).items())]


def markdown(results):
  meta = results['meta']
  machine = meta['machine']
  lines = [
      '# Benchmark results',
      '',
      'Written by `make bench` (`python -m bench`); the same numbers are in '
      '`results.json`. Every figure is min / median / max over %d interleaved repeats '
      '(A, B, C, A, B, C, ...); every `_ratio` is taken per repeat, between figures '
      'measured side by side in the same round, before its median.' % meta['repeats'],
      '',
      _load_note(meta),
      '',
      '- date: %s%s' % (meta['date_utc'], ' (toy size)' if meta.get('toy') else ''),
      '- machine: %s, %s CPU cores, %s' % (machine.get('cpu', '?'),
                                           machine.get('cpu_count'),
                                           machine.get('platform')),
      '- versions: Python %s, TensorFlow %s, tensorflow-estimator %s, tf-slim %s, '
      'tf-keras %s, numpy %s' % (machine.get('python'), machine.get('tensorflow'),
                                 machine.get('tensorflow_estimator'),
                                 machine.get('tf_slim'), machine.get('tf_keras'),
                                 machine.get('numpy')),
      '- commit: %s' % machine.get('commit', '?'),
      '- seconds per benchmark: %s' % ', '.join(
          '%s %s' % (k, v) for k, v in meta.get('seconds', {}).items()),
  ] + _rerun_lines(meta) + ['']
  for key, title, goals in SECTIONS:
    if key not in results:
      continue
    lines += ['## ' + title, '', _table(results[key], goals), '']
    for extra in sorted(k for k in results if k.startswith(key + '_setup')):
      lines += ['Set-up: ' + ', '.join('%s: %s' % (k, v)
                                       for k, v in results[extra].items()), '']
  if 'training_setup' in results and any(k.startswith('training_') for k in results):
    lines += ['Training set-up: ' + ', '.join(
        '%s: %s' % (k, v) for k, v in results['training_setup'].items()), '']
  changes = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'CHANGES.md')
  if os.path.exists(changes):
    with open(changes) as f:
      lines += [f.read().rstrip(), '']
  return '\n'.join(lines)
