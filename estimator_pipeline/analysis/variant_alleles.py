r"""Windows, allele sequences and the shift plan of baskerville's variant scoring, and
its reverse-complement ensemble with strand pairs.

  python -c "
  from estimator_pipeline.analysis import variant_alleles
  print(variant_alleles.shift_plan([1, 0, -1], indel=-3, compensate_ref=True))"

A window (a Cluster) is genome [start, start + L): a variant alone is centred so that
its first REF base is at index L/2 - 1 (start = POS - L/2); variants scored together
(--cluster_pct, or a gene's window) share one window and one reference prediction.
Bases outside the chromosome are N, coded as an all-zero one-hot row (boolean one-hot,
unlike basenji's 0.25).

Alleles: when the genome holds the first ALT rather than REF, the variant is scored
flipped (the genome's allele as the reference, REF as the alternative, the two swapped
back after predicting, so every score is ALT - REF as written). The alternative
sequence is the window with REF replaced by ALT and the start kept: a deletion leaves
N at the end, an insertion pushes the last bases out. (baskerville leaves a complex
indel's alternative equal to the reference and sets only the first base of a
multi-base substitution; here the whole REF is replaced by the whole ALT.)

Shifts: every allele is predicted at each of --ensemble_shifts (the sequence moved s
positions right, zero filled). An indel's compensated side also gets, after each s, a
shift that lines its downstream bases up with the other side's (for a variant alone,
a deletion of d bases compensates the reference at s - d and an insertion of k bases
the alternative at s - k; in a shared window always the alternative, a deletion's at
s + d). With --indel_stitch, the compensated side is bins
[0, b) of its plain prediction and [b, bins) of its compensated one, b the bin of
index POS - start - crop; without it, the other side is repeated so that each plain
prediction meets both.
"""

import dataclasses
from typing import List, Optional

import numpy as np

from estimator_pipeline.analysis.sequence_model import shift_one_hot
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import vcf as vcf_lib


@dataclasses.dataclass
class Allele:
  """A VCF row as scored: the Variant, the FASTA's chromosome name, and its alleles
  as predicted (ref = the genome's; flipped when that is the VCF's ALT)."""
  variant: vcf_lib.Variant
  chrom: str
  ref: str
  alt: str
  flipped: bool = False

  @property
  def indel(self):
    return len(self.alt) - len(self.ref)


@dataclasses.dataclass
class Cluster:
  """Variants sharing one window [start, start + L) of chrom."""
  chrom: str
  alleles: List[Allele]
  start: int = 0
  codes: Optional[np.ndarray] = None  # uint8 [L], the reference window

  @property
  def singleton(self):
    return len(self.alleles) == 1


def check_allele_length(variant, seq_length):
  """UserError for an indel whose alleles do not fit the half window after POS."""
  longest = max(len(variant.ref), len(variant.alt))
  if longest > seq_length // 2:
    raise UserError('--vcf line %d: %s has an allele of %d bases, longer than half '
                    'the model\'s %d bp window allows; score it with a model of a '
                    'longer window or leave the line out.' % (
                        variant.line, variant.snp, longest, seq_length))


def resolve(variant, reader, flip=True):
  """-> Allele, REF checked against the genome (flipped when the ALT is there).

  Raises:
    vcf_lib.Skip: the chromosome is not in the FASTA, or the genome holds neither.
  """
  chrom = vcf_lib.fasta_name(variant, reader.genome.lengths)
  ref, alt = variant.ref.upper(), variant.alt.upper()
  start = variant.pos - 1

  def holds(allele):
    found = reader.codes(chrom, start, start + len(allele))
    return np.array_equal(found, dna.indices(allele))

  if holds(ref):
    return Allele(variant, chrom, ref, alt)
  if flip and holds(alt):
    return Allele(variant, chrom, alt, ref, flipped=True)
  found = dna.text(reader.codes(chrom, start, start + len(ref)))
  raise vcf_lib.Skip(vcf_lib.SKIP_REF_MISMATCH % (
      found, variant.chrom, variant.pos, variant.ref, variant.alt))


