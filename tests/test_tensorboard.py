"""What a user watches: one small run's event files, read by TensorBoard's own
EventAccumulator, served by the real `tensorboard` and drawn by headless Chromium.

  .venv/bin/python -m pytest -q tests/test_tensorboard.py
  # refresh the screenshot BUILD.md shows:
  TENSORBOARD_SCREENSHOT=docs/tensorboard.png .venv/bin/python -m pytest -q \
      tests/test_tensorboard.py -k chromium
"""

import io
import os
import re
import shutil
import time
import urllib.parse

import numpy as np
from PIL import Image
import pytest

from conftest import COLORS
from conftest import image_config
from conftest import write_image_data
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from estimator_pipeline import train
import tensorboard_tools

NUM_CLASSES = 6  # > 5, so the evaluation has top_5_accuracy too.
NAMES = ('red', 'green', 'blue', 'yellow', 'red2', 'green2')
NUM_STEPS = 20
LOG_EVERY = 5
CHECKPOINT_EVERY = 10
NUM_EVAL = 30
# The Estimator's summary hook writes at the first step and then every LOG_EVERY; its
# step counters (global_step/sec, examples/sec) from the second interval on.
SUMMARY_STEPS = list(range(1, NUM_STEPS, LOG_EVERY))
RATE_STEPS = list(range(1 + LOG_EVERY, NUM_STEPS, LOG_EVERY))
EVAL_STEPS = list(range(CHECKPOINT_EVERY, NUM_STEPS + 1, CHECKPOINT_EVERY))

TRAIN_SCALARS = ('loss', 'total_loss', 'classification_loss', 'regularization_loss',
                 'learning_rate', 'accuracy', 'gradient_norm')
RATE_SCALARS = ('global_step/sec', 'examples/sec')
EVAL_SCALARS = ('loss', 'accuracy', 'top_5_accuracy', 'mean_per_class_accuracy',
                'classification_loss', 'regularization_loss')
INPUT_IMAGES = tuple('input_images/image/%d' % i for i in range(3))
CIFARNET_VARIABLES = tuple('CifarNet/%s/%s' % (layer, kind)
                           for layer in ('conv1', 'conv2', 'fc3', 'fc4', 'logits')
                           for kind in ('weights', 'biases'))


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """One cifarnet run with every summary on, shared by the tests below."""
  root = tmp_path_factory.mktemp('watched')
  data = write_image_data(root / 'data', validation=NUM_EVAL, names=NAMES,
                          train_formats=('png',), validation_seed=9)
  cfg = image_config(data, root / 'run', num_steps=NUM_STEPS,
                     save_checkpoints_steps=CHECKPOINT_EVERY, log_every_steps=LOG_EVERY,
                     summarize_gradients=True, profile_steps='11,14')
  result = train.run(cfg)
  return cfg, result


def _accumulator(path):
  acc = event_accumulator.EventAccumulator(path, size_guidance={
      event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0,
      event_accumulator.HISTOGRAMS: 0, event_accumulator.TENSORS: 0})
  acc.Reload()
  return acc


def _steps(events):
  return [e.step for e in events]


def _text(tensor_event):
  return tf.make_ndarray(tensor_event.tensor_proto).item().decode()


def _table(markdown):
  """Body rows of a markdown table as lists of cell strings."""
  rows = [[c.strip() for c in line.strip().strip('|').split('|')]
          for line in markdown.splitlines() if line.startswith('|')]
  return rows[2:]


def _png(encoded):
  return np.asarray(Image.open(io.BytesIO(encoded)).convert('RGB'), np.float32)


