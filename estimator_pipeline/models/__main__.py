r"""See a model before training it: its blocks, receptive field and parameters.

  python -m estimator_pipeline.models --model_name=seqnn --params_file=params.json \
      [--seq_length=N] [--head=NAME] [--gelu=sigmoid]
  python -m estimator_pipeline.models --model_name=resnet_v1_50 [--image_size=224]

Prints one row per block (name, output shape, trainable parameters), then the receptive
field (bp for sequence models, pixels of width for image models) and a last line
`trainable parameters: N`, as basenji users read them from
`seqnn_model.model.summary()`. The graph is only built, never initialized, so a
170M-parameter model takes seconds. Bad input is one `error: ...` line and exit 2.
"""

import estimator_pipeline  # First: applies the TF 2.15 compatibility fixes.
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline import models
from estimator_pipeline.config import controls
from estimator_pipeline.core import errors
from estimator_pipeline.models import overview
from flags import common

FLAGS = absl_flags.FLAGS

common.define('model_name', 'Registered model to describe, e.g. seqnn or resnet_v1_50; '
              'an unknown name lists the known ones.')
common.define('params_file', "--model_name=seqnn: basenji's JSON params file.")
common.define('head', 'Which head* of --params_file to build; empty takes basenji\'s, '
              'the first in natural order.')
common.define('gelu', 'tanh (basenji 0.6 and later, baskerville) or sigmoid (basenji '
              '0.5.1 and earlier) gelu; it changes no shape, only the numbers.')
common.define_own(absl_flags.DEFINE_integer, 'seq_length', 0, 'Sequence models: build '
                  'for this many bp instead of the params file\'s seq_length (0 keeps '
                  'it), e.g. to see a long model at a smaller length.')
common.define('num_classes', 'Image models: classes of the logits layer; 0 shows 1000, '
              'the ImageNet head of the published checkpoints.')
common.define('image_size', "Image models: input height and width; 0 takes the net's "
              'default.')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError('unexpected argument %r: every option is a --flag.'
                           % argv[1])
  console.quiet()
  spec = models.get(FLAGS.model_name)
  if FLAGS.gelu not in controls.GELU_FORMS:
    raise errors.UserError('--gelu=%s is not known; known: %s.'
                           % (FLAGS.gelu, ', '.join(controls.GELU_FORMS)))
  if FLAGS.seq_length < 0:
    raise errors.UserError('--seq_length=%d must be >= 0 (0 keeps the params file\'s).'
                           % FLAGS.seq_length)
  title, found = spec.describe(
      spec, params_file=FLAGS.params_file, head=FLAGS.head, gelu=FLAGS.gelu,
      seq_length=FLAGS.seq_length, num_classes=FLAGS.num_classes,
      image_size=FLAGS.image_size)
  print(title)
  for line in overview.lines(found):
    print(line)


if __name__ == '__main__':
  app.run(lambda argv: errors.run_main(main, argv), flags_parser=flags.parse_or_exit)
