"""Helpers that keep every flag's default in estimator_pipeline.config.Config."""

from absl import flags as absl_flags

from estimator_pipeline.config import Config

FLAGS = absl_flags.FLAGS

_DEFINE = {
    bool: absl_flags.DEFINE_bool,
    int: absl_flags.DEFINE_integer,
    float: absl_flags.DEFINE_float,
    str: absl_flags.DEFINE_string,
}


def define(name, help_text, **kwargs):
  """Defines --name with Config's default and type; a second call is a no-op."""
  if name in FLAGS:
    return
  default = Config.default(name)
  _DEFINE[type(default)](name, default, help_text, **kwargs)


def define_enum(name, choices, help_text):
  if name in FLAGS:
    return
  absl_flags.DEFINE_enum(name, Config.default(name), list(choices), help_text)
