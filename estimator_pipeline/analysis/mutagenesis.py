r"""In-silico saturation mutagenesis: every base of a region's centre changed to each of
the other three, each mutant predicted, basenji_sat_bed.py's (and basenji_sat_vcf.py's)
scores of what changed.

  python -m export.mutagenesis --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --bed=regions.bed --mutate_length=20 --stats=sum,center,scd \
      --ensemble_rc --ensemble_shifts=1,0,-1 --output_dir=out/

For each BED line the window of the model's length is centred on the region (N past a
chromosome end: analysis/windows.py has the rule) and, on the `-` strand,
reverse-complemented; with a VCF instead, each variant's reference window and one
window per ALT (basenji's snps_seq1). One-hot has N all zero. The --mutate_length
positions from L/2 - mutate_length/2 are mutated in order, each base A, C, G, T in
order that differs from the one there; the unmutated window comes first. Mutants of
consecutive regions share batches, built on a second thread while the network runs,
and every prediction [bins, targets] is reduced to its statistics as it arrives:

  sum     sum over bins                      } minus their mean over the 4 bases
  center  sum over the 1 or 2 centre bins    } at each position
  scd     sqrt(sum over bins (pred - unmutated pred)^2)
  js      Jensen-Shannon divergence of the bin distributions (natural log)

Scores[position, base] is the mutant's statistic, the unmutated window's for the base
that is there (for every base at an N), stored float16. The targets are the model's,
or --targets_file's rows in its order; a table with Borzoi's strand_pair column has
each stranded track's two strands added into one target (its + row) before the
statistics, as baskerville's hound_ism_bed.py does (targets.py).
"""

import dataclasses
from typing import List, Optional

import numpy as np
from scipy import special

from estimator_pipeline.analysis import windows
from estimator_pipeline.records import dna
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import vcf as vcf_lib

STATS = ('sum', 'center', 'scd', 'js')
CENTRED = ('sum', 'center')
DEFAULT_STATS = 'sum'


@dataclasses.dataclass
class Region:
  """One window to mutate, as it goes through the model (strand applied)."""
  codes: np.ndarray  # uint8 [L], A0 C1 G2 T3 N4
  chrom: str = ''
  start: int = 0  # genome coordinates of the mutated bases, 0-based half-open
  end: int = 0
  strand: str = '+'
  label: str = ''  # the VCF run's name of the window: ID_allele
  name: str = ''  # how the console and the plots name it


def mutated_span(seq_length, mutate_length):
  """[start, end) of the mutated positions in the window (basenji's -l)."""
  start = seq_length // 2 - mutate_length // 2
  return start, start + mutate_length


def bed_regions(bed, genome, seq_length, mutate_length, skipped):
  """Yields a Region per BED line (windows.bed_windows, reverse-complemented on `-`);
  regions on chromosomes the FASTA lacks go to skipped as (BED Region, reason)."""
  begin, _ = mutated_span(seq_length, mutate_length)
  for window in windows.bed_windows(genome, bed, seq_length, skipped):
    codes, chrom = window.codes, window.region.chrom
    if window.strand == '-':
      codes = dna.reverse_complement_codes(codes)
      mut_end = window.end - begin
      mut_start = mut_end - mutate_length
    else:
      mut_start = window.start + begin
      mut_end = mut_start + mutate_length
    yield Region(codes, chrom, mut_start, mut_end, window.strand,
                 name='%s:%d-%d(%s)' % (chrom, mut_start, mut_end, window.strand))


def vcf_regions(vcf, genome, seq_length, skipped):
  """Yields the reference window and one window per ALT of each variant, labelled
  ID_allele as basenji_sat_vcf.py does; unscorable variants go to skipped as
  (Region of the variant's line, reason)."""
  reader = genome.reader()
  try:
    for variant in vcf_lib.iter_vcf(vcf):
      try:
        ref, alts = vcf_lib.allele_windows(variant, seq_length, reader)
      except vcf_lib.Skip as e:
        skipped.append((genome_files.Region(variant.line, variant.chrom,
                                            variant.pos - 1, variant.pos),
                        '%s: %s' % (variant.snp, e)))
        continue
      for allele, codes in zip((variant.ref,) + variant.alts, [ref] + alts):
        label = '%s_%s' % (variant.snp, allele)
        yield Region(codes, variant.chrom, variant.pos - 1, variant.pos, '+',
                     label=label, name='%s %s:%d' % (label, variant.chrom,
                                                     variant.pos))
  finally:
    reader.close()


