"""Training throughput: examples/sec over a fixed number of steps after warm-up.

For each network, in one process, interleaved:

- `pipeline`: this project's full training path (preflight, Estimator, model_fn, the
  TFRecord input_fn with its preprocessing, ProgressHook, summaries) with train.py's
  default flags, and `pipeline_tuned` with the speed flags (--steps_per_loop and the
  thread flags, see estimator_pipeline/models/loops.py);
- `keras`: the same network and loss in Keras `model.fit` on the same records, read by
  a plain tf.data pipeline with the same preprocessing function;
- `ceiling`: the project's own train op (the same model_fn) run in a plain session
  loop on a constant batch held in memory: no input pipeline, no hooks.

  python -m bench --only=training
"""

import os
import time

import tensorflow as tf

from bench import common
from bench import data as data_lib
from estimator_pipeline import config as config_lib
from estimator_pipeline.core import files
from estimator_pipeline.data import image_ops as preprocessing
from estimator_pipeline.models import loops
from estimator_pipeline.train import estimator as estimator_lib
from estimator_pipeline.train import hooks
from estimator_pipeline.train import plan as plan_lib
from tensorflow_estimator.python.estimator import run_config as run_config_lib

# The flags `pipeline_tuned` adds for the small net, chosen by measurement on 2 cores
# (see RESULTS.md); the big net's steps are long enough that one step per call is fine.
TUNED_FLAGS = {'steps_per_loop': 20, 'inter_op_threads': 2, 'intra_op_threads': 2,
               'data_threads': 2}
# At toy size (tests) a loop of 4 keeps the window several loops long in few steps.
TOY_TUNED_FLAGS = dict(TUNED_FLAGS, steps_per_loop=4)


class _RateHook(tf.compat.v1.train.SessionRunHook):
  """Steps/sec from the first call ending at or past `warmup` to the last call before
  `last_step`.

  The call that reaches `last_step` is left out: the Estimator's CheckpointSaverHook
  is a chief hook, so its after_run (which writes the run's final checkpoint, about
  0.4 s for resnet_v1_50) runs before any hook passed to train(), and would land
  inside the window.
  """

  def __init__(self, warmup, last_step):
    self._warmup = warmup
    self._last_step = last_step
    self.first = None
    self.last = None

  def begin(self):
    graph = tf.compat.v1.get_default_graph()
    try:
      self._step = graph.get_tensor_by_name(loops.GLOBAL_STEP_AFTER_RUN_NAME + ':0')
      self._offset = 0
    except KeyError:
      self._step = tf.compat.v1.train.get_global_step()
      self._offset = 1  # Read before the step's update.

  def before_run(self, run_context):
    return tf.compat.v1.train.SessionRunArgs(self._step)

  def after_run(self, run_context, run_values):
    step = int(run_values.results) + self._offset
    now = time.perf_counter()
    if step >= self._last_step:
      return
    if self.first is None:
      if step >= self._warmup:
        self.first = self.last = (now, step)
    elif step > self.last[1]:
      self.last = (now, step)  # A call that ran no step (the run's end) is left out.

  def steps_per_sec(self):
    (t0, s0), (t1, s1) = self.first, self.last
    if s1 <= s0:
      raise RuntimeError('no step after warm-up: the measured steps must span more '
                         'than two --steps_per_loop calls')
    return (s1 - s0) / (t1 - t0)


def pipeline_rate(records, model_dir, model_name, batch, image_size, warmup, steps,
                  flags=None):
  """examples/sec of the project's training path (what train.py runs)."""
  return run_pipeline(pipeline_config(records, model_dir, model_name, batch,
                                      image_size, warmup, steps, flags), warmup)


def run_pipeline(cfg, warmup):
  """examples/sec of train.py's training path for cfg, after `warmup` steps."""
  plan = plan_lib.preflight(cfg)
  estimator = estimator_lib.build_estimator(plan)
  train_input, _ = plan.task.input_fns(plan)
  rate = _RateHook(warmup, cfg.num_steps)
  progress = hooks.ProgressHook(cfg.num_steps, cfg.batch_size, 10 ** 9)
  estimator.train(train_input, max_steps=cfg.num_steps, hooks=[progress, rate])
  return rate.steps_per_sec() * cfg.batch_size


def _parse_for_keras(family, image_size):
  features = {'image/encoded': tf.io.FixedLenFeature((), tf.string),
              'image/class/label': tf.io.FixedLenFeature((), tf.int64)}

  def parse(serialized):
    item = tf.io.parse_single_example(serialized, features)
    image = preprocessing.decode_and_preprocess(item['image/encoded'], family,
                                                image_size, image_size, True)
    return image, item['image/class/label']
  return parse


