"""Flags for the SavedModels written under model_dir/export/."""

from flags.common import define


def define_export_flags():
  define('exports_to_keep', 'Versions kept under each of export/best and export/final; '
         'older ones are deleted.')
