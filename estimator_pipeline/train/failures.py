"""What a failed run tells its user: TF runtime errors caused by the data or the flags
become one line naming the culprit and the fix (errors.UserError, exit status 2).

  python train.py ... --learning_rate=100
  # error: the loss became NaN or Inf at step 12; nothing from that step was saved ...
"""

import re

import tensorflow as tf

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message
from estimator_pipeline.data import parse
from estimator_pipeline.train import safety
from estimator_pipeline.train.tasks import base as tasks_base

SKIP_ADVICE = tasks_base.SKIP_ADVICE


def guard_advice(cfg):
  return ('lower --learning_rate (now %g), clip gradients with --clip_gradient_norm '
          '(e.g. 5; now %s), or check the records for extreme values (--validate_data),'
          ' then run the same command to resume from it.' % (
              cfg.learning_rate, cfg.clip_gradient_norm or 'off'))


def translate(error, plan, step=None):
  """A TF runtime error caused by the data or the flags -> UserError, else None."""
  message = str(error)
  record_check = parse.TARGET_ERROR_MARKER in message
  if (isinstance(error, tf.errors.InvalidArgumentError) and not record_check and
      ('is inf or nan' in message.lower() or
       'nan' in message.lower().split(':')[0])):
    return safety.non_finite_error(step, plan.config.model_dir,
                                   guard_advice(plan.config))
  data_loss = (isinstance(error, tf.errors.DataLossError) or
               'corrupted record' in message or 'truncated record' in message)
  if not data_loss and not isinstance(error, tf.errors.InvalidArgumentError):
    return None
  # Reading every record to name the bad one is worth it only now that one is bad.
  where = plan.task.locate_bad_record(plan)
  label = re.search(r':\]\s*\[(-?\d+)\]', message)
  if parse.LABEL_ERROR_MARKER in message:
    fix = 'pass --num_classes=%s or larger, fix the labels, or %s' % (
        int(label.group(1)) + 1 if label and int(label.group(1)) >= 0 else '?',
        SKIP_ADVICE.replace('pass --skip', 'train with --skip'))
    if where:
      return UserError('%s: %s' % (where, fix))
    return UserError('a record holds label %s, outside [0, %d): %s' % (
        label.group(1) if label else '?', plan.num_classes, fix))
  if where:
    return UserError('%s: %s' % (where, SKIP_ADVICE))
  if record_check:
    return UserError('a record\'s %s: %s' % (parse.TARGET_ERROR_MARKER, SKIP_ADVICE))
  if data_loss:
    return UserError('a record file is corrupt (%s): %s' % (short_tf_message(error),
                                                            SKIP_ADVICE))
  if 'decode' in message.lower():
    return UserError('an image in the records does not decode (%s): %s'
                     % (short_tf_message(error)[:200], SKIP_ADVICE))
  return None


DISK_WORDS = ('No space left on device', 'Read-only file system', 'Disk quota exceeded')


def is_disk_error(message):
  return any(w in message for w in DISK_WORDS)


def disk_error(model_dir, problem):
  safety.clean_partial_files(model_dir)
  latest = tf.train.latest_checkpoint(model_dir)
  return UserError('cannot write to --model_dir=%s (%s): %s; free some space (or '
                   'pass a --model_dir on another disk) and run the same command again.'
                   % (model_dir, problem[:160], 'the last complete checkpoint %s is kept'
                      % latest if latest else 'no checkpoint was saved'))
