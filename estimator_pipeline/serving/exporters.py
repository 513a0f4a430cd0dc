"""Exporters run by train_and_evaluate: export/best/ (by eval loss) and export/final/.

Each writes SavedModels as integer version directories, which TF Serving watches, and
prunes old versions. The Estimator writes a version under a temporary name and renames
it when complete, so Serving never sees half a model; pruning here renames a version
away before deleting it, for the same reason (the Estimator's own pruning deletes in
place, and a run killed midway left half a version behind). Temporary directories of a
killed run are removed by train/safety.py's clean_partial_files on the next run.

  ls runs/x/export/best/   # e.g. 1732458000  1732458123

Each version also holds assets.extra/tf_serving_warmup_requests (see warmup.py), which
the Estimator copies in before that rename.
"""

import os
import shutil

import tensorflow as tf

from estimator_pipeline import serving
from estimator_pipeline.core import files
from estimator_pipeline.serving import warmup

# Not an integer, so TF Serving ignores it; `temp-` so a later run's clean-up removes it.
_PRUNING_PREFIX = 'temp-pruning-'


class _AtomicPruning:
  """Prunes old versions by renaming each out of sight first, then deleting it."""

  def _garbage_collect_exports(self, export_dir_base):
    if self._exports_to_keep is None or not os.path.isdir(export_dir_base):
      return
    versions = sorted((n for n in os.listdir(export_dir_base) if n.isdigit()), key=int)
    for name in versions[:-self._exports_to_keep]:
      doomed = os.path.join(export_dir_base, _PRUNING_PREFIX + name)
      try:
        os.rename(os.path.join(export_dir_base, name), doomed)
      except OSError:
        continue
      shutil.rmtree(doomed, ignore_errors=True)


class BestExporter(_AtomicPruning, tf.estimator.BestExporter):
  """tf.estimator.BestExporter with atomic pruning and a tolerant read of eval events."""

  def _get_best_eval_result(self, event_files):
    if not event_files:
      return None
    best = None
    for path in tf.io.gfile.glob(event_files):
      for event in files.iter_events(path):
        result = {v.tag: v.simple_value for v in event.summary.value
                  if v.HasField('simple_value')}
        if result and (best is None or self._compare_fn(best, result)):
          best = result
    return best


class FinalExporter(_AtomicPruning, tf.estimator.LatestExporter):
  """Exports once, at the end of training, and keeps the newest `exports_to_keep`.

  tf.estimator.FinalExporter never prunes, so every resumed run would add a version
  forever; LatestExporter prunes but exports after every evaluation.
  """

  def export(self, estimator, export_path, checkpoint_path, eval_result,
             is_the_final_export):
    if not is_the_final_export:
      return None
    return super().export(estimator, export_path, checkpoint_path, eval_result,
                          is_the_final_export)


def make_exporters(serving_input_receiver_fn, exports_to_keep=5, compare_fn=None,
                   assets_extra=None):
  """[best (by eval loss, or compare_fn(best, current) -> bool), final] for an EvalSpec.

  assets_extra ({name in assets.extra/: source file}, e.g. warmup.assets_extra(...))
  is copied into each version before the Estimator renames it into place.
  """
  best_kwargs = {'compare_fn': compare_fn} if compare_fn else {}
  return [
      BestExporter(
          name='best', serving_input_receiver_fn=serving_input_receiver_fn,
          exports_to_keep=exports_to_keep, assets_extra=assets_extra, **best_kwargs),
      FinalExporter(name='final',
                    serving_input_receiver_fn=serving_input_receiver_fn,
                    exports_to_keep=exports_to_keep, assets_extra=assets_extra),
  ]


def write_warmup_file(spec, serving_input, path, **params):
  """Writes the warm-up requests of a model's serving input to path; the assets_extra.

  None when the serving input has no warm-up requests.
  """
  chosen = serving.get(spec, serving_input)
  if chosen.warmup_fn is None:
    return None
  warmup.write(path, chosen.warmup_fn(spec, **params))
  return warmup.assets_extra(path)