def keras_dataset(records, family, image_size, batch):
  autotune = tf.data.AUTOTUNE
  record_files = files.list_files(records)
  dataset = tf.data.TFRecordDataset(record_files, num_parallel_reads=autotune)
  dataset = dataset.shuffle(2048).repeat()
  dataset = dataset.map(_parse_for_keras(family, image_size), num_parallel_calls=autotune)
  return dataset.batch(batch, drop_remainder=True).prefetch(autotune)


def keras_cifarnet(num_classes, image_size):
  """slim's CifarNet (see models/slim_classifier.py) in Keras layers, same loss."""
  layers = tf.keras.layers
  l2 = tf.keras.regularizers.l2(0.004 / 2)  # slim's l2_regularizer(w) is w * sum(x^2)/2.
  conv_init = tf.keras.initializers.TruncatedNormal(stddev=5e-2)
  fc_init = tf.keras.initializers.TruncatedNormal(stddev=0.04)
  lrn = lambda x: tf.nn.lrn(x, 4, bias=1.0, alpha=0.001 / 9.0, beta=0.75)
  inputs = tf.keras.Input((image_size, image_size, 3))
  x = layers.Lambda(tf.image.per_image_standardization)(inputs)
  x = layers.Conv2D(64, 5, padding='same', activation='relu',
                    kernel_initializer=conv_init)(x)
  x = layers.MaxPool2D(2, 2)(x)
  x = layers.Lambda(lrn)(x)
  x = layers.Conv2D(64, 5, padding='same', activation='relu',
                    kernel_initializer=conv_init)(x)
  x = layers.Lambda(lrn)(x)
  x = layers.MaxPool2D(2, 2)(x)
  x = layers.Flatten()(x)
  x = layers.Dense(384, activation='relu', kernel_initializer=fc_init,
                   bias_initializer=tf.keras.initializers.Constant(0.1),
                   kernel_regularizer=l2)(x)
  x = layers.Dropout(0.5)(x)
  x = layers.Dense(192, activation='relu', kernel_initializer=fc_init,
                   bias_initializer=tf.keras.initializers.Constant(0.1),
                   kernel_regularizer=l2)(x)
  outputs = layers.Dense(num_classes)(x)
  return tf.keras.Model(inputs, outputs)


def keras_resnet50(num_classes, image_size):
  """Keras' ResNet50 (v1, like slim's resnet_v1_50) with vgg mean subtraction."""
  inputs = tf.keras.Input((image_size, image_size, 3))
  x = tf.keras.layers.Lambda(lambda t: preprocessing.normalize(t, 'vgg'))(inputs)
  net = tf.keras.applications.ResNet50(weights=None, input_shape=(image_size,
                                                                  image_size, 3),
                                       classes=num_classes, classifier_activation=None)
  return tf.keras.Model(inputs, net(x))


class _KerasRate(tf.keras.callbacks.Callback):

  def __init__(self, warmup):
    super().__init__()
    self._warmup = warmup
    self.times = {}

  def on_train_batch_end(self, batch, logs=None):
    self.times[batch + 1] = time.perf_counter()


def make_keras_runner(build, records, family, image_size, batch, num_classes):
  """fn(warmup, steps) -> examples/sec of model.fit; the model is built once."""
  model = build(num_classes, image_size)
  model.compile(optimizer=tf.keras.optimizers.SGD(0.01, momentum=0.9),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  dataset = keras_dataset(records, family, image_size, batch)

  def run(warmup, steps):
    rate = _KerasRate(warmup)
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, verbose=0,
              callbacks=[rate])
    return steps * batch / (rate.times[warmup + steps] - rate.times[warmup])
  return run


def pipeline_config(records, model_dir, model_name, batch, image_size, warmup, steps,
                    flags=None):
  return config_lib.Config(
      model_dir=model_dir, train_record_path=records, model_name=model_name,
      batch_size=batch, image_size=image_size, num_steps=warmup + steps,
      # One checkpoint, at the end; _RateHook leaves its step out of the window.
      save_checkpoints_steps=warmup + steps, log_every_steps=50, **(flags or {}))


