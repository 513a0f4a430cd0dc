"""Helpers that define flags once: defaults from estimator_pipeline.config.Config for
train.py's flags, and from the library function for every other command's."""

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


def define_own(definer, name, default, *args):
  """Defines a flag that is not a Config field (a command's own), once.

  Another group (a demo, a second converter) may have defined the same name already;
  sharing that flag keeps every entry point free to combine groups.
  """
  if name not in FLAGS:
    definer(name, default, *args)


def define_alias(alias, name):
  """--alias is another name of --name (an older or a slim name), once."""
  if alias not in FLAGS:
    absl_flags.DEFINE_alias(alias, name)


def command_flags(argv):
  """A command's first step in main: refuses positional arguments (every option is a
  --flag), quiets TensorFlow's logs, and returns the parsed FLAGS."""
  # Imported here: flags/ stays importable without the project's console.
  from estimator_pipeline.core import console  # pylint: disable=g-import-not-at-top
  from estimator_pipeline.core import errors  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every option is a --flag.'
                           % argv[1])
  console.quiet()
  return FLAGS
