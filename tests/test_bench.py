"""The benchmarks run end to end at toy size, so they cannot rot.

  .venv/bin/python -m pytest -q tests/test_bench.py

The figures are not asserted (timing tests flake on shared machines); what is checked
is that `python -m bench --toy` writes results.json with every figure of every
benchmark, each ratio a positive finite number, and a RESULTS.md that shows them.
"""

import json
import math

from bench import __main__ as bench_main
from conftest import run_cli
from conftest import start_cli

# Ratio keys every full or toy run writes, by section.
RATIOS = {
    'input_pipeline': ['eval_vs_ceiling_ratio', 'train_vs_ceiling_ratio',
                       'train_vs_keras_ratio', 'eval_vs_keras_ratio'],
    'training_small_cnn': ['pipeline_vs_keras_ratio', 'pipeline_vs_ceiling_ratio',
                           'pipeline_tuned_vs_keras_ratio',
                           'pipeline_tuned_vs_ceiling_ratio',
                           'pipeline_tuned_vs_pipeline_ratio', 'keras_vs_ceiling_ratio'],
    'training_resnet_v1_50': ['pipeline_vs_keras_ratio', 'pipeline_vs_ceiling_ratio',
                              'keras_vs_ceiling_ratio'],
    'sequence': ['pipeline_vs_ceiling_ratio'],
    'startup': ['first_step_vs_tf_import_ratio', 'train_import_vs_tf_import_ratio',
                'export_vs_tf_import_ratio'],
    'scale': ['train_records_per_sec_4x_vs_1x_ratio',
              'train_records_per_sec_16x_vs_1x_ratio',
              'eval_records_per_sec_16x_vs_1x_ratio', 'peak_rss_4x_vs_1x_ratio',
              'peak_rss_16x_vs_1x_ratio'],
    'genome': ['peak_rss_16x_vs_1x_ratio', 'worker_peak_rss_16x_vs_1x_ratio',
               'processes_2_vs_1_ratio', 'pipeline_vs_read_only_ratio'],
    'variants': ['pipeline_vs_ceiling_ratio'],
    'variant_scores': ['pipeline_vs_ceiling_ratio'],
    'mutagenesis': ['pipeline_vs_ceiling_ratio'],
    'attribution': ['ig_vs_ceiling_ratio', 'deepshap_vs_ceiling_ratio'],
    'memory': ['recompute_vs_plain_memory_ratio', 'recompute_vs_plain_time_ratio'],
}
FIGURES = {
    'input_pipeline': ['eval_input_fn_images_per_sec', 'eval_ceiling_images_per_sec',
                       'train_input_fn_images_per_sec', 'train_ceiling_images_per_sec',
                       'keras_image_dataset_from_directory_images_per_sec'],
    'training_small_cnn': ['pipeline_examples_per_sec', 'keras_examples_per_sec',
                           'ceiling_examples_per_sec'],
    'startup': ['train_py_first_step_seconds', 'export_seconds', 'tf_import_seconds'],
    'scale': ['peak_rss_mb_1x', 'peak_rss_mb_16x', 'train_records_per_sec_16x'],
    'genome': ['peak_rss_mb_16x', 'worker_peak_rss_mb_16x', 'windows_per_sec_p2',
               'windows_per_sec_read_only'],
}


def _positive_finite(stats):
  return all(isinstance(stats[k], (int, float)) and math.isfinite(stats[k]) and
             stats[k] > 0 for k in ('min', 'median', 'max'))


# The toy run in two processes side by side, each with half the benchmarks by time, so
# a free second core halves the wait; together they are every benchmark.
GROUPS = ('training,input_pipeline,variants,scale,seqnn_peer,attribution',
          'sequence,startup,genome,mutagenesis,xla,variant_scores,memory')


