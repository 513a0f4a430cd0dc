r"""How does each variant of a VCF change the genes around it? (hound_snpgene.py)

  python -m export.gene_variants --params_file=params.json --checkpoint=model.h5 \
      --targets_file=targets.txt --fasta=genome.fa --gtf=genes.gtf.gz \
      --vcf=variants.vcf --ensemble_rc --ensemble_shifts=1,0,-1 \
      --stats=logSUM,SUM,logSED,D2 --output_dir=out/

Each gene of --gtf is centred in the model's window; every variant of --vcf inside a
window is scored for that window's genes, over each gene's exon bins (every bin its
span overlaps with --span) and the targets of its strand: out/scores.h5 in
hound_snpgene.py's layout (`<stat>/<variant>/<gene>`) and out/sed.tsv, one line per
(variant, gene). Statistics, ensemble, indels and untransform are those of
`export.variants --format=baskerville`. Bad input prints one line and exits with 2,
writing nothing.
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
from estimator_pipeline.analysis import variant_genes
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from flags import analysis as analysis_flags
from flags import common

analysis_flags.define_model_flags()
common.define_own(absl_flags.DEFINE_string, 'fasta', '', 'The genome FASTA (plain, '
                  'gzipped or bgzipped; indexed on first use) the VCF was called on.')
common.define_own(absl_flags.DEFINE_string, 'vcf', '', 'The variants: a VCF file, plain '
                  'or gzipped, in any order.')
common.define_own(absl_flags.DEFINE_string, 'gtf', '', 'The genes: a GTF file, plain or '
                  'gzipped; its exon lines define each gene (by gene_id).')
common.define_own(absl_flags.DEFINE_string, 'stats', variant_effects.DEFAULT_STATS,
                  'Comma-separated statistics to write, of %s.'
                  % ','.join(variant_effects.STATS))
common.define_own(absl_flags.DEFINE_string, 'targets_file', '', "The targets table "
                  "(basenji's or Borzoi's, with strand_pair): score its targets, in its "
                  'order, untransformed by its clip_soft and sum_stat columns; a gene '
                  'gets the targets of its strand. Empty: every target, t0, t1, ...')
common.define_own(absl_flags.DEFINE_bool, 'span', False, "Score over every bin the "
                  "gene's span (first exon start to last exon end) overlaps, introns "
                  'included, instead of its exon bins.')
common.define_own(absl_flags.DEFINE_bool, 'indel_stitch', False, "Stitch an indel's "
                  'plain and compensated alternative predictions at its position '
                  'instead of pairing the reference with both.')
common.define_own(absl_flags.DEFINE_bool, 'untransform_old', False, "Undo old models' "
                  "transform (baskerville's -u: scale, clip_soft, then the 4/3 power of "
                  'sum_sqrt targets).')
common.define_own(absl_flags.DEFINE_float, 'cluster_pct', 0.0, 'Genes of a chromosome '
                  'whose midpoints lie within this fraction of the window of the first '
                  'of a run share one window, predicted once; 0 gives each gene its '
                  'own.')
common.define_own(absl_flags.DEFINE_integer, 'crop_bins', -1, 'Bins the model crops at '
                  'each end of its window (its Cropping1D), which places its bins on '
                  'the genome; -1 reads it from --params_file (0 with --saved_model).')
common.define_own(absl_flags.DEFINE_bool, 'all_alts', False, 'Score every ALT of a '
                  'multi-allelic line as its own row; off, the first ALT only.')
common.define_own(absl_flags.DEFINE_string, 'output_dir', '', 'Folder to write scores.h5 '
                  'and sed.tsv into (created if needed).')

_EXAMPLES = {'fasta': 'fasta=genome.fa', 'vcf': 'vcf=variants.vcf',
             'gtf': 'gtf=genes.gtf.gz', 'output_dir': 'output_dir=out/'}


def main(argv):
  if len(argv) > 1:
    raise UserError('unexpected argument %r: every option is a --flag.' % argv[1])
  console.quiet()
  FLAGS = absl_flags.FLAGS  # pylint: disable=invalid-name
  stats = variant_effects.parse_stats(FLAGS.stats)
  for name, example in _EXAMPLES.items():
    if not FLAGS[name].value:
      raise UserError('--%s is required, e.g. --%s' % (name, example))
  for name in ('fasta', 'vcf', 'gtf', 'targets_file'):
    path = FLAGS[name].value
    if path and not os.path.isfile(path):
      raise UserError('--%s=%s is not a file.' % (name, path))
  if not 0 <= FLAGS.cluster_pct < 0.5:
    raise UserError('--cluster_pct=%g must be at least 0 and below 0.5, e.g. 0.1.'
                    % FLAGS.cluster_pct)
  # Read before the model loads: a file that is not a GTF fails at once.
  variant_genes.unique_genes(variant_genes.gtf.read_genes(FLAGS.gtf))
  kwargs = analysis_flags.model_kwargs()
  rc, shifts = kwargs.pop('ensemble_rc'), kwargs.pop('ensemble_shifts')
  model = model_source.load(**kwargs)
  console.line('Model %s: %d bp -> %d bins x %d targets.' % (
      model.source, model.seq_length, model.bins, model.num_targets))
  scorer = variant_scores.Scorer(model, FLAGS.targets_file, rc, shifts,
                                 FLAGS.untransform_old, FLAGS.indel_stitch,
                                 FLAGS.crop_bins, FLAGS.params_file)
  variant_genes.score(model, FLAGS.fasta, FLAGS.gtf, FLAGS.vcf, FLAGS.output_dir,
                      stats, scorer, FLAGS.span, FLAGS.cluster_pct, FLAGS.all_alts)


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