def test_train_run_events(run):
  cfg, _ = run
  acc = _accumulator(cfg.model_dir)
  tags = acc.Tags()
  for tag in TRAIN_SCALARS:
    assert tag in tags['scalars'], (tag, tags['scalars'])
    assert _steps(acc.Scalars(tag)) == SUMMARY_STEPS, tag
  for tag in RATE_SCALARS:
    assert _steps(acc.Scalars(tag)) == RATE_STEPS, tag
    assert all(e.value > 0 for e in acc.Scalars(tag)), tag
  # The Estimator's 'loss' is the total loss the model_fn reports.
  assert ([e.value for e in acc.Scalars('loss')] ==
          pytest.approx([e.value for e in acc.Scalars('total_loss')]))
  norms = [e.value for e in acc.Scalars('gradient_norm')]
  assert all(np.isfinite(n) and n > 0 for n in norms), norms
  rates = [e.value for e in acc.Scalars('learning_rate')]
  assert rates == sorted(rates, reverse=True) and rates[0] <= cfg.learning_rate
  examples = [e.value for e in acc.Scalars('examples/sec')]
  steps = [e.value for e in acc.Scalars('global_step/sec')]
  assert examples == pytest.approx([s * cfg.batch_size for s in steps], rel=0.5)

  # Weight and gradient histograms of every trained variable (--summarize_gradients).
  for name in CIFARNET_VARIABLES:
    for kind in ('weights', 'gradients'):
      tag = '%s/%s' % (kind, name)
      assert tag in tags['histograms'], (tag, tags['histograms'][:5])
      assert _steps(acc.Histograms(tag)) == SUMMARY_STEPS, tag

  # The configuration, written once at the start.
  config_events = acc.Tensors('config')
  assert _steps(config_events) == [0]
  settings = dict(_table(_text(config_events[0])))
  assert settings['model_name'] == 'cifarnet'
  assert settings['profile_steps'] == '11,14'
  assert settings['num_steps'] == str(NUM_STEPS)
  assert settings['model_params.image_size'] == '32'

  # Three input images per summary step, before normalization, with their labels.
  labels = acc.Tensors('input_labels')
  assert _steps(labels) == SUMMARY_STEPS
  for tag in INPUT_IMAGES:
    assert _steps(acc.Images(tag)) == SUMMARY_STEPS, tag
  for step_index in range(len(SUMMARY_STEPS)):
    rows = _table(_text(labels[step_index]))
    assert len(rows) == 3, rows
    for i, (index, label) in enumerate(rows):
      assert index == str(i)
      class_id, name = re.match(r'(\d+) \((\w+)\)$', label).groups()
      assert name == NAMES[int(class_id)]
      image = acc.Images(INPUT_IMAGES[i])[step_index]
      assert (image.width, image.height) == (32, 32)
      # The pixels are the class's colour (0..255), not normalized values. cifarnet's
      # training distortions change brightness and contrast, so compare the hue (the
      # direction of the mean colour), not the distance.
      mean = _png(image.encoded_image_string).mean(axis=(0, 1))
      assert mean.max() > 20, (mean, label)  # 0..1 or centred values would be ~0.
      cosine = lambda c: (np.dot(COLORS[c], mean) /
                          (np.linalg.norm(COLORS[c]) * np.linalg.norm(mean)))
      nearest = max(range(len(COLORS)), key=cosine)
      assert nearest == int(class_id) % len(COLORS), (mean, label)


