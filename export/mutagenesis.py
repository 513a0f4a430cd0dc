r"""Which bases of a region matter to the model? In-silico saturation mutagenesis.

  python -m export.mutagenesis --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --bed=regions.bed --mutate_length=20 --stats=sum,center,scd \
      --ensemble_rc --ensemble_shifts=1,0,-1 --output_dir=out/
  python -m export.mutagenesis --saved_model=runs/cage/export/best --fasta=genome.fa \
      --vcf=variants.vcf --mutate_length=20 --plot --output_dir=out/

basenji_sat_bed.py (and with --vcf, basenji_sat_vcf.py) in one command. The model is
--saved_model (an export) or --params_file with --checkpoint (basenji's .h5, a
model_dir or a checkpoint). Each BED region (its strand in column 6) is centred in a
window of the model's length; with --vcf, each variant's reference window and one
per ALT. Every base of the central --mutate_length is changed to each other base and
every mutant predicted; out/scores.h5 holds the --stats of each (basenji's layout) and
--plot adds one PNG per region: a sequence logo over a position x base heat map.
--targets_file keeps its targets; a stranded (Borzoi) table's pairs are summed.
Where to use it rather than export.variants: variants scores the alleles a VCF names;
mutagenesis asks what every possible change of a short stretch would do.
Bad input prints one line and exits with 2, writing nothing.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
import os

from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import mutagenesis_output
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from flags import analysis as analysis_flags
from flags import common

analysis_flags.define_model_flags()
common.define_own(absl_flags.DEFINE_string, 'fasta', '', 'The genome FASTA (plain, '
                  'gzipped or bgzipped; indexed on first use) of the regions.')
common.define_own(absl_flags.DEFINE_string, 'bed', '', 'BED file of the regions to '
                  'mutate; column 6, when present, is the strand (- reverse-'
                  'complements the window).')
common.define_own(absl_flags.DEFINE_string, 'vcf', '', 'Instead of --bed: a VCF; the '
                  'reference window and one window per ALT of each variant are mutated '
                  'around it, as basenji_sat_vcf.py does.')
common.define_own(absl_flags.DEFINE_integer, 'mutate_length', 20, 'Bases at the centre '
                  'of each window to mutate, each to the three other bases '
                  '(basenji\'s -l).')
common.define_own(absl_flags.DEFINE_string, 'stats', mutagenesis.DEFAULT_STATS,
                  'Comma-separated statistics to write, of %s.'
                  % ','.join(mutagenesis.STATS))
common.define_own(absl_flags.DEFINE_string, 'targets_file', '', "basenji's (or "
                  "Borzoi's) targets table: only its targets are scored, in its order; "
                  'with a strand_pair column the two strands of a track are swapped in '
                  'the reverse-complement ensemble and summed into one target, as '
                  'baskerville\'s hound_ism_bed.py does.')
common.define_own(absl_flags.DEFINE_bool, 'plot', False, 'Also write one PNG per '
                  'region: a sequence logo over a position x base heat map of the '
                  'first statistic, averaged over targets.')
common.define_own(absl_flags.DEFINE_string, 'output_dir', '', 'Folder to write '
                  'scores.h5 (and the PNGs) into (created if needed).')


def main(argv):
  FLAGS = common.command_flags(argv)  # pylint: disable=invalid-name
  # Everything that needs no model is checked first: loading one takes a while.
  stats = variant_stats.parse_stats(FLAGS.stats, mutagenesis.STATS)
  if not FLAGS.fasta or not FLAGS.output_dir:
    raise UserError('--%s is required, e.g. --%s' % (
        ('fasta', 'fasta=genome.fa') if not FLAGS.fasta else
        ('output_dir', 'output_dir=out/')))
  if bool(FLAGS.bed) == bool(FLAGS.vcf):
    raise UserError('pass the regions either as --bed=regions.bed or as '
                    '--vcf=variants.vcf; %s.' % ('both are set' if FLAGS.bed else
                                                 'neither is set'))
  for name in ('fasta', 'bed', 'vcf', 'targets_file'):
    path = FLAGS[name].value
    if path and not os.path.isfile(path):
      raise UserError('--%s=%s is not a file.' % (name, path))
  if FLAGS.mutate_length <= 0:
    raise UserError('--mutate_length=%d must be positive, e.g. 20.'
                    % FLAGS.mutate_length)
  model = model_source.load(**analysis_flags.model_kwargs())
  console.line('Model %s: %d bp -> %d bins x %d targets%s.' % (
      model.source, model.seq_length, model.bins, model.num_targets,
      _scored(model.targets)))
  mutagenesis_output.run(model, FLAGS.fasta, FLAGS.output_dir, bed=FLAGS.bed,
                         vcf=FLAGS.vcf, mutate_length=FLAGS.mutate_length,
                         stats=stats, plot=FLAGS.plot)


def _scored(table):
  """', scoring ...' for a targets table, or ''."""
  if not table.path:
    return ''
  if table.stranded:
    return '; scoring %d of them, strands summed into %d targets' % (
        len(table.index), len(table.collapsed))
  return '; scoring the %d listed in %s' % (len(table.index), table.path)


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
