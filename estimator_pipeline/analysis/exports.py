"""The one loader of SavedModels for what users do after training, whatever model
they hold: a version directory (or the directory of versions, whose newest is used)
in a TF1 session of its own, its signatures' tensors by name:

  python -c "
  import estimator_pipeline
  from estimator_pipeline.analysis import exports
  print(sorted(exports.load_export('runs/x/export/best').signatures))"

analysis/model_source.py reads sequence models' exports through it, and
analysis/image_predictions.py image classifiers'.
"""

import tensorflow as tf

from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import short_tf_message


class Export:
  """A SavedModel version loaded in a TF1 session of its own.

  Attributes:
    path: The version directory.
    session: The session that holds its graph and variables.
    signatures: {name: SignatureDef}.
  """

  def __init__(self, path, session, signatures):
    self.path, self.session, self.signatures = path, session, signatures

  def tensors(self, name):
    """-> ({input key: tensor}, {output key: tensor}) of the signature `name`."""
    signature = self.signatures[name]
    graph = self.session.graph
    return ({k: graph.get_tensor_by_name(v.name) for k, v in signature.inputs.items()},
            {k: graph.get_tensor_by_name(v.name)
             for k, v in signature.outputs.items()})


def load_export(saved_model):
  """--saved_model (a version directory, or its parent) -> Export."""
  path = files.saved_model_version(saved_model)
  graph = tf.Graph()
  session = tf.compat.v1.Session(graph=graph)
  try:
    with graph.as_default():
      meta = tf.compat.v1.saved_model.load(session, [tf.saved_model.SERVING], path)
  except (OSError, ValueError, RuntimeError, tf.errors.OpError) as e:
    session.close()
    raise UserError('--saved_model=%s does not load (%s).'
                    % (path, short_tf_message(e)))
  return Export(path, session, dict(meta.signature_def))
