"""Runs a command and prints its peak RSS, measured by getrusage of that child.

  python -m bench.rusage -- python -c "import tensorflow"
  # {"returncode": 0, "peak_rss_kb": 412345, "stdout": "..."}

Linux keeps a process's peak-RSS mark across exec, so a child forked from a big
process (the benchmark, with TensorFlow loaded) starts with the parent's size as its
"peak". This launcher is a small process that imports nothing but the standard library:
the command forked from it starts small, and os.wait4 gives that child's own figure.
"""

import json
import os
import subprocess
import sys


def main(argv):
  command = argv[argv.index('--') + 1:] if '--' in argv else argv
  process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
  out = process.stdout.read()
  process.stdout.close()
  _, status, usage = os.wait4(process.pid, 0)
  print(json.dumps({'returncode': os.waitstatus_to_exitcode(status),
                    'peak_rss_kb': usage.ru_maxrss,  # Kilobytes on Linux.
                    'stdout': out}))


if __name__ == '__main__':
  main(sys.argv[1:])