def cluster(alleles, seq_length, pct):
  """Groups consecutive alleles on one chromosome within pct x L of the first's
  position (baskerville's -c); pct 0: each alone. Windows centred as baskerville's
  delimit: on the mid of the lowest and highest position."""
  distance = int(seq_length * pct)
  clusters = []
  for allele in alleles:
    last = clusters[-1] if clusters else None
    if (distance and last is not None and last.chrom == allele.chrom and
        allele.variant.pos < last.alleles[0].variant.pos + distance):
      last.alleles.append(allele)
    else:
      clusters.append(Cluster(allele.chrom, [allele]))
  for c in clusters:
    positions = [a.variant.pos for a in c.alleles]
    c.start = (min(positions) + max(positions)) // 2 - seq_length // 2
  return clusters


def alt_codes(ref_codes, index, ref, alt):
  """The window with ref (at index) replaced by alt, same start and length."""
  length = len(ref_codes)
  codes = np.concatenate([ref_codes[:index], dna.indices(alt),
                          ref_codes[index + len(ref):]])
  if len(codes) >= length:
    return codes[:length]
  return np.concatenate([codes, np.full(length - len(codes), dna.N_INDEX, np.uint8)])


def shift_plan(shifts, indel, compensate_ref):
  """-> (ref shifts, alt shifts). indel = len(alt) - len(ref); the compensated side
  gets a second shift after each s that lines its downstream bases up with the other
  side's: s + indel for the reference, s - indel for the alternative."""
  shifts = list(shifts)
  if not indel:
    return shifts, shifts
  if compensate_ref:
    return [t for s in shifts for t in (s, s + indel)], shifts
  return shifts, [t for s in shifts for t in (s, s - indel)]


def stitch(preds, bin_index):
  """[2S, N, T] (plain, compensated per shift) -> [S, N, T]: bins [0, b) of the plain
  prediction, [b, N) of the compensated one."""
  return np.concatenate([preds[0::2, :bin_index], preds[1::2, bin_index:]], axis=1)


def pair_sides(ref, alt, indel, compensate_ref, stitch_bin=None):
  """An indel's two sides as arrays of equal length (stitched, or the plain side
  repeated s1, s1, s2, s2, ...)."""
  if not indel:
    return ref, alt
  if stitch_bin is not None:
    return (stitch(ref, stitch_bin), alt) if compensate_ref else (
        ref, stitch(alt, stitch_bin))
  return (ref, np.repeat(alt, 2, axis=0)) if compensate_ref else (
      np.repeat(ref, 2, axis=0), alt)


class Ensemble:
  """The network on (sequence, shift) requests, with baskerville's per-shift
  reverse-complement average: (forward + reverse complement, its bins reversed and
  its strand pairs swapped) / 2, float32; outputs in the targets table's order.

  Every network call holds exactly batch_size sequences (the last one padded), and a
  sequence's prediction depends on nothing else in its call, so the scores do not
  depend on --batch_size.
  """

  def __init__(self, model, index, pair=None, rc=True):
    self.model, self.rc = model, rc
    self.index = np.asarray(index)
    self.pair = None if pair is None else np.asarray(pair)

  def inputs(self, codes, shifts):
    """codes: uint8 [n, L]; shifts: [n] -> the network's one-hot batch (the shifted
    sequences, then their reverse complements)."""
    one_hot = dna.one_hot(codes)
    copies = np.stack([shift_one_hot(one_hot[i:i + 1], int(s))[0]
                       for i, s in enumerate(shifts)]) if len(codes) else one_hot
    return np.concatenate([copies, copies[:, ::-1, ::-1]]) if self.rc else copies

  def outputs(self, batch):
    """inputs()' batch -> float32 [n, bins, T], in the table's order."""
    preds = self._call(batch)[..., self.index]
    if not self.rc:
      return preds
    count = len(batch) // 2
    fwd, rev = preds[:count], preds[count:, ::-1]
    if self.pair is not None:
      rev = rev[..., self.pair]
    return (fwd + rev) / np.float32(2)

  def predict(self, codes, shifts):
    """codes: uint8 [n, L]; shifts: [n] -> float32 [n, bins, T]."""
    return self.outputs(self.inputs(codes, shifts))

  def _call(self, batch):
    size = self.model.batch_size
    out = []
    for i in range(0, len(batch), size):
      part = batch[i:i + size]
      if len(part) < size:
        part = np.concatenate([part, np.zeros((size - len(part),) + part.shape[1:],
                                              part.dtype)])
      out.append(self.model.predict(part)[:min(size, len(batch) - i)])
    if not out:
      return np.zeros((0, self.model.bins, self.model.num_targets), np.float32)
    return np.concatenate(out)
