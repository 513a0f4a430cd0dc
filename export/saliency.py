r"""Which bases drive one target's prediction? Input x gradient, per base, of a model.

  python -m export.saliency --saved_model=runs/cage/export/best --fasta=genome.fa \
      --bed=peaks.bed --target_index=0 --output=scores.npz
  python -m export.saliency --params_file=params.json --checkpoint=model_best.h5 \
      --records='data/tfrecords/test-*.tfr' --target_index=0 --output=scores.npz

The model is --saved_model (an export's `saliency` signature) or --params_file with
--checkpoint (basenji's .h5, a model_dir or a checkpoint; --head, --gelu and the
ensemble flags as in `python -m export`). Sequences come from --fasta with --bed (each
region centred in a window of the model's length, N past a chromosome's end), from
--fasta alone (records exactly the model's length) or from basenji --records. The .npz
holds the names and coordinates, the bases, `saliency` [N, L, 4] and `scores` [N, L]
(estimator_pipeline/analysis/saliency.py). Bad input prints one line and exits with 2,
writing nothing.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import saliency
from estimator_pipeline.core.errors import run_main
from flags import analysis as analysis_flags
from flags import common

analysis_flags.define_model_flags(batch_size=16)
for _name, _help in (
    ('fasta', 'FASTA file (plain or gzipped) of the sequences, or of the genome when '
     '--bed is given.'),
    ('bed', 'BED file of regions of --fasta; each is centred in a window of the '
     'model\'s sequence length (N past a chromosome\'s end).'),
    ('records', 'Glob or comma list of basenji TFRecords to score instead of --fasta, '
     'e.g. data/tfrecords/test-*.tfr.'),
    ('output', 'The .npz file to write, e.g. scores.npz.')):
  common.define_own(absl_flags.DEFINE_string, _name, '', _help)
common.define_own(absl_flags.DEFINE_integer, 'target_index', 0, 'Index of the target '
                  '(track) whose prediction the saliency explains, as in targets.txt.')


def main(argv):
  FLAGS = common.command_flags(argv)  # pylint: disable=invalid-name
  # Everything that needs no model is checked first: loading one takes a while.
  saliency.check_inputs(FLAGS.output, FLAGS.fasta, FLAGS.bed, FLAGS.records)
  model = model_source.load(saliency=True, **analysis_flags.model_kwargs())
  saliency.run(model, FLAGS.output, FLAGS.target_index, FLAGS.fasta, FLAGS.bed,
               FLAGS.records)


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