def test_eval_run_events_and_confusion_matrix(run):
  cfg, result = run
  acc = _accumulator(os.path.join(cfg.model_dir, 'eval'))
  tags = acc.Tags()
  for tag in EVAL_SCALARS:
    assert tag in tags['scalars'], (tag, tags['scalars'])
    assert _steps(acc.Scalars(tag)) == EVAL_STEPS, tag
  # The metric export/best is chosen by, as the closing summary reports it.
  assert acc.Scalars('loss')[-1].value == pytest.approx(result.eval_metrics['loss'])

  images = acc.Images('confusion_matrix/0')
  tables = acc.Tensors('confusion_matrix/1')
  assert _steps(images) == EVAL_STEPS and _steps(tables) == EVAL_STEPS
  for image, table, accuracy in zip(images, tables, acc.Scalars('accuracy')):
    rows = _table(_text(table))
    assert [r[0] for r in rows] == list(NAMES)
    counts = np.array([[int(c) for c in r[1:]] for r in rows], np.float64)
    # Every evaluation record once; five of each class; the diagonal is the accuracy.
    assert counts.sum() == NUM_EVAL
    assert list(counts.sum(axis=1)) == [NUM_EVAL / NUM_CLASSES] * NUM_CLASSES
    assert np.trace(counts) / NUM_EVAL == pytest.approx(accuracy.value, abs=1e-6)
    pixels = _png(image.encoded_image_string)
    cell = 256 // NUM_CLASSES
    assert pixels.shape == (cell * NUM_CLASSES, cell * NUM_CLASSES, 3)
    # Each cell's colour is its row's fraction between white-ish and dark blue.
    fraction = counts / counts.sum(axis=1, keepdims=True)
    red = pixels[cell // 2::cell, cell // 2::cell, 0]
    assert red == pytest.approx(247 + fraction * (8 - 247), abs=1)


def test_profile_is_written(run):
  cfg, _ = run
  profiles = [os.path.join(root, f) for root, _, files in
              os.walk(os.path.join(cfg.model_dir, 'plugins', 'profile'))
              for f in files if f.endswith('.xplane.pb')]
  assert len(profiles) == 1 and os.path.getsize(profiles[0]) > 1000, profiles


@pytest.fixture(scope='module')
def tensorboard(run, tmp_path_factory):
  cfg, _ = run
  log = tmp_path_factory.mktemp('tensorboard') / 'tensorboard.log'
  server = tensorboard_tools.TensorBoard(cfg.model_dir, str(log))
  try:
    server.start()
    yield server
  finally:
    server.stop()


def _query(**params):
  return urllib.parse.urlencode(params)


def test_tensorboard_serves_runs_tags_and_steps(tensorboard):
  tb = tensorboard
  tags = tb.wait_for(
      '/data/plugin/scalars/tags',
      lambda t: (set(TRAIN_SCALARS + RATE_SCALARS) <= set(t.get('.', {})) and
                 set(EVAL_SCALARS) <= set(t.get('eval', {}))),
      'every train and eval scalar')
  assert sorted(tb.json('/data/runs')) == ['.', 'eval']
  assert set(tags) == {'.', 'eval'}
  expected = ([('.', t, SUMMARY_STEPS) for t in TRAIN_SCALARS] +
              [('.', t, RATE_STEPS) for t in RATE_SCALARS] +
              [('eval', t, EVAL_STEPS) for t in EVAL_SCALARS])
  for run_name, tag, steps in expected:
    points = tb.json('/data/plugin/scalars/scalars?' + _query(run=run_name, tag=tag))
    assert [p[1] for p in points] == steps, (run_name, tag, points)
    assert all(np.isfinite(p[2]) for p in points), (run_name, tag, points)

  images = tb.json('/data/plugin/images/tags')
  assert set(INPUT_IMAGES) <= set(images['.'])
  assert 'confusion_matrix/0' in images['eval']
  texts = tb.json('/data/plugin/text/tags')
  assert {'config', 'input_labels'} <= set(texts['.'])
  assert 'confusion_matrix/1' in texts['eval']
  config_text = tb.json('/data/plugin/text/text?' + _query(run='.', tag='config'))
  assert 'cifarnet' in str(config_text)
  histograms = tb.json('/data/plugin/histograms/tags')['.']
  assert {'weights/' + v for v in CIFARNET_VARIABLES} <= set(histograms)
  assert {'gradients/' + v for v in CIFARNET_VARIABLES} <= set(histograms)


def test_tensorboard_profile_tab_opens_the_profile(tensorboard):
  tb = tensorboard
  plugins = tb.json('/data/plugins_listing')
  assert plugins.get('profile', {}).get('enabled'), sorted(plugins)
  runs = tb.wait_for('/data/plugin/profile/runs', bool, 'a profile run')
  assert len(runs) == 1, runs
  tools = tb.json('/data/plugin/profile/run_tools?' + _query(run=runs[0]))
  trace_tool = [t for t in tools if t.startswith('trace_viewer')]
  assert trace_tool, tools
  hosts = tb.json('/data/plugin/profile/hosts?' + _query(run=runs[0],
                                                         tag=trace_tool[0]))
  assert hosts, 'no host in the profile'
  status, body = tensorboard_tools.http_get(
      tb.url + '/data/plugin/profile/data?' + _query(run=runs[0], tag=trace_tool[0],
                                                    host=hosts[0]))
  assert status == 200, body[:500]
  # The trace holds the graph's own ops (forward and backward) from the Estimator's
  # session, not only the profiler's bookkeeping.
  assert b'CifarNet/conv1' in body and b'gradients/CifarNet' in body, body[:500]


_WALK = r"""
function walk(root, out) {
  for (const el of root.querySelectorAll('*')) {
    out.push(el);
    if (el.shadowRoot) walk(el.shadowRoot, out);
  }
  return out;
}
"""

_NO_OUTLIER_CLIPPING = _WALK + r"""
for (const el of walk(document, [])) {
  if (el.tagName.toLowerCase() === 'tf-scalar-dashboard') el._ignoreYOutliers = false;
}
"""

_CHART_SCRIPT = _WALK + r"""
const cards = {};
for (const card of walk(document, [])) {
  if (card.tagName.toLowerCase() !== 'tf-scalar-card') continue;
  const lines = walk(card.shadowRoot || card, []).filter(
      e => e.tagName.toLowerCase() === 'path' &&
           (e.getAttribute('class') || '').split(' ').includes('line') &&
           /L/.test(e.getAttribute('d') || ''));
  cards[card.tag] = lines.length;
}
return {title: document.title, cards: cards, text: document.body.innerText};
"""


def test_scalars_dashboard_renders_in_chromium(tensorboard, tmp_path):
  tb = tensorboard
  tb.wait_for('/data/plugin/scalars/tags',
              lambda t: set(EVAL_SCALARS) <= set(t.get('eval', {})), 'eval scalars')
  shown = ('loss', 'accuracy', 'learning_rate', 'gradient_norm')
  browser = tensorboard_tools.Chromium(str(tmp_path / 'profile'),
                                       str(tmp_path / 'chromedriver.log'))
  try:
    browser.start()
    # Unsmoothed curves: a 20-step run has few points.
    browser.open(tb.url + '/#scalars&_smoothingWeight=0&tagFilter=' +
                 urllib.parse.quote('^(%s)$' % '|'.join(shown)))
    # Drawn when every chart has its lines: loss and accuracy one per run (train and
    # eval), the others the train run's.
    want = {'loss': 2, 'accuracy': 2, 'learning_rate': 1, 'gradient_norm': 1}
    state = None
    for _ in range(tensorboard_tools.WAIT_SECONDS):
      # Whole curves, not clipped to the bulk of the points (a user setting kept in
      # the browser's local storage, so not in the URL).
      browser.run_script(_NO_OUTLIER_CLIPPING)
      state = browser.run_script(_CHART_SCRIPT)
      if all(state['cards'].get(tag, 0) >= n for tag, n in want.items()):
        break
      time.sleep(1)
    shot = browser.screenshot(str(tmp_path / 'tensorboard.png'))
  finally:
    browser.stop()
  assert state['title'] == 'TensorBoard', state['title']
  assert 'No scalar data' not in state['text'] and 'No dashboards' not in state[
      'text'], state['text'][:500]
  for tag, n in want.items():
    assert state['cards'].get(tag, 0) >= n, (tag, state['cards'])
  image = Image.open(shot)
  assert image.format == 'PNG' and image.size[0] >= 1000, (image.format, image.size)
  # Not a blank page: TensorBoard's orange header, chart lines, text.
  colors = len(np.unique(np.asarray(image.convert('RGB')).reshape(-1, 3), axis=0))
  assert colors > 100, colors
  target = os.environ.get('TENSORBOARD_SCREENSHOT')
  if target:
    shutil.copyfile(shot, target)
