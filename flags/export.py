"""Flags for the SavedModels written under model_dir/export/."""

from flags.common import define


def define_export_flags():
  define('exports_to_keep', 'Versions kept under each of export/best and export/final; '
         'older ones are deleted.')
  define_ensemble_flags()
  define_serving_input_flag()


def define_ensemble_flags():
  define('ensemble_rc', 'Sequence models: also predict the reverse complement of '
         'each input and average it in the exported graph (basenji --rc).')
  define('ensemble_shifts', 'Sequence models: comma-separated input shifts in bp '
         'whose predictions the exported graph averages, e.g. -1,0,1 (basenji '
         '--shifts); 0 alone means no shift ensemble.')


def define_serving_input_flag():
  define('serving_input', 'What the exported serving_default signature takes. Image '
         'classifiers: encoded_image (JPEG/PNG bytes, REST sends {"b64": ...}; the '
         'default when empty), image_tensor (uint8 [N, H, W, 3]) or tf_example '
         '(serialized tf.Examples in the training layout, which also adds a classify '
         'signature).')