def test_toy_bench_writes_every_figure(tmp_path):
  runs = []
  for i, only in enumerate(GROUPS):
    out, log = tmp_path / ('out%d' % i), tmp_path / ('log%d.txt' % i)
    runs.append((out, log, start_cli(
        ['-m', 'bench', '--toy', '--only=' + only, '--output_dir=%s' % out,
         '--work_dir=%s' % (tmp_path / ('work%d' % i))], log)))
  results, markdown = {}, ''
  for (out, log, process), only in zip(runs, GROUPS):
    # About a minute on an idle machine; a shared one can take far longer.
    assert process.wait(timeout=3600) == 0, log.read_text()[-3000:]
    run = json.loads((out / 'results.json').read_text())
    assert set(run['meta']['seconds']) == set(only.split(','))
    results.update(run)
    markdown += (out / 'RESULTS.md').read_text()
  assert set(','.join(GROUPS).split(',')) == set(bench_main.SUITES)
  assert results['meta']['toy'] is True
  assert results['meta']['machine']['tensorflow'] == '2.15.1'
  for section, keys in list(RATIOS.items()) + list(FIGURES.items()):
    assert section in results, section
    for key in keys:
      assert key in results[section], (section, key)
      assert _positive_finite(results[section][key]), (section, key,
                                                        results[section][key])
  # Every ratio anywhere, not only the listed ones, is a positive finite number.
  for section, figures in results.items():
    for key, value in figures.items():
      if key.endswith('_ratio'):
        assert _positive_finite(value), (section, key, value)
  assert results['startup']['import_profile']['by_package_seconds']['tensorflow'] > 0
  assert 'of the CPU busy in the 2 s before the run; load average (1, 5, 15 min) [' in markdown
  assert 'eval_vs_ceiling_ratio' in markdown and 'peak_rss_16x_vs_1x_ratio' in markdown


def test_bench_rejects_an_unknown_benchmark(tmp_path):
  result = run_cli(['-m', 'bench', '--only=nonsense', '--output_dir=%s' % tmp_path])
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith('error: --only names')
  assert not (tmp_path / 'results.json').exists()


def test_results_say_whether_other_work_shared_the_machine():
  from bench import report  # pylint: disable=g-import-not-at-top
  def note(busy):
    return report._load_note({  # pylint: disable=protected-access
        'machine': {'cpu_count': 2, 'load_average_at_start': [1.5, 1.0, 0.5],
                    'cpu_busy_before_start': busy},
        'load_average_at_end': [2.0, 1.5, 1.0]})
  assert 'busy machine' in note(0.6) and '60% of the CPU busy' in note(0.6)
  # A high load average alone (a job that just ended) does not make it busy.
  assert 'otherwise idle' in note(0.02) and '2% of the CPU busy' in note(0.02)


def test_update_replaces_the_rerun_benchmarks_and_keeps_the_others(tmp_path):
  from bench import __main__ as bench_main  # pylint: disable=g-import-not-at-top
  from bench import report  # pylint: disable=g-import-not-at-top
  machine = {'cpu_count': 2, 'commit': 'abc', 'cpu_busy_before_start': 0.5,
             'load_average_at_start': [1.0, 1.0, 1.0]}
  earlier = {'meta': {'date_utc': 'then', 'repeats': 3, 'machine': machine,
                      'seconds': {'training': 300.0, 'variants': 9.0}},
             'training_small_cnn': {'pipeline_vs_ceiling_ratio': [0.9, 0.92, 0.95]},
             'variants': {'pipeline_vs_ceiling_ratio': [0.1, 0.1, 0.1]}}
  path = tmp_path / 'results.json'
  path.write_text(json.dumps(earlier))
  now = {'meta': {'date_utc': 'now', 'repeats': 3, 'seconds': {'variants': 10.0},
                  'machine': dict(machine, commit='def'),
                  'load_average_at_end': [2.0, 2.0, 2.0]},
         'variants': {'pipeline_vs_ceiling_ratio': [0.8, 0.88, 0.9]}}
  # pylint: disable=protected-access
  merged = bench_main._updated(str(path), now, ['variants'])
  assert merged['training_small_cnn'] == earlier['training_small_cnn']
  assert merged['variants'] == now['variants']
  assert merged['meta']['date_utc'] == 'then'
  assert merged['meta']['reruns']['variants']['commit'] == 'def'
  text = report.markdown(merged)
  assert '- re-run later (`--update`): variants on now, commit def' in text
  assert '0.88' in text and '0.92' in text
