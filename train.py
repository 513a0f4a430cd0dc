r"""Train, evaluate and export a model with tf.estimator.train_and_evaluate.

  python train.py --model_dir=runs/flowers --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=resnet_v1_50 \
      --num_classes=5 --num_steps=2000 --checkpoint_path=ckpt/resnet_v1_50.ckpt \
      --checkpoint_exclude_scopes=resnet_v1_50/logits

Leaves checkpoints and TensorBoard events in --model_dir (evaluation in eval/) and
SavedModels for TF Serving in --model_dir/export/{best,final}/<version>/.
Bad input prints one line and exits with status 2. With TF_CONFIG set, it runs as that
task of a cluster (BUILD.md, "Several machines"; or `python -m
estimator_pipeline.launch_local ... -- <these flags>` on one machine).
"""

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags
from absl import logging

import flags
from estimator_pipeline import config
from estimator_pipeline import train
from estimator_pipeline.core import errors

flags.define_train_flags()


def main(argv):
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every option is a --flag.'
                           % argv[1])
  console.quiet(keep_tf_info=logging.get_verbosity() >= 1)
  cfg = config.Config.from_dict(absl_flags.FLAGS.flag_values_dict())
  # Flags typed on the command line override the params file's train section.
  typed = {name for name in absl_flags.FLAGS if absl_flags.FLAGS[name].present}
  train.run(cfg, typed_flags=typed)


if __name__ == '__main__':
  app.run(lambda argv: errors.run_main(main, argv), flags_parser=flags.parse_or_exit)
