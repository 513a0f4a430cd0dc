"""User-facing errors: one line that names the culprit and the fix, exit status 2.

Library code raises `UserError`; every command-line entry point runs its main through
`run_main`, which prints `error: <message>` and exits with status 2 instead of showing a
traceback. Anything else is a bug and keeps its traceback.

  python train.py --train_record_path='no/such/*.tfrecord'   # -> one line, exit 2
"""

import re
import signal
import sys

EXIT_USAGE = 2


class UserError(Exception):
  """Bad input (flag, file, record, checkpoint) that the user can fix."""


class Interrupted(Exception):
  """A run stopped by SIGINT/SIGTERM; the message says where it stopped and how to resume.

  Not a BaseException like KeyboardInterrupt: it is raised on purpose, after the
  checkpoint is saved, and should pass through TensorFlow's session clean-up unchanged.
  """

  def __init__(self, signum, message):
    super().__init__(message)
    self.signum = signum

  @property
  def exit_status(self):
    # The shell's convention, 128 + signal number: 130 for SIGINT, 143 for SIGTERM.
    return 128 + int(self.signum)


def run_main(main, argv=None):
  """Calls main(argv); turns a UserError into one line on stderr and exit status 2."""
  try:
    return main(argv)
  except UserError as e:
    sys.stderr.write('error: %s\n' % e)
    sys.stderr.flush()
    sys.exit(EXIT_USAGE)
  except Interrupted as e:
    sys.stderr.write('interrupted by %s\n' % e)
    sys.stderr.flush()
    sys.exit(e.exit_status)
  except KeyboardInterrupt:
    sys.stderr.write('interrupted by SIGINT before training started; nothing was '
                     'saved\n')
    sys.exit(128 + signal.SIGINT)


def short_tf_message(error):
  """The readable core of a TensorFlow error, for the one line a user sees.

  TF wraps messages in '{{function_node ...}}', '[Op:...]' and node dumps; what the user
  needs is the sentence that says what went wrong.
  """
  text = str(error).strip().splitlines()[0] if str(error).strip() else ''
  text = re.sub(r'\{\{[^}]*\}\}', '', text)
  text = re.sub(r'\s*\[Op:[^\]]*\].*$', '', text)
  text = re.sub(r" for '\{\{node.*$| for '[^']*' with input shapes.*$", '', text)
  return text.strip() or type(error).__name__
