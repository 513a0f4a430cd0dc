r"""How does each variant of a VCF change the model's predictions? (basenji_sad.py)

  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --vcf=variants.vcf --stats=SAD,logSAD,SAX,D1,JS,REF,ALT \
      --targets_file=targets.txt --ensemble_rc --ensemble_shifts=1,0,-1 \
      --output_dir=out/
  python -m export.variants --saved_model=runs/cage/export/best --fasta=genome.fa \
      --vcf=variants.vcf.gz --output_dir=out/

The model is --saved_model (an export) or --params_file with --checkpoint (basenji's
.h5, a model_dir or a checkpoint). For each VCF line the window of the model's length
around POS is read from --fasta with REF and with ALT, both are predicted (with the
--ensemble_rc / --ensemble_shifts ensemble), and the statistics of --stats compare the
two: out/sad.h5 in basenji_sad.py's layout (and its *_pct percentile tables) and a
readable out/sad.tsv. --targets_file keeps and orders the targets it lists and
untransforms the predictions as basenji does. A variant whose chromosome is not in the
FASTA, or whose genome matches neither allele, is skipped with its reason; the run
ends with a count. Bad input prints one line and exits with 2, writing nothing.
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
from estimator_pipeline.analysis import variant_effects
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.analysis import variants
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from flags import analysis as analysis_flags
from flags import common

analysis_flags.define_model_flags()
common.define_own(absl_flags.DEFINE_string, 'fasta', '', 'The genome FASTA (plain, '
                  'gzipped or bgzipped; indexed on first use) the VCF was called on.')
common.define_own(absl_flags.DEFINE_string, 'vcf', '', 'The variants: a VCF file, plain '
                  'or gzipped/bgzipped, read line by line.')
common.define_own(absl_flags.DEFINE_string, 'stats', variant_stats.DEFAULT_STATS,
                  'Comma-separated statistics to write, of %s.'
                  % ','.join(variant_stats.STATS))
common.define_own(absl_flags.DEFINE_string, 'targets_file', '', "basenji's targets "
                  'table: score only its targets, in its order, and untransform the '
                  'predictions by its clip_soft and sum_stat columns. Empty: every '
                  'target, named t0, t1, ...')
common.define_own(absl_flags.DEFINE_bool, 'all_alts', False, 'Score every ALT of a '
                  'multi-allelic line as its own row; off, the first ALT only, as '
                  'basenji does.')
common.define_own(absl_flags.DEFINE_string, 'output_dir', '', 'Folder to write the '
                  'output files into (created if needed).')
common.define_own(absl_flags.DEFINE_enum, 'format', 'basenji', ['basenji', 'baskerville'],
                  "basenji: basenji_sad.py's sad.h5 and sad.tsv (SAD, logSAD, ...). "
                  "baskerville: hound_snp.py's scores.h5 and scores.tsv (logSUM, SUM, "
                  'logSED, ...), boolean one-hot, shifts as separate predictions, '
                  'indels with compensating shifts, stranded targets summed.')
common.define_own(absl_flags.DEFINE_bool, 'indel_stitch', False, 'With '
                  '--format=baskerville: stitch an indel\'s plain and compensated '
                  'predictions at its position instead of pairing each with both.')
common.define_own(absl_flags.DEFINE_bool, 'untransform_old', False, 'With '
                  "--format=baskerville: undo old models' transform (baskerville's -u: "
                  'scale, clip_soft, then the 4/3 power of sum_sqrt targets).')
common.define_own(absl_flags.DEFINE_float, 'cluster_pct', 0.0, 'With '
                  '--format=baskerville: variants within this fraction of the window '
                  'of the first of a run of variants on one chromosome share one window '
                  'and one reference prediction (baskerville\'s -c); 0 scores each '
                  'alone.')
common.define_own(absl_flags.DEFINE_integer, 'crop_bins', -1, 'Bins the model crops at '
                  'each end of its window (its Cropping1D), which places its bins on '
                  'the genome; -1 reads it from --params_file (0 with --saved_model).')


def main(argv):
  if len(argv) > 1:
    raise UserError('unexpected argument %r: every option is a --flag.' % argv[1])
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  # Everything that needs no model is checked first: loading one takes a while.
  bask = FLAGS.format == 'baskerville'
  if bask:
    stats = variant_effects.parse_stats(
        variant_effects.DEFAULT_STATS if FLAGS['stats'].using_default_value
        else FLAGS.stats)
    if not 0 <= FLAGS.cluster_pct < 0.5:
      raise UserError('--cluster_pct=%g must be at least 0 and below 0.5 (a fraction '
                      'of the window around its centre), e.g. 0.1.' % FLAGS.cluster_pct)
  else:
    for name in ('indel_stitch', 'untransform_old', 'cluster_pct', 'crop_bins'):
      if not FLAGS[name].using_default_value:
        raise UserError('--%s is read with --format=baskerville only.' % name)
    stats = variant_stats.parse_stats(FLAGS.stats)
  for name in ('fasta', 'vcf', 'output_dir'):
    if not FLAGS[name].value:
      raise UserError('--%s is required, e.g. --%s' % (
          name, {'fasta': 'fasta=genome.fa', 'vcf': 'vcf=variants.vcf',
                 'output_dir': 'output_dir=out/'}[name]))
  for name in ('fasta', 'vcf', 'targets_file'):
    path = FLAGS[name].value
    if path and not os.path.isfile(path):
      raise UserError('--%s=%s is not a file.' % (name, path))
  if FLAGS.targets_file:
    variant_stats.read_table(FLAGS.targets_file)
  kwargs = analysis_flags.model_kwargs()
  if bask:
    # Each shift is its own prediction and the reverse complement is averaged per
    # shift (analysis/variant_alleles.py), so the network is loaded bare.
    rc, shifts = kwargs.pop('ensemble_rc'), kwargs.pop('ensemble_shifts')
  model = model_source.load(**kwargs)
  console.line('Model %s: %d bp -> %d bins x %d targets.' % (
      model.source, model.seq_length, model.bins, model.num_targets))
  if bask:
    scorer = variant_scores.Scorer(
        model, FLAGS.targets_file, rc, shifts, FLAGS.untransform_old,
        FLAGS.indel_stitch, FLAGS.crop_bins, FLAGS.params_file)
    variant_scores.score(model, FLAGS.fasta, FLAGS.vcf, FLAGS.output_dir, stats,
                         scorer, FLAGS.all_alts, FLAGS.cluster_pct)
    return
  variants.score(model, FLAGS.fasta, FLAGS.vcf, FLAGS.output_dir, stats,
                 FLAGS.targets_file, FLAGS.all_alts)


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
