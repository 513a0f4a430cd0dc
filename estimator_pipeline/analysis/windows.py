r"""The one reader of BED regions as model windows, for every analysis command.

  python -c "
  from estimator_pipeline.analysis import windows
  from estimator_pipeline.records import fasta_index
  genome = fasta_index.open_genome('genome.fa', '/tmp')
  for w in windows.bed_windows(genome, 'regions.bed', 4096, skipped=[]):
    print(w.region.chrom, w.start, w.end, w.strand, w.codes[:8])"

The rule, basenji's (basenji_predict_bed.py, basenji_sat_bed.py): each region is
centred in a window of the model's length, mid = (start + end) // 2, window start =
mid - seq_length // 2; where the window runs past either end of its chromosome, the
bases there are N (all-zero one-hot), and the window keeps its coordinates (its start
is negative past the chromosome's start). A region on a chromosome the FASTA lacks is
skipped, with its reason, and the run goes on; a BED line with fewer than three
columns is an error naming the line. export.predict --bed, export.mutagenesis --bed
and export.saliency --bed all read their regions here.
"""

import dataclasses

import numpy as np

from estimator_pipeline.records import genome_files


@dataclasses.dataclass
class Window:
  """One BED region's window of the model's length."""
  region: genome_files.Region  # the BED line: line number, chrom, start, end
  start: int  # the window, [start, end) on the chromosome; may run past either end
  end: int
  codes: np.ndarray  # uint8 [seq_length], A0 C1 G2 T3 N4, N past the chromosome
  strand: str  # column 6 ('+' when absent)


def bed_windows(genome, bed, seq_length, skipped):
  """Yields a Window per region of bed (a file) on genome's chromosomes.

  genome: a records.fasta_index.Genome. skipped: a list that gets (Region, reason)
  of each region on a chromosome genome lacks.
  """
  reader = genome.reader()
  try:
    for line, chrom, start, end, fields in genome_files.iter_bed(bed):
      region = genome_files.Region(line, chrom, start, end)
      if chrom not in genome.lengths:
        skipped.append((region, 'chromosome %s is not in the FASTA' % chrom))
        continue
      window_start, window_end = genome_files.window_of(region, seq_length)
      strand = (fields[5].strip().decode('utf-8', 'replace') if len(fields) > 5
                else '+')
      yield Window(region, window_start, window_end,
                   reader.codes(chrom, window_start, window_end), strand)
  finally:
    reader.close()


def describe(region):
  """How messages name a BED region: `line 4 (chr3:4000-4096)`."""
  return 'line %d (%s:%d-%d)' % (region.line, region.chrom, region.start, region.end)
