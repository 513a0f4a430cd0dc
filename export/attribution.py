r"""Which bases drive a prediction? Attributions ready for TF-MoDISco.

  python -m export.attribution --method=deepshap --params_file=params.json \
      --checkpoint=model_best.h5 --fasta=genome.fa --bed=regions.bed \
      --targets=0 --bins=center:4 --output_dir=attr/
  python -m export.attribution --method=ig --steps=50 --baseline=shuffle \
      --params_file=params.json --checkpoint=model_best.h5 --fasta=genome.fa \
      --gtf=genes.gtf.gz --gene=GATA1 --bin_size=32 --transform=log \
      --output_dir=attr/ --bigwig_dir=attr/bigwig
  python -m export.motifs --attributions=attr/ --output_dir=motifs/

Methods: saliency (input x gradient), ig (integrated gradients from zeros or from
--references dinucleotide shuffles), deepshap (DeepLIFT's rescale rule against
--references dinucleotide shuffles, as tangermeme's deep_lift_shap; conv and dense
networks) and ism (mean-centred saturation mutagenesis). The readout explained is
--targets summed over --bins (or a gene's exon bins), with --transform; stranded
targets follow each region's strand through the model's strand pairs. The model is
--params_file with --checkpoint (basenji's .h5 too; every method and readout) or
--saved_model (ism, and saliency and ig through its signatures). attr/ holds ohe.npz,
hypothetical.npz and contributions.npz (N x 4 x L, as TF-MoDISco reads them),
regions.tsv and attributions.h5 (estimator_pipeline/analysis/attribution_output.py).
Bad input prints one line and exits with 2, writing nothing.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
import os
import shutil
import tempfile

from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import attribution_models
from estimator_pipeline.analysis import attribution_output
from estimator_pipeline.analysis import attribution_regions
from estimator_pipeline.analysis import gtf as gtf_lib
from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import genome_files
from flags import analysis as analysis_flags
from flags import common

analysis_flags.define_model_flags()
_STRINGS = (
    ('method', 'saliency', 'How to attribute: saliency, ig, deepshap or ism.'),
    ('fasta', '', 'The genome FASTA (plain, gzipped or bgzipped) of the regions, or '
     'FASTA records of exactly the model\'s length when given alone.'),
    ('bed', '', 'BED file of regions; each is centred in a window of the model\'s '
     'length, and column 6 is its strand.'),
    ('vcf', '', 'Instead of --bed: a VCF; each variant\'s reference window and one '
     'per ALT are explained.'),
    ('records', '', 'Instead of --fasta: a glob or comma list of basenji TFRecords.'),
    ('gtf', '', 'A GTF (plain or gzipped) of genes, for --gene.'),
    ('gene', '', 'Instead of --bed: comma-separated gene names or ids of --gtf; each '
     'window is centred on the gene and the readout sums its exon bins.'),
    ('targets', '0', 'The targets the readout sums: comma-separated indices, or a '
     'basenji targets table (its index column).'),
    ('bins', 'all', 'The bins the readout sums: all, center:N (the N middle bins) or '
     'A:B (bins A to B-1).'),
    ('transform', 'sum', 'The readout: sum, or log (log of the sum plus one).'),
    ('baseline', 'zeros', 'The ig baseline: zeros, or shuffle (--references '
     'dinucleotide shuffles of each sequence, averaged: expected gradients).'),
    ('output_dir', '', 'Folder to write ohe.npz, hypothetical.npz, '
     'contributions.npz, regions.tsv and attributions.h5 into (created if needed).'),
    ('bigwig_dir', '', 'Also write contributions.bw, the per-base contribution of '
     'every region, into this folder.'))
for _name, _default, _help in _STRINGS:
  common.define_own(absl_flags.DEFINE_string, _name, _default, _help)
_INTEGERS = (
    ('steps', 50, 'Integration steps of ig (Gauss-Legendre nodes on the path).'),
    ('references', 10, 'Dinucleotide-shuffled references per sequence for deepshap '
     '(and ig with --baseline=shuffle).'),
    ('ism_length', 0, 'Bases at the centre of each window that ism mutates; 0 '
     'mutates the whole window.'),
    ('seed', 0, 'Seed of the shuffled references.'),
    ('bin_size', 0, 'Base pairs per predicted bin, for --gene; 0 takes the window '
     'length over the number of bins (a model that does not crop).'))
for _name, _default, _help in _INTEGERS:
  common.define_own(absl_flags.DEFINE_integer, _name, _default, _help)


def check_flags(f):
  """What needs no model, checked before one is loaded."""
  if f.method not in attribution.METHODS:
    raise UserError('--method=%s: pick one of %s.' % (f.method,
                                                      ', '.join(attribution.METHODS)))
  if f.transform not in readout_lib.TRANSFORMS:
    raise UserError('--transform=%s: pick sum or log.' % f.transform)
  if f.baseline not in ('zeros', 'shuffle'):
    raise UserError('--baseline=%s: pick zeros or shuffle.' % f.baseline)
  if not f.output_dir:
    raise UserError('--output_dir is required, e.g. --output_dir=attr/')
  for name, value in (('steps', f.steps), ('references', f.references)):
    if value <= 0:
      raise UserError('--%s=%d must be positive.' % (name, value))
  for name in ('fasta', 'bed', 'vcf', 'gtf'):
    if f[name].value and not os.path.isfile(f[name].value):
      raise UserError('--%s=%s is not a file.' % (name, f[name].value))
  attribution_regions.check_sources(f.fasta, f.bed, f.vcf, f.records, f.gtf, f.gene)
  if f.bigwig_dir and not (f.bed or f.vcf or f.gene):
    raise UserError('--bigwig_dir needs coordinates on a genome: pass --fasta with '
                    '--bed, --vcf or --gene, or leave --bigwig_dir out.')


def main(argv):
  f = common.command_flags(argv)
  check_flags(f)
  if f.gene:  # A gene missing from the GTF is found before the model loads.
    genes = gtf_lib.read_genes(f.gtf)
    for name in genome_files.as_list(f.gene):
      gtf_lib.find(genes, name, f.gtf)
  kwargs = analysis_flags.model_kwargs()
  options = attribution.Options(f.method, f.steps, f.baseline, f.references,
                                f.ism_length, f.seed, f.batch_size)
  explainer = attribution_models.load(f.method, kwargs, f.transform)
  readout = readout_lib.Readout(
      readout_lib.parse_targets(f.targets, explainer.num_targets),
      readout_lib.parse_bins(f.bins, explainer.bins), f.transform,
      explainer.strand_pair)
  if hasattr(explainer, 'check'):
    explainer.check(readout, options)
  if f.method == 'ism' and not 0 <= f.ism_length <= explainer.seq_length:
    raise UserError('--ism_length=%d must be between 0 (the whole window) and the '
                    'model\'s %d bp.' % (f.ism_length, explainer.seq_length))
  scratch = tempfile.mkdtemp(prefix='attribution-')
  try:
    genome = fasta_index.open_genome(f.fasta, scratch) if (
        f.fasta and (f.bed or f.vcf or f.gene)) else None
    rows = attribution_regions.rows(
        genome, explainer.seq_length, fasta=f.fasta, bed=f.bed, vcf=f.vcf,
        records=f.records, gtf=f.gtf, genes=f.gene, bins=explainer.bins,
        bin_size=f.bin_size or explainer.seq_length // explainer.bins)
    if not rows:
      raise UserError('no sequence to explain: the input holds none.')
    arrays = attribution_output.compute(explainer, rows, readout, options)
    attrs = {'method': f.method, 'readout': readout.describe(), 'steps': f.steps,
             'baseline': f.baseline, 'references': f.references, 'seed': f.seed}
    attribution_output.write(f.output_dir, rows, arrays, attrs, f.bigwig_dir,
                             genome.lengths if genome else None)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  console.line('%s of %d sequences of %d bp (%s); %s; wrote %s.' % (
      f.method, len(rows), explainer.seq_length, readout.describe(),
      attribution_output.summary(arrays, f.method), f.output_dir))


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