def mutants(codes, span):
  """[(position, base)] of the mutants of a window, in basenji's order; the
  unmutated window (None) first."""
  found = [None]
  for position in range(*span):
    found += [(position, base) for base in range(4) if codes[position] != base]
  return found


def mutant_batches(regions, span, batch_size):
  """Yields ([(region index, Region or None, mutant)], one-hot [n, L, 4]) batches of
  the mutants of consecutive regions; the Region rides with its first mutant."""
  items, rows = [], []
  for index, region in enumerate(regions):
    base = dna.one_hot(region.codes)
    for k, mutant in enumerate(mutants(region.codes, span)):
      row = base.copy() if mutant else base
      if mutant:
        row[mutant[0]] = 0
        row[mutant[0], mutant[1]] = 1
      items.append((index, region if k == 0 else None, mutant))
      rows.append(row)
      if len(rows) == batch_size:
        yield items, np.stack(rows)
        items, rows = [], []
  if rows:
    yield items, np.stack(rows)


class RegionScores:
  """The statistics of one region's predictions, accumulated as they arrive."""

  def __init__(self, region, span, stats, bins):
    self.region = region
    self.span = span
    self.stats = stats
    self.center = slice(bins // 2, bins // 2 + (2 if bins % 2 == 0 else 1))
    self.reference: Optional[np.ndarray] = None  # the unmutated prediction
    self.reference_stats = None
    self.values = None  # {stat: float32 [mutate_length, 4, targets]}
    self.remaining = len(mutants(region.codes, span))

  def add(self, mutant, preds):
    """One prediction [bins, targets] (float32) of the mutant (None: unmutated)."""
    preds = np.asarray(preds, np.float32)
    if mutant is None:
      self.reference = preds
      self.reference_stats = self._stats(preds)
      shape = (self.span[1] - self.span[0], 4, preds.shape[-1])
      self.values = {s: np.zeros(shape, np.float32) for s in self.stats}
      for offset in range(shape[0]):
        base = self.region.codes[self.span[0] + offset]
        if base < 4:
          for s in self.stats:
            self.values[s][offset, base] = self.reference_stats[s]
    else:
      found = self._stats(preds)
      for s in self.stats:
        self.values[s][mutant[0] - self.span[0], mutant[1]] = found[s]
    self.remaining -= 1

  def _stats(self, preds):
    found = {}
    for s in self.stats:
      if s == 'sum':
        found[s] = preds.sum(axis=0)
      elif s == 'center':
        found[s] = preds[self.center].sum(axis=0)
      elif s == 'scd':
        found[s] = np.sqrt(np.square(preds - self.reference).sum(axis=0))
      else:
        found[s] = _js(self.reference, preds)
    return found

  def scores(self):
    """{stat: float16 [mutate_length, 4, targets]}, sum and center centred."""
    out = {}
    for s, values in self.values.items():
      if s in CENTRED:
        values = values - values.mean(axis=1, keepdims=True)
      out[s] = values.astype(np.float16)
    return out

  def seqs(self):
    """bool one-hot [mutate_length, 4] of the mutated positions (N all False)."""
    return dna.one_hot(self.region.codes[self.span[0]:self.span[1]]).astype(bool)


def _js(reference, preds):
  ref = reference / reference.sum(axis=0)
  mut = preds / preds.sum(axis=0)
  return ((special.rel_entr(ref, mut).sum(axis=0) +
           special.rel_entr(mut, ref).sum(axis=0)) / 2).astype(np.float32)


def score(model, regions, span, stats, on_region=None, on_progress=None):
  """Predicts every mutant of regions (an iterable) in model.batch_size batches.

  Returns [RegionScores] in region order; on_region(RegionScores) is called as each
  completes, on_progress(sequences) after each batch.
  """
  done: List[RegionScores] = []
  current = {}
  batches = mutant_batches(regions, span, model.batch_size)
  for items, preds in model.predict_pairs(batches):
    # --targets_file's rows, a stranded track's two strands summed into one, as
    # baskerville's hound_ism_bed.py sums them.
    preds = model.targets.summed(model.targets.select(preds))
    for (index, region, mutant), pred in zip(items, preds):
      if region is not None:
        current[index] = RegionScores(region, span, stats, model.bins)
      scores = current[index]
      scores.add(mutant, pred)
      if not scores.remaining:
        done.append(current.pop(index))
        if on_region:
          on_region(scores)
    if on_progress:
      on_progress(len(items))
  return done
