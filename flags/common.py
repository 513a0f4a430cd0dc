"""Helpers that define flags once: defaults from estimator_pipeline.config.Config for
train.py's flags, and from the library function for every other command's."""

import sys

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
  if name not in FLAGS:
    default = Config.default(name)
    _DEFINE[type(default)](name, default, help_text, **kwargs)
  _show_in_help(name)


def define_enum(name, choices, help_text):
  if name not in FLAGS:
    absl_flags.DEFINE_enum(name, Config.default(name), list(choices), help_text)
  _show_in_help(name)


def define_own(definer, name, default, *args):
  """Defines a flag that is not a Config field (a command's own), once.

  Another group (a demo, a second converter) may have defined the same name already;
  sharing that flag keeps every entry point free to combine groups.
  """
  if name not in FLAGS:
    definer(name, default, *args)
  _show_in_help(name)


def _show_in_help(name):
  """Lists --name in the running command's --help: absl shows only the main module's
  own flags there, and these are defined from here or from a group in flags/. A flag
  defined while a module other than the command is imported stays out of it."""
  frame = sys._getframe(2)  # pylint: disable=protected-access
  while frame is not None:
    if frame.f_globals.get('__name__') == '__main__':
      FLAGS.register_key_flag_for_module(sys.argv[0], FLAGS[name])
      return
    frame = frame.f_back


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
