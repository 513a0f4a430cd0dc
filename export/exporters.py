"""Exporters run by train_and_evaluate: export/best/ (by eval loss) and export/final/.

Each writes SavedModels as integer version directories, which TF Serving watches, and
prunes old versions. The Estimator writes a version under a temporary name and renames
it when complete, so Serving never sees half a model.

  ls runs/x/export/best/   # e.g. 1732458000  1732458123
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


def make_exporters(serving_input_receiver_fn, exports_to_keep=5, compare_fn=None):
  """[best (by eval loss, or compare_fn(best, current) -> bool), final] for an EvalSpec."""
  best_kwargs = {'compare_fn': compare_fn} if compare_fn else {}
  return [
      tf.estimator.BestExporter(
          name='best', serving_input_receiver_fn=serving_input_receiver_fn,
          exports_to_keep=exports_to_keep, **best_kwargs),
      FinalExporter(name='final',
                    serving_input_receiver_fn=serving_input_receiver_fn,
                    exports_to_keep=exports_to_keep),
  ]
