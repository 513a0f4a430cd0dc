"""A TF1-style tf.estimator training pipeline for tf-slim image nets and Basenji SeqNN.

  python train.py --model_dir=runs/x --train_record_path='data/train-*' \
      --eval_record_path='data/validation-*' --model_name=resnet_v1_50 --num_classes=5

Importing the package applies the compatibility fixes for the pinned TensorFlow 2.15
set (see core/compat.py) before any model code runs. The layers, each a folder, import
only the ones below them: core, config, records, data, models, serving, train; the
command-line programs sit on top (BUILD.md, "Architecture").
"""

from estimator_pipeline.core import compat as _compat

_compat.apply()
