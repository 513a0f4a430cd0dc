r"""Saturation mutagenesis end to end: regions in, scores.h5 (and PNGs) out.

  python -m export.mutagenesis --saved_model=runs/cage/export/best --fasta=genome.fa \
      --bed=regions.bed --mutate_length=20 --stats=sum,center,scd --plot \
      --output_dir=out/

scores.h5 is basenji_sat_bed.py's layout: `seqs` bool [regions, length, 4], one
float16 [regions, length, 4, targets] per statistic, and `chr`, `start`, `end`,
`strand` of the mutated bases; with a VCF, basenji_sat_vcf.py's: `label` (ID_allele)
instead of the coordinates. Everything is written under temporary names and renamed
when complete; bad input is found before anything is written.
"""

import os
import shutil
import tempfile

import h5py
import numpy as np

from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import plots
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index

SCORES_FILE = 'scores.h5'
# Regions named one by one when skipped, before only counting them.
_NAMED = 20


def run(model, fasta, output_dir, bed='', vcf='', mutate_length=20, stats=('sum',),
        plot=False):
  """Mutates every region of bed (or every allele of vcf); writes output_dir.

  Returns the [mutagenesis.RegionScores] in file order.
  """
  if bool(bed) == bool(vcf):
    raise UserError('pass the regions either as --bed=regions.bed or as '
                    '--vcf=variants.vcf; %s.' % ('both are set' if bed else
                                                 'neither is set'))
  if not 0 < mutate_length <= model.seq_length:
    raise UserError('--mutate_length=%d must be between 1 and the model\'s %d bp.'
                    % (mutate_length, model.seq_length))
  span = mutagenesis.mutated_span(model.seq_length, mutate_length)
  scratch = tempfile.mkdtemp(prefix='mutagenesis-')
  skipped = []
  try:
    genome = fasta_index.open_genome(fasta, scratch)
    regions = (mutagenesis.bed_regions(bed, genome, model.seq_length, mutate_length,
                                       skipped) if bed else
               mutagenesis.vcf_regions(vcf, genome, model.seq_length, skipped))
    with console.Progress(0, 'mutagenesis', unit='seq') as meter:
      done = mutagenesis.score(
          model, regions, span, stats,
          on_region=lambda r: meter.update(0, fields=('%s done' % r.region.name,)),
          on_progress=meter.update)
    _check_done(done, skipped, bed or vcf, genome)
    files.make_output_dir(output_dir)
    _write_h5(os.path.join(output_dir, SCORES_FILE), done, stats, bool(bed))
    if plot:
      _plot_all(done, stats[0], output_dir)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  for region, reason in skipped[:_NAMED]:
    console.line('skipped line %d: %s' % (region.line, reason))
  # Each region is its unmutated window and 3 mutants per base, 4 at an N.
  predicted = sum(len(mutagenesis.mutants(d.region.codes, span)) for d in done)
  console.line('Mutated %d region(s) x %d bp: %d sequences predicted (each region '
               'once, and 3 mutants per base, 4 at an N)%s; wrote %s.' % (
                   len(done), mutate_length, predicted, ', %d skipped' % len(
                       skipped) if skipped else '',
                   os.path.join(output_dir, SCORES_FILE)))
  return done


def _check_done(done, skipped, path, genome):
  if done:
    return
  if skipped:
    raise UserError('%s: none of its regions could be mutated (first, line %d: %s); '
                    'the FASTA has %s.' % (path, skipped[0][0].line, skipped[0][1],
                                          ', '.join(list(genome.lengths)[:8])))
  raise UserError('%s holds no region to mutate.' % path)


def _write_h5(path, done, stats, stranded):
  with files.atomic_path(path) as tmp:
    with h5py.File(tmp, 'w') as h5:
      if stranded:
        h5.create_dataset('chr', data=np.array([d.region.chrom for d in done], 'S'))
        h5.create_dataset('start', data=np.array([d.region.start for d in done],
                                                 np.int64))
        h5.create_dataset('end', data=np.array([d.region.end for d in done], np.int64))
        h5.create_dataset('strand', data=np.array([d.region.strand for d in done],
                                                  'S'))
      else:
        h5.create_dataset('label', data=np.array([d.region.label for d in done], 'S'))
      h5.create_dataset('seqs', data=np.stack([d.seqs() for d in done]))
      scores = [d.scores() for d in done]
      for stat in stats:
        h5.create_dataset(stat, data=np.stack([s[stat] for s in scores]))


def _plot_all(done, stat, output_dir):
  """One PNG per region: the first statistic, averaged over targets."""
  for i, region_scores in enumerate(done):
    region = region_scores.region
    values = region_scores.scores()[stat].astype(np.float32).mean(axis=-1)
    name = '%s_%d_%d' % (region.chrom, region.start, region.end) if not region.label \
        else region.label
    safe = ''.join(c if c.isalnum() or c in '._-' else '_' for c in name)
    title = '%s  (%s, mean over %d targets)' % (
        region.name, stat, region_scores.reference.shape[-1])
    seqs = region_scores.seqs()
    others = (values * ~seqs).sum(axis=1) / np.maximum((~seqs).sum(axis=1), 1)
    there = (values * seqs).sum(axis=1)
    # How much the base there matters: for a centred statistic, its score above the
    # other bases'; for a distance from the unmutated prediction (scd, js), how far
    # the other bases move it.
    importance = there - others if stat in mutagenesis.CENTRED else others
    plots.mutagenesis_png(os.path.join(output_dir, 'region%03d_%s.png' % (i, safe)),
                          values, seqs, importance, title)
