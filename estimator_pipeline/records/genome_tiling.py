r"""Which windows become records, and their split: basenji_data.py's tiling, or a BED.

Tiling (no --bed): the genome is cut into contigs at every run of at least gap_min N
(fasta_index.find_contigs); contigs shorter than a target region (seq_length - 2
crop_bp) are dropped. The split is by chromosome (--valid_chroms/--test_chroms) or by
fraction of the bases: contigs longer than BREAK_BP are halved until shorter, then each
is drawn, largest first and seeded, for the split whose share is furthest from its
goal (basenji's divide_contigs_pct, a contig skipping valid/test when it is over a
fifth of what they still need); halves drawn into the same split are joined again.
Target regions step along each contig by --stride (train) or --stride_test (valid,
test); a window is its target region with crop_bp more bases each side, which may
run past the chromosome's ends (N there). Windows are shuffled within each split
(seeded), as basenji does, so each .tfr file mixes the genome.

With --bed, each region is centred in a window of seq_length bases (N past a
chromosome's end); regions on chromosomes the FASTA lacks or that run past a
chromosome's end themselves are skipped and listed; records come in FASTA order, then
BED order.

  python -c "
  from estimator_pipeline.records import genome_tiling
  print(genome_tiling.divide_by_fraction([('chr1', 0, 10**6)], 0.1, 0.1, seed=44))"
"""

import dataclasses
import heapq
from typing import Tuple

import numpy as np

from estimator_pipeline.records import genome_files

SPLITS = genome_files.SPLITS
# basenji_data.py's --break: contigs longer than this are halved before the split.
BREAK_BP = 786432
# basenji's pct_abstain: a contig over this share of a split's remaining goal skips it.
_ABSTAIN = 0.2


@dataclasses.dataclass(frozen=True)
class Window:
  """One record: its window on chrom (start may be < 0, end past the end) and split."""

  chrom: str
  start: int
  end: int
  split: str


@dataclasses.dataclass(frozen=True)
class Skipped:
  """A BED region that was not written, and why."""

  line: int
  chrom: str
  start: int
  end: int
  reason: str


def divide_by_chroms(contigs, valid_chroms, test_chroms):
  """{split: [contig]}: test_chroms' contigs to test, valid_chroms' to valid."""
  folds = {split: [] for split in SPLITS}
  for contig in contigs:
    split = ('test' if contig[0] in test_chroms else
             'valid' if contig[0] in valid_chroms else 'train')
    folds[split].append(contig)
  return folds


def divide_by_fraction(contigs, valid_fraction, test_fraction, seed):
  """{split: [contig]} with about those fractions of the bases in valid and test."""
  pieces = _break(contigs)
  pieces.sort(key=lambda c: (c[1] - c[2], c))  # Largest first; ties in genome order.
  total = sum(c[2] - c[1] for c in pieces)
  goal = {'train': total * (1 - valid_fraction - test_fraction),
          'valid': total * valid_fraction, 'test': total * test_fraction}
  have = {split: 0 for split in SPLITS}
  folds = {split: [] for split in SPLITS}
  rng = np.random.RandomState(seed)
  for piece in pieces:
    length = piece[2] - piece[1]
    gaps = {s: max(0.0, goal[s] - have[s]) for s in SPLITS}
    gaps['train'] = max(1.0, gaps['train'])
    for split in ('valid', 'test'):
      if length > _ABSTAIN * gaps[split]:
        gaps[split] = 0.0
    weights = np.array([gaps[s] for s in SPLITS])
    split = SPLITS[rng.choice(3, p=weights / weights.sum())]
    folds[split].append(piece)
    have[split] += length
  return {split: _rejoin(folds[split]) for split in SPLITS}


def _break(contigs):
  """Halves contigs longer than BREAK_BP until none is (basenji's break_t)."""
  heap = [(c[1] - c[2], c) for c in contigs]
  heapq.heapify(heap)
  while heap and -heap[0][0] > BREAK_BP:
    _, (chrom, start, end) = heapq.heappop(heap)
    mid = start + (end - start) // 2
    for piece in ((chrom, start, mid), (chrom, mid, end)):
      heapq.heappush(heap, (piece[1] - piece[2], piece))
  return [c for _, c in heap]


def _rejoin(pieces):
  """Joins pieces that touch (halves of one contig drawn into the same split)."""
  joined = []
  for chrom, start, end in sorted(pieces):
    if joined and joined[-1][0] == chrom and joined[-1][2] == start:
      joined[-1] = (chrom, joined[-1][1], end)
    else:
      joined.append((chrom, start, end))
  return joined


def tile(folds, seq_length, crop_bp, stride, stride_test, seed):
  """[Window] of every split, in split order, shuffled within each split."""
  target = seq_length - 2 * crop_bp
  rng = np.random.RandomState(seed)
  windows = []
  for split in SPLITS:
    step = stride if split == 'train' else stride_test
    starts = [(chrom, s) for chrom, lo, hi in folds[split]
              for s in range(lo, hi - target + 1, step)]
    order = rng.permutation(len(starts)) if starts else []
    windows.extend(Window(starts[i][0], starts[i][1] - crop_bp,
                          starts[i][1] - crop_bp + seq_length, split) for i in order)
  return windows


def bed_windows(regions, lengths, seq_length, split_of):
  """([Window] in FASTA order then BED order, [Skipped] in BED order)."""
  order = {chrom: i for i, chrom in enumerate(lengths)}
  kept, skipped = [], []
  for region in regions:
    length = lengths.get(region.chrom)
    if length is None:
      skipped.append(Skipped(region.line, region.chrom, region.start, region.end,
                             'unknown chromosome: %s is not in --fasta' % region.chrom))
    elif region.end > length:
      skipped.append(Skipped(region.line, region.chrom, region.start, region.end,
                             'out of range: %s has %d bp' % (region.chrom, length)))
    else:
      start, end = genome_files.window_of(region, seq_length)
      kept.append((order[region.chrom], region.line,
                   Window(region.chrom, start, end, split_of(region))))
  kept.sort(key=lambda k: k[:2])
  by_split = {split: [k[2] for k in kept if k[2].split == split] for split in SPLITS}
  return [w for split in SPLITS for w in by_split[split]], skipped


def drop_unmappable(windows, umap, umap_t, crop_bp, pool_width, target_length,
                    unmappable_bins):
  """(windows whose share of unmappable bins is under umap_t, how many were dropped).

  unmappable_bins is genome_windows.unmappable_bins (basenji's annotate_unmap).
  """
  kept = [w for w in windows
          if unmappable_bins(umap, w.chrom, w.start + crop_bp, target_length,
                             pool_width).mean() < umap_t]
  return kept, len(windows) - len(kept)


def plan_files(windows, seqs_per_tfr):
  """[(file name, split, ((chrom, start, end), ...))]: seqs_per_tfr per file."""
  jobs = []
  for split in SPLITS:
    mine = [(w.chrom, w.start, w.end) for w in windows if w.split == split]
    for number, first in enumerate(range(0, len(mine), seqs_per_tfr)):
      jobs.append(('%s-%d.tfr' % (split, number), split,
                   tuple(mine[first:first + seqs_per_tfr])))
  return jobs


def contig_rows(folds) -> Tuple[Tuple[str, int, int, str], ...]:
  """contigs.bed's rows: (chrom, start, end, split), split by split."""
  return tuple((c[0], c[1], c[2], split) for split in SPLITS
               for c in sorted(folds[split]))
