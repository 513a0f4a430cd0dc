"""Flags for the SavedModels written under model_dir/export/."""

from flags.common import define


def define_export_flags():
  define('exports_to_keep', 'Versions kept under each of export/best and export/final; '
         'older ones are deleted.')
  define('ensemble_rc', 'Sequence models: also predict the reverse complement of '
         'each input and average it in the exported graph (basenji --rc).')
  define('ensemble_shifts', 'Sequence models: comma-separated input shifts in bp '
         'whose predictions the exported graph averages, e.g. -1,0,1 (basenji '
         '--shifts); 0 alone means no shift ensemble.')
