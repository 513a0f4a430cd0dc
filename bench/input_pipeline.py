"""Input pipeline: images/sec delivered to the model (decoded, preprocessed, batched).

Four readers of the same 300x400 JPEGs, each producing 224x224 batches:

- the project's evaluation input_fn (TFRecords, central crop) and training input_fn
  (TFRecords, slim's vgg random crop + flip through decode_and_crop_jpeg);
- their ceilings: the same decode + preprocessing functions mapped over the same bytes
  held in memory, with the same parallelism (AUTOTUNE), so only the reading and the
  record parsing differ;
- Keras `image_dataset_from_directory` over the same images as files (what a Keras
  user would pick: full decode + resize), the peer the goal names;
- the same Keras reader followed by the augmentation a Keras user adds for training,
  as the Keras guides do it: decode and resize to 256x256, then `RandomCrop(224, 224)`
  and `RandomFlip('horizontal')` layers mapped over the batches. This peer does the
  work the training input_fn does, so `train_vs_keras_augmented_ratio` compares like
  with like; no goal is set on it.

  python -m bench --only=input_pipeline
"""

import os

import tensorflow as tf

from bench import common
from bench import data as data_lib
from estimator_pipeline.core import files
from estimator_pipeline.data import image_ops as preprocessing
from estimator_pipeline.data import input_fn as input_lib
from estimator_pipeline.data import image_parse

FAMILY = 'vgg'  # resnet_v1_50's preprocessing.


def _count_rate(dataset, batch_size, warmup_batches, total_batches):
  it = iter(dataset)
  return common.timed_iterations(it, total_batches - warmup_batches, warmup_batches,
                                 batch_size)


def run(work_dir, toy=False, repeats=3):
  count = 64 if toy else 512
  batch = 8 if toy else 32
  # A pass of 512 images lasts a fraction of a second, about as long as AUTOTUNE takes
  # to settle: each measurement reads the set several times.
  passes = 1 if toy else 4
  size = 224
  warmup = 2 if toy else 8
  total = passes * count // batch
  images = data_lib.make_image_set(os.path.join(work_dir, 'input'), count, 300, 400)
  autotune = tf.data.AUTOTUNE

  def project(is_training):
    record_files = files.list_files(images['records'])
    # Evaluation reads its files once: naming them `passes` times reads them as often.
    fn = input_lib.make_input_fn(
        record_files * (1 if is_training else passes), is_training=is_training,
        batch_size=batch, parse_fn=image_parse.make_image_parse_fn(
            is_training=is_training, num_classes=4, family=FAMILY, image_size=size))
    return lambda: _count_rate(fn(), batch, warmup, total)

  def ceiling(is_training):
    def preprocess(encoded):
      if is_training:
        return preprocessing.decode_and_preprocess(encoded, FAMILY, size, size, True)
      return preprocessing.preprocess_image(preprocessing.decode_image(encoded),
                                            FAMILY, size, size, False)

    def measure():
      dataset = tf.data.Dataset.from_tensor_slices(images['encoded']).repeat(passes)
      dataset = dataset.map(preprocess, num_parallel_calls=autotune,
                            deterministic=not is_training)
      dataset = dataset.batch(batch, drop_remainder=is_training).prefetch(autotune)
      return _count_rate(dataset, batch, warmup, total)
    return measure

  def keras():
    dataset = tf.keras.utils.image_dataset_from_directory(
        images['folder'], image_size=(size, size), batch_size=batch, shuffle=True,
        seed=0)
    return _count_rate(dataset.repeat(passes).prefetch(autotune), batch, warmup, total)

  augment = tf.keras.Sequential([tf.keras.layers.RandomCrop(size, size),
                                 tf.keras.layers.RandomFlip('horizontal')])

  def keras_augmented():
    dataset = tf.keras.utils.image_dataset_from_directory(
        images['folder'], image_size=(256, 256), batch_size=batch, shuffle=True,
        seed=0)
    dataset = dataset.repeat(passes).map(
        lambda x, y: (augment(x, training=True), y), num_parallel_calls=autotune)
    return _count_rate(dataset.prefetch(autotune), batch, warmup, total)

  common.log('input pipeline: %d JPEGs 300x400 (%.0f KB each) -> %dx%d, batch %d'
             % (count, images['bytes'] / count / 1024, size, size, batch))
  raw = common.interleave({
      'eval_input_fn': project(False),
      'eval_ceiling': ceiling(False),
      'train_input_fn': project(True),
      'train_ceiling': ceiling(True),
      'keras_image_dataset_from_directory': keras,
      'keras_augmented': keras_augmented,
  }, repeats, log=common.log)
  results = {name + '_images_per_sec': common.stats(v) for name, v in raw.items()}
  results['eval_vs_ceiling_ratio'] = common.stats(
      common.ratios(raw['eval_input_fn'], raw['eval_ceiling']))
  results['train_vs_ceiling_ratio'] = common.stats(
      common.ratios(raw['train_input_fn'], raw['train_ceiling']))
  results['train_vs_keras_ratio'] = common.stats(
      common.ratios(raw['train_input_fn'], raw['keras_image_dataset_from_directory']))
  results['train_vs_keras_augmented_ratio'] = common.stats(
      common.ratios(raw['train_input_fn'], raw['keras_augmented']))
  results['eval_vs_keras_ratio'] = common.stats(
      common.ratios(raw['eval_input_fn'], raw['keras_image_dataset_from_directory']))
  return {'input_pipeline': results,
          'input_pipeline_setup': {'images': count, 'source': '300x400 JPEG q90',
                                   'output': '%dx%d' % (size, size), 'batch': batch,
                                   'family': FAMILY, 'warmup_batches': warmup}}
