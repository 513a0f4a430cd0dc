"""User-facing errors: one line that names the culprit and the fix, exit status 2.

Library code raises `UserError`; every command-line entry point runs its main through
`run_main`, which prints `error: <message>` and exits with status 2 instead of showing a
traceback. Anything else is a bug and keeps its traceback.

  python train.py --train_record_path='no/such/*.tfrecord'   # -> one line, exit 2
"""

import re
import sys

EXIT_USAGE = 2


class UserError(Exception):
  """Bad input (flag, file, record, checkpoint) that the user can fix."""


def run_main(main, argv=None):
  """Calls main(argv); turns a UserError into one line on stderr and exit status 2."""
  try:
    return main(argv)
  except UserError as e:
    sys.stderr.write('error: %s\n' % e)
    sys.stderr.flush()
    sys.exit(EXIT_USAGE)
  except KeyboardInterrupt:
    sys.stderr.write('interrupted\n')
    sys.exit(130)


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
