"""Flags for the SavedModels written under model_dir/export/."""

from flags.common import define


def define_export_flags():
  define('exports_to_keep', 'Versions kept under each of export/best and export/final; '
         'older ones are deleted.')
  define_serving_input_flag()


def define_serving_input_flag():
  define('serving_input', 'What the exported serving_default signature takes. Image '
         'classifiers: encoded_image (JPEG/PNG bytes, REST sends {"b64": ...}; the '
         'default when empty), image_tensor (uint8 [N, H, W, 3]) or tf_example '
         '(serialized tf.Examples in the training layout, which also adds a classify '
         'signature).')
