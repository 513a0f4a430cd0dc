r"""What does the model predict for these images, or over these genome regions?

  python -m export.predict --saved_model=runs/x/export/best --images='photos/*.jpg' \
      --output=predictions.csv
  python -m export.predict --saved_model=runs/x/export/best/1732458000 \
      --records='data/validation-*' --output=predictions.jsonl
  python -m export.predict --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --bed=regions.bed --output=preds.h5 \
      [--bigwig_dir=tracks/ --targets_file=targets.txt] [--ensemble_rc ...]

Image classifiers (--images or --records, with --saved_model): one row per input in
--output (.csv or .jsonl; stdout without it), whatever the export's serving input
(estimator_pipeline/analysis/image_predictions.py). Sequence models (--fasta with
--bed; the model as --saved_model or --params_file with --checkpoint), as
basenji_predict_bed.py: each region centred in a window of the model's length, N past
a chromosome's end, preds.h5 and with --bigwig_dir a bigWig per target
(estimator_pipeline/analysis/regions.py). Bad input prints one line and exits with 2.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import image_predictions
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import regions
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from flags import analysis as analysis_flags
from flags import common


def define_flags():
  """The command line's flags (defined by __main__ only, so modules import freely)."""
  absl_flags.DEFINE_string('saved_model', '', 'SavedModel version directory, or the '
                           'directory of versions whose newest one is used.')
  absl_flags.DEFINE_string('images', '', 'Glob or comma list of JPEG/PNG files to '
                           'predict.')
  absl_flags.DEFINE_string('records', '', 'Glob or comma list of TFRecord files in the '
                           'training layout (image/encoded, ...) to predict, instead of '
                           '--images.')
  absl_flags.DEFINE_string('output', '', 'File to write: .csv or .jsonl (by its '
                           'extension; empty prints tab-separated rows on stdout), or '
                           'preds.h5 with --fasta and --bed.')
  absl_flags.DEFINE_integer('batch_size', 32, 'Inputs sent to the model per call.')
  # Sequence models over genome regions; the model flags are the analysis commands'.
  analysis_flags.define_model_flags()
  for name, text in (
      ('fasta', 'Sequence models: the genome FASTA the --bed regions are on.'),
      ('bed', 'Sequence models: BED regions to predict, each centred in a window of '
       "the model's length."),
      ('bigwig_dir', 'Sequence models: also write one bigWig per target into this '
       'folder.'),
      ('targets_file', "Sequence models: basenji's targets table; its targets, in its "
       'order, are kept and name the bigWigs, and a strand_pair column (Borzoi\'s) '
       'swaps each stranded pair in the reverse-complement ensemble.')):
    common.define_own(absl_flags.DEFINE_string, name, '', text)
  common.define_own(absl_flags.DEFINE_integer, 'bin_size', 0, 'Sequence models: bp '
                    'per predicted bin, for the coordinates; 0 takes the window '
                    'length / bins (right for a model that does not crop).')


def main(argv):
  FLAGS = common.command_flags(argv)  # pylint: disable=invalid-name
  if FLAGS.fasta or FLAGS.bed:
    if FLAGS.images or FLAGS.records:
      raise UserError('--fasta and --bed predict a sequence model; --images and '
                      '--records are for image classifiers: pass one kind.')
    regions.check_inputs(FLAGS.fasta, FLAGS.bed, FLAGS.output, FLAGS.targets_file)
    model = model_source.load(**analysis_flags.model_kwargs())
    regions.predict_regions(model, FLAGS.fasta, FLAGS.bed, FLAGS.output,
                            FLAGS.bigwig_dir, FLAGS.bin_size)
    return
  if not FLAGS.saved_model:
    raise UserError('--saved_model is empty: pass e.g. runs/x/export/best.')
  image_predictions.run(FLAGS.saved_model, FLAGS.images, FLAGS.records, FLAGS.output,
                        FLAGS.batch_size)


if __name__ == '__main__':
  define_flags()
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
