"""The image task: slim image records, labels.txt, classifiers that serve class names.

  python train.py --model_name=resnet_v1_50 --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_dir=runs/flowers

Preflight takes the class names from --labels_file or the labels.txt beside the
training records, the number of classes from them or --num_classes, and the input size
from --image_size or the net's default; exports ship the class names in assets/.
"""

import dataclasses
import os
from typing import Optional, Tuple

import tensorflow as tf

from estimator_pipeline import serving
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.data import image_parse
from estimator_pipeline.models.image import report
from estimator_pipeline.records import image_format
from estimator_pipeline.train.tasks import base


@dataclasses.dataclass(frozen=True)
class ImageData:
  """What the image task found: the class names and the file that ships them."""
  class_names: Optional[Tuple[str, ...]] = None
  # model_dir/class_names.txt once labels.txt is known; exports ship it in assets/.
  class_names_file: Optional[str] = None


class ImageTask(base.Task):
  """Image classification on slim's image records."""

  layout = 'image'

  def prepare(self, cfg, spec, train_files, eval_files, params=None):
    del eval_files, params  # The first records are checked with the others.
    class_names = _find_labels(cfg, train_files)
    # An unknown --serving_input fails here, before anything is written.
    serving.get(spec, cfg.serving_input)
    return _prepared(cfg, spec, _resolve_num_classes(cfg, class_names), ImageData(
        class_names=class_names, class_names_file=(
            os.path.join(cfg.model_dir, image_format.CLASS_NAMES_FILE)
            if class_names else None)))

  def prepare_export(self, cfg, spec, model_dir, scratch):
    serving.get(spec, cfg.serving_input)
    if not cfg.num_classes:
      raise UserError('%s has no num_classes: re-run train.py once to record it.'
                      % os.path.join(model_dir, 'config.json'))
    names_file = os.path.join(model_dir, image_format.CLASS_NAMES_FILE)
    if not tf.io.gfile.exists(names_file):
      # A run trained before class_names.txt existed: its labels.txt, when found.
      names = _training_labels(cfg)
      names_file = (image_format.write_class_names(scratch, names, cfg.num_classes)
                    if names else None)
    return _prepared(cfg, spec, cfg.num_classes, ImageData(class_names_file=names_file))

  def test_report(self, plan, test_files):
    return report.ImageReport(plan.num_classes, plan.data.class_names_file, test_files)

  def parse_fns(self, plan, is_training):
    cfg = plan.config
    return image_parse.image_parse_fns(
        is_training=is_training, num_classes=plan.num_classes,
        family=plan.spec.preprocessing, image_size=plan.image_size,
        random_flip=cfg.random_flip if is_training else True,
        deterministic=cfg.deterministic)

  def record_checker(self, plan):
    return self.record_format.checker(num_classes=plan.num_classes)

  def serving_params(self, plan):
    return {'image_size': plan.image_size}

  def write_run_files(self, plan, exports):
    # Only a process that exports ships the class names (the others never predict).
    if plan.data.class_names and exports:
      image_format.write_class_names(plan.config.model_dir, plan.data.class_names,
                                     plan.num_classes)
    return []


def model_params(cfg, image_size, data):
  """The keyword arguments an image Model is built with."""
  # AdamW decays the weights itself (decoupled): no L2 term in the loss as well.
  weight_decay = 0.0 if cfg.optimizer == 'adamw' else cfg.weight_decay
  return {'image_size': image_size, 'weight_decay': weight_decay,
          'dropout_keep_prob': cfg.dropout_keep_prob,
          'label_smoothing': cfg.label_smoothing,
          'class_names': data.class_names,
          'class_names_file': data.class_names_file}


def _prepared(cfg, spec, num_classes, data):
  """The Prepared of an image model: the net built once at the run's input size."""
  image_size = cfg.image_size or spec.default_image_size
  params = model_params(cfg, image_size, data)
  try:
    facts = base.inspect_model(
        spec, num_classes, params,
        features={'image': (tf.float32, [1, image_size, image_size, 3])},
        labels=(tf.int64, [1]))
  except ValueError as e:
    raise UserError('--model_name=%s cannot be built at --image_size=%d (%s): use '
                    'its default size %d or a larger one.' % (
                        spec.name, image_size, short_tf_message(e),
                        spec.default_image_size)) from None
  return base.Prepared(num_classes=num_classes, image_size=image_size, data=data,
                       model_params=params, variables=facts.variables,
                       trainable=facts.trainable, metric_names=facts.metric_names)


def _find_labels(cfg, train_files):
  if cfg.labels_file:
    if not tf.io.gfile.exists(cfg.labels_file):
      raise UserError('--labels_file=%s does not exist.' % cfg.labels_file)
    return image_format.read_labels(cfg.labels_file)
  beside = image_format.labels_beside(train_files[0])
  return image_format.read_labels(beside) if beside else None


def _training_labels(cfg):
  """labels.txt of a run older than class_names.txt, if it can still be found."""
  candidates = [cfg.labels_file] if cfg.labels_file else []
  first = sorted(tf.io.gfile.glob(cfg.train_record_path.split(',')[0].strip())
                 if cfg.train_record_path else [])
  if first:
    candidates.append(os.path.join(os.path.dirname(first[0]), image_format.LABELS_FILE))
  for path in candidates:
    if tf.io.gfile.exists(path):
      return image_format.read_labels(path)
  return None


def _resolve_num_classes(cfg, class_names):
  if class_names is None:
    if not cfg.num_classes:
      raise UserError('--num_classes is missing and no labels.txt lies beside the '
                      'training records: pass --num_classes or --labels_file.')
    return cfg.num_classes
  if not cfg.num_classes:
    return len(class_names)
  if cfg.num_classes < len(class_names):
    raise UserError('--num_classes=%d is smaller than the %d classes in labels.txt: '
                    'pass --num_classes=%d.' % (cfg.num_classes, len(class_names),
                                                len(class_names)))
  return cfg.num_classes


TASK = ImageTask()