def make_ceiling_runner(cfg):
  """fn(warmup, steps) -> examples/sec of the same train op fed from a constant.

  The constant is one element of the run's own training input_fn, and the train op
  comes from the Estimator's own model_fn, so only the feeding and the per-step
  machinery differ from `pipeline`.
  """
  plan = plan_lib.preflight(cfg)
  estimator = estimator_lib.build_estimator(plan)
  train_input, _ = plan.task.input_fns(plan)
  features, labels = next(iter(train_input()))
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.train.get_or_create_global_step()
    constant = lambda t: tf.constant(t.numpy())
    estimator_spec = estimator.model_fn(
        tf.nest.map_structure(constant, features), tf.nest.map_structure(
            constant, labels), tf.estimator.ModeKeys.TRAIN, estimator.config)
    init = [tf.compat.v1.global_variables_initializer(),
            tf.compat.v1.local_variables_initializer()]
  # The Estimator's default session options (what `pipeline` runs with).
  session = tf.compat.v1.Session(graph=graph,
                                 config=run_config_lib.get_default_session_config())
  session.run(init)
  train_op = estimator_spec.train_op
  batch = cfg.batch_size

  def run(warmup, steps):
    for _ in range(warmup):
      session.run(train_op)
    start = time.perf_counter()
    for _ in range(steps):
      session.run(train_op)
    return steps * batch / (time.perf_counter() - start)
  return run


def _bench_net(name, records, work_dir, model_name, family, batch, image_size,
               num_classes, warmup, steps, repeats, build_keras, tuned=None):
  """tuned: the flags of `pipeline_tuned`, or None to leave that variant out."""
  counter = [0]

  def fresh_dir():
    counter[0] += 1
    return os.path.join(work_dir, '%s-run%d' % (name, counter[0]))

  keras_run = make_keras_runner(build_keras, records, family, image_size, batch,
                                num_classes)
  ceiling_run = make_ceiling_runner(pipeline_config(
      records, fresh_dir(), model_name, batch, image_size, warmup, steps))
  variants = {
      'pipeline': lambda: pipeline_rate(records, fresh_dir(), model_name, batch,
                                        image_size, warmup, steps),
  }
  if tuned:
    variants['pipeline_tuned'] = lambda: pipeline_rate(
        records, fresh_dir(), model_name, batch, image_size, warmup, steps,
        flags=tuned)
  variants['keras'] = lambda: keras_run(warmup, steps)
  variants['ceiling'] = lambda: ceiling_run(warmup, steps)
  common.log('training %s: %dx%d, batch %d, %d warm-up + %d measured steps'
             % (model_name, image_size, image_size, batch, warmup, steps))
  raw = common.interleave(variants, repeats, log=common.log)
  results = {v + '_examples_per_sec': common.stats(raw[v]) for v in raw}
  for v in [k for k in raw if k.startswith('pipeline')]:
    results[v + '_vs_keras_ratio'] = common.stats(common.ratios(raw[v], raw['keras']))
    results[v + '_vs_ceiling_ratio'] = common.stats(common.ratios(raw[v],
                                                                  raw['ceiling']))
  if tuned:
    results['pipeline_tuned_vs_pipeline_ratio'] = common.stats(
        common.ratios(raw['pipeline_tuned'], raw['pipeline']))
  results['keras_vs_ceiling_ratio'] = common.stats(common.ratios(raw['keras'],
                                                                 raw['ceiling']))
  return results


def run(work_dir, toy=False, repeats=3):
  os.makedirs(work_dir, exist_ok=True)
  small = data_lib.make_image_set(os.path.join(work_dir, 'small'), 32 if toy else 1024,
                                  32, 32, num_classes=10, folder=False)
  big = data_lib.make_image_set(os.path.join(work_dir, 'big'), 16 if toy else 128,
                                300, 400, num_classes=4, folder=False)
  out = {}
  out['training_small_cnn'] = _bench_net(
      'cifarnet', small['records'], work_dir, 'cifarnet', 'cifarnet',
      batch=16 if toy else 64,
      # The window starts at the first call ending at or past the warm-up, and must
      # hold more than one of the tuned flags' loops.
      image_size=32, num_classes=10, warmup=8 if toy else 50,
      steps=16 if toy else 200, repeats=repeats, build_keras=keras_cifarnet,
      tuned=TOY_TUNED_FLAGS if toy else TUNED_FLAGS)
  resnet_size = 32 if toy else 224
  out['training_resnet_v1_50'] = _bench_net(
      'resnet', big['records'], work_dir, 'resnet_v1_50', 'vgg',
      batch=1 if toy else 16, image_size=resnet_size, num_classes=4,
      warmup=1 if toy else 2, steps=2 if toy else 6, repeats=repeats,
      build_keras=keras_resnet50)
  out['training_setup'] = {
      'small_cnn': 'cifarnet (slim, 2 conv + 3 fc), 32x32 JPEG records, batch %d' % (
          16 if toy else 64),
      'resnet_v1_50': 'resnet_v1_50, 300x400 JPEG records -> %d, batch %d' % (
          resnet_size, 1 if toy else 16),
      'tuned_flags': TOY_TUNED_FLAGS if toy else TUNED_FLAGS,
      'keras_resnet': 'tf.keras.applications.ResNet50(weights=None), ResNet-50 v1',
  }
  return out
