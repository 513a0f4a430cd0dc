r"""The sequences export.attribution explains: BED regions, VCF alleles, genes or records.

  python -m export.attribution --method=ig --fasta=genome.fa --bed=regions.bed ...
  python -m export.attribution --method=ig --fasta=genome.fa --gtf=genes.gtf \
      --gene=GATA1 --bin_size=32 ...

Every source yields attribution.Row (codes, name, window coordinates, strand):

- --bed: windows.bed_windows (each region centred in a window of the model's length,
  N past a chromosome's end; strand from column 6, kept in genome orientation:
  stranded targets follow it instead, readout.stranded_targets);
- --vcf: each variant's reference window and one per ALT (mutagenesis.vcf_regions,
  basenji's rule), named ID_allele;
- --gtf with --gene: a window centred on each gene's span, on the gene's strand, its
  readout bins the gene's exon bins (readout.exon_bins), as borzoi_satg_gene.py;
- --records (or --fasta alone): saliency.py's readers.

A region on a chromosome the FASTA lacks is an error naming its line (an attribution
run is asked for its regions, and a silent gap would shift TF-MoDISco's rows).
"""

from estimator_pipeline.analysis import attribution
from estimator_pipeline.analysis import gtf as gtf_lib
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.analysis import readout as readout_lib
from estimator_pipeline.analysis import saliency
from estimator_pipeline.analysis import windows
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files


def check_sources(fasta, bed, vcf, records, gtf, genes):
  """What needs no model: exactly one source, each with what it needs."""
  given = [name for name, value in (('bed', bed), ('vcf', vcf), ('records', records),
                                    ('gene', genes)) if value]
  if len(given) > 1:
    raise UserError('pass the sequences one way: --%s are both set.'
                    % ' and --'.join(given[:2]))
  if not given and not fasta:
    raise UserError('no sequences given: pass --fasta with --bed, --vcf or --gtf and '
                    '--gene, or --records.')
  if (bed or vcf or genes) and not fasta:
    raise UserError('--%s needs --fasta, the genome its coordinates are on.'
                    % given[0])
  if records and fasta:
    raise UserError('--records holds its own sequences: leave --fasta out.')
  if bool(gtf) != bool(genes):
    raise UserError('--gtf and --gene go together: the genes (comma-separated names '
                    'or ids) whose exon bins the readout sums, and the GTF they are in.')


def rows(genome, seq_length, *, fasta='', bed='', vcf='', records='', gtf='',
         genes='', bins=0, bin_size=0):
  """-> [attribution.Row] of the source given (check_sources first)."""
  if bed:
    return list(_bed_rows(genome, bed, seq_length))
  if vcf:
    return list(_vcf_rows(genome, vcf, seq_length))
  if genes:
    return _gene_rows(genome, gtf, genes, seq_length, bins, bin_size)
  items = (saliency.record_sequences(records, seq_length) if records else
           saliency.fasta_sequences(fasta, seq_length))
  return [attribution.Row(codes, name, chrom, start, end)
          for name, chrom, start, end, codes in items]


def _bed_rows(genome, bed, seq_length):
  skipped = []
  for window in windows.bed_windows(genome, bed, seq_length, skipped):
    if skipped:
      break
    yield attribution.Row(window.codes, '%s:%d-%d' % (
        window.region.chrom, window.region.start, window.region.end),
                          window.region.chrom, window.start, window.end, window.strand)
  if skipped:
    region, reason = skipped[0]
    raise UserError('--bed=%s %s: %s; the FASTA has %s.' % (
        bed, windows.describe(region), reason, _some(genome)))


def _vcf_rows(genome, vcf, seq_length):
  skipped = []
  for region in mutagenesis.vcf_regions(vcf, genome, seq_length, skipped):
    if skipped:
      break
    start = region.start + 1 - seq_length // 2
    yield attribution.Row(region.codes, region.label, region.chrom, start,
                          start + seq_length)
  if skipped:
    region, reason = skipped[0]
    raise UserError('--vcf=%s line %d: %s' % (vcf, region.line, reason))


def _gene_rows(genome, gtf, names, seq_length, bins, bin_size):
  genes = gtf_lib.read_genes(gtf)
  found = []
  reader = genome.reader()
  try:
    for name in genome_files.as_list(names):
      gene = gtf_lib.find(genes, name, gtf)
      if gene.chrom not in genome.lengths:
        raise UserError('--gene=%s is on %s, which --fasta lacks (it has %s).' % (
            name, gene.chrom, _some(genome)))
      start, end = genome_files.window_of(
          genome_files.Region(0, gene.chrom, gene.start, gene.end), seq_length)
      exon_bins = readout_lib.exon_bins(gene, start, seq_length, bins, bin_size)
      if not exon_bins:
        raise UserError('--gene=%s: none of its exons falls in the model\'s bins of '
                        'the %d bp window centred on it.' % (name, seq_length))
      found.append(attribution.Row(reader.codes(gene.chrom, start, end), name,
                                   gene.chrom, start, end, gene.strand, exon_bins))
  finally:
    reader.close()
  return found


def _some(genome):
  names = list(genome.lengths)
  return ', '.join(names[:6]) + (', ...' if len(names) > 6 else '')
