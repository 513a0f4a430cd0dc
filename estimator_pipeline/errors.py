"""User-facing errors: one line that names the culprit and the fix, exit status 2.

Library code raises `UserError`; every command-line entry point runs its main through
`run_main`, which prints `error: <message>` and exits with status 2 instead of showing a
traceback. Anything else is a bug and keeps its traceback.

  python train.py --train_record_path='no/such/*.tfrecord'   # -> one line, exit 2
"""

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
