"""Runs first in each worker process of the genome converter, by path (runpy).

Importing the package `estimator_pipeline` applies the TensorFlow compatibility fixes
(core/compat.py), which start TensorFlow: seconds and hundreds of MB that a worker,
which needs numpy, pysam and pyBigWig only, does not use. This file registers the
package without running its __init__.py, so the worker's modules import as usual and
TensorFlow never starts; then it opens the worker's reader. genome_windows.run_jobs
passes SPEC (the pickled WindowSpec) and PROGRESS (a queue) as globals, and RUN_NAME
as the name to run under (imported as a module, this file does nothing):

  concurrent.futures.ProcessPoolExecutor(..., initializer=runpy.run_path,
      initargs=('.../worker_bootstrap.py', {'SPEC': ..., 'PROGRESS': ...}, RUN_NAME))
"""

import importlib
import os
import sys
import types

RUN_NAME = '__estimator_pipeline_worker__'


def _register_package():
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  if 'estimator_pipeline' not in sys.modules:
    package = types.ModuleType('estimator_pipeline')
    package.__path__ = [root]
    package.__file__ = os.path.join(root, '__init__.py')
    sys.modules['estimator_pipeline'] = package


if __name__ == RUN_NAME:
  _register_package()
  importlib.import_module('estimator_pipeline.records.genome_windows').start_worker(
      globals()['SPEC'], globals()['PROGRESS'])
