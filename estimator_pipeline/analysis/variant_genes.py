r"""export.gene_variants: each variant's effect on the genes whose window holds it, over
the gene's exon bins (or its whole span), as hound_snpgene.py scores it.

  python -m export.gene_variants --params_file=params.json --checkpoint=model.h5 \
      --targets_file=targets.txt --fasta=genome.fa --gtf=genes.gtf.gz \
      --vcf=variants.vcf --ensemble_rc --ensemble_shifts=1,0,-1 \
      --stats=logSUM,SUM,D2,REF,ALT --output_dir=out/

Genes (exon lines of the GTF, exons of all transcripts united) are centred in the
model's window on their exons' midpoint: the integer part of the mean of every exonic
base's 0-based position. Genes of one chromosome whose midpoints lie within
--cluster_pct x L of a run's first share a window centred on the mean of their
midpoints, so it is predicted once. Every variant whose position lies in a window (its
cropped flanks included) is scored for each of its genes: the reference window at
each shift, the alternative with an indel's compensating shifts (variant_alleles.py),
untransformed, then the statistics (variant_effects.py) over the gene's bins and the
targets of its strand, no strand sum: a + gene's columns are the collapsed targets (the
+ and unstranded rows), a - gene's their other strands (the - rows in place of the +
ones), so column k names one track pair for every gene, wherever the table lists the
pair's rows. A gene's bins: every bin any of its
exons overlaps, or with --span every bin its span from first exon start to last exon
end overlaps.

out/scores.h5 has hound_snpgene.py's layout: `snp`, `chr`, `pos`, `ref_allele`,
`alt_allele` (every scored VCF row), `target_ids`, `target_labels` (the collapsed
targets), `gene` (the genes of windows that hold a variant, window by window) and one
float16 dataset `<stat>/<snp>/<gene>` per scored pair ([targets], REF and ALT [shifts,
bins, targets]). out/sed.tsv: one line per (variant, gene) with the statistics per
target, for reading as a table.
"""

import math
import os
import shutil
import tempfile

import h5py
import numpy as np

from estimator_pipeline.analysis import gtf
from estimator_pipeline.analysis import variant_alleles
from estimator_pipeline.analysis import variant_effects
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.analysis import variants
from estimator_pipeline.core import console
from estimator_pipeline.core import files
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index

H5_FILE = 'scores.h5'
TSV_FILE = 'sed.tsv'
_META = ('snp', 'chr', 'pos', 'ref_allele', 'alt_allele')


