"""Exporters run by train_and_evaluate: export/best/ (by eval loss) and export/final/.

Each writes SavedModels as integer version directories, which TF Serving watches, and
prunes old versions. The Estimator writes a version under a temporary name and renames
it when complete, so Serving never sees half a model.

  ls runs/x/export/best/   # e.g. 1732458000  1732458123

Each version also holds assets.extra/tf_serving_warmup_requests (see warmup.py), which
the Estimator copies in before that rename.
"""

import tensorflow as tf


class FinalExporter(tf.estimator.LatestExporter):
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
      tf.estimator.BestExporter(
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
  # Imported here: the TF Serving protos are needed only when exporting.
  from export import serving  # pylint: disable=g-import-not-at-top
  from export import warmup  # pylint: disable=g-import-not-at-top
  if not serving_input and not serving.names(spec.layout):
    return None
  chosen = serving.get(spec, serving_input)
  if chosen.warmup_fn is None:
    return None
  warmup.write(path, chosen.warmup_fn(spec, **params))
  return warmup.assets_extra(path)