def midpoint(gene):
  """The integer part of the mean 0-based position of the gene's exonic bases."""
  count = sum(end - start for start, end in gene.exons)
  total = sum((start + end - 1) * (end - start) // 2 for start, end in gene.exons)
  return int(total / count)


def gene_bins(gene, pstart, bins, stride, span=False):
  """Sorted bins of [0, bins) that the gene's exons (or span) overlap; pstart: the
  genome position of bin 0."""
  found = set()
  for start, end in ([(gene.start, gene.end)] if span else gene.exons):
    first = math.floor(max(0, start - pstart) / stride)
    last = math.ceil(max(0, end - pstart) / stride)
    found.update(range(min(max(first, 0), bins), min(max(last, 0), bins)))
  return np.array(sorted(found), np.int64)


def unique_genes(genes):
  """read_genes' dict (by id and by name) -> each Gene once, in file order."""
  return list({id(g): g for g in genes.values()}.values())


def gene_clusters(genes, lengths, seq_length, pct):
  """[variant_alleles.Cluster with .genes], chromosomes in FASTA order, genes by
  midpoint; windows centred on the mean midpoint of their genes."""
  distance = int(seq_length * pct)
  clusters = []
  for chrom in lengths:
    mine = sorted((g for g in genes if g.chrom == chrom), key=midpoint)
    first = None
    for gene in mine:
      if clusters and first is not None and midpoint(gene) < first + distance:
        clusters[-1].genes.append(gene)
        continue
      first = midpoint(gene)
      clusters.append(variant_alleles.Cluster(chrom, []))
      clusters[-1].genes = [gene]
  for c in clusters:
    mid = int(np.mean([midpoint(g) for g in c.genes]))
    c.start = mid - seq_length // 2
  return clusters


def assign(alleles, clusters, seq_length):
  """Adds each allele to every cluster whose window holds its position."""
  by_chrom = {}
  for c in clusters:
    by_chrom.setdefault(c.chrom, []).append(c)
  for allele in alleles:
    position = allele.variant.pos - 1
    for c in by_chrom.get(allele.chrom, ()):
      if max(0, c.start) <= position < c.start + seq_length:
        c.alleles.append(allele)


def strand_columns(table):
  """{gene strand: the table rows scored for it}, aligned with the collapsed targets:
  column k is collapsed target k for a + gene and its other strand for a - gene (the
  table's + and unstranded rows, or - and unstranded ones; every row without strand
  pairs)."""
  if table.pair is None:
    rows = list(range(len(table.index)))
    return {'+': rows, '-': rows}
  return {'+': list(table.collapsed),
          '-': [table.pair[k] for k in table.collapsed]}


def score(model, fasta, gtf_path, vcf, output_dir, stats, scorer, span=False,
          pct=0.0, all_alts=False):
  """Scores vcf's variants on gtf's genes into output_dir/scores.h5 and sed.tsv.

  Raises:
    UserError: bad input, or no (variant, gene) pair with exon bins to score;
      nothing is written then.
  """
  genes = unique_genes(gtf.read_genes(gtf_path))
  scratch = tempfile.mkdtemp(prefix='gene-variants-')
  try:
    genome = fasta_index.open_genome(fasta, scratch)
    summary = variants.Summary()
    alleles = list(variant_scores.read_alleles(genome, vcf, scorer.seq_length,
                                               summary, all_alts))
    summary.rows = len(alleles)
    if not alleles:
      variants.check_scored(summary, fasta, vcf, genome)
    _check_chromosomes(genes, genome, gtf_path)
    clusters = gene_clusters(genes, genome.lengths, scorer.seq_length, pct)
    assign(alleles, clusters, scorer.seq_length)
    clusters = [c for c in clusters if c.alleles]
    results = _score_clusters(genome, clusters, stats, scorer, span)
    if not results:
      raise UserError('no variant of --vcf=%s lies in the window of a gene of --gtf=%s '
                      'with exon bins there: nothing to score.' % (vcf, gtf_path))
    _write(scratch, alleles, clusters, results, stats, scorer)
    files.make_output_dir(output_dir)
    for name in (H5_FILE, TSV_FILE):
      with files.atomic_path(os.path.join(output_dir, name)) as tmp:
        shutil.copyfile(os.path.join(scratch, name), tmp)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  variants.report(summary, output_dir, all_alts, (H5_FILE, TSV_FILE))
  console.line('Scored %d (variant, gene) pairs.' % len(results))
  return results


def _check_chromosomes(genes, genome, gtf_path):
  if not any(g.chrom in genome.lengths for g in genes):
    raise UserError('--gtf=%s names none of the FASTA\'s chromosomes (its genes are on '
                    '%s; the FASTA has %s): pass the annotation of this genome.' % (
                        gtf_path, ', '.join(sorted({g.chrom for g in genes})[:5]),
                        ', '.join(list(genome.lengths)[:5])))


def _score_clusters(genome, clusters, stats, scorer, span):
  """-> [(Allele, Gene, bins, {stat: float16})] in window, variant, gene order."""
  columns = strand_columns(scorer.table)
  results, warned = [], set()
  reader = genome.reader()
  try:
    with console.Progress(0, 'scoring gene windows', unit='window') as progress:
      for c, preds in variant_scores.predict_clusters(scorer, clusters, reader,
                                                      compensate_ref=False):
        pstart = c.start + scorer.crop
        bins = {g.gene_id: gene_bins(g, pstart, scorer.bins, scorer.stride, span)
                for g in c.genes}
        for gene in c.genes:
          if not len(bins[gene.gene_id]) and gene.gene_id not in warned:
            warned.add(gene.gene_id)
            console.line('%s: no %s in its window\'s predicted bins; not scored.' % (
                gene.gene_id, 'part of its span' if span else 'exon'))
        for i, allele in enumerate(c.alleles):
          ref, alt, _ = variant_scores.allele_sides(scorer, c, preds, i, False)
          for gene in c.genes:
            where = bins[gene.gene_id]
            if not len(where):
              continue
            keep = columns[gene.strand if gene.strand in columns else '+']
            values = variant_effects.compute(ref[:, where][..., keep],
                                             alt[:, where][..., keep], stats)
            results.append((allele, gene, where, values))
        progress.update(1)
  finally:
    reader.close()
  return results


def _strings(values):
  return np.array(np.array(values, object), 'S')


def _write(scratch, alleles, clusters, results, stats, scorer):
  with h5py.File(os.path.join(scratch, H5_FILE), 'w') as h5:
    rows = [(a.variant.snp, a.variant.chrom, a.variant.pos, a.variant.ref,
             a.variant.alt) for a in alleles]
    for k, name in enumerate(_META):
      column = [r[k] for r in rows]
      h5.create_dataset(name, data=np.array(column, np.uint32) if name == 'pos'
                        else _strings(column))
    h5.create_dataset('target_ids', data=_strings(scorer.ids))
    h5.create_dataset('target_labels', data=_strings(scorer.labels))
    h5.create_dataset('gene', data=_strings([g.gene_id for c in clusters
                                             for g in c.genes]))
    seen = {}
    for allele, gene, _, values in results:
      key = (allele.variant.snp, gene.gene_id)
      seen[key] = seen.get(key, 0) + 1
      # A repeated variant ID gets its own datasets, <id>_2, <id>_3, ...
      name = allele.variant.snp + ('' if seen[key] == 1 else '_%d' % seen[key])
      for stat in stats:
        h5.require_group(stat).require_group(name).create_dataset(
            gene.gene_id, data=values[stat], dtype=np.float16)
  _write_tsv(os.path.join(scratch, TSV_FILE), results, stats, scorer)


def _write_tsv(path, results, stats, scorer):
  scalar = [s for s in stats if s not in variant_effects.PER_BIN]
  header = list(_META) + ['gene', 'gene_name', 'strand', 'bins'] + [
      '%s:%s' % (s, t) for s in scalar for t in scorer.ids]
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\t'.join(header) + '\n')
    for allele, gene, where, values in results:
      v = allele.variant
      fields = [v.snp, v.chrom, str(v.pos), v.ref, v.alt, gene.gene_id, gene.name,
                gene.strand, str(len(where))]
      fields += ['%.8g' % x for s in scalar for x in values[s].astype(np.float64)]
      f.write('\t'.join(fields) + '\n')
