r"""VCF variants read line by line, and the reference and alternative windows around
each, as basenji_sad.py builds them.

  python -c "
  from estimator_pipeline.records import fasta_index, vcf
  genome = fasta_index.open_genome('genome.fa', '/tmp')
  for v in vcf.iter_vcf('variants.vcf'):
      print(v.snp, vcf.allele_windows(v, 4096, genome.reader())[1].shape)"

Reading (basenji's vcf_snps): `#` lines are headers; CHROM gets `chr` in front unless
it has it; ID `.` becomes `chr:POS`; ALT is split on commas; nothing is filtered,
sorted or de-duplicated, so a repeated line is scored twice, identically. Plain,
gzipped and bgzipped files are read as they come, one line at a time.

Windows (basenji's snp_seq1 and dna_length_1hot), for a model of L bp: 1-based
`start = POS - (L/2 - 1)`, `end = POS + L/2 + max(0, len(REF) - longest ALT)`; bases
outside the chromosome are N (basenji crashes when start is exactly 0; here that
window gets its one N like any other at the chromosome start). When the genome does
not hold REF but holds one ALT, that ALT is replaced by REF in the reference window
(and the variant scored as written). Each allele's window is cut or N-padded to L,
centred: extra bases leave (excess // 2) at the front and the rest at the back.
"""

import dataclasses
from typing import Tuple

import numpy as np

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import genome_files

# Why a variant is not scored; each is counted and listed, the run goes on.
SKIP_NO_CHROMOSOME = 'chromosome %s is not in the FASTA'
SKIP_REF_MISMATCH = 'the genome has %s at %s:%d, which matches neither REF %s nor ALT %s'
_ALLELE_LETTERS = frozenset('ACGTNacgtn')


@dataclasses.dataclass(frozen=True)
class Variant:
  """One VCF data line (one ALT of it with all_alts).

  Attributes:
    line: Its line number in the file.
    chrom: CHROM as basenji names it (`chr` prepended unless present).
    raw_chrom: CHROM as written.
    pos: POS, 1-based.
    snp: ID, or `chr:POS` for `.`.
    ref: REF.
    alts: Every ALT of the line, in order.
    alt_index: Which ALT this row scores: 0 (basenji's first), or each with all_alts.
  """

  line: int
  chrom: str
  raw_chrom: str
  pos: int
  snp: str
  ref: str
  alts: Tuple[str, ...]
  alt_index: int = 0

  @property
  def alt(self):
    """The ALT this row scores."""
    return self.alts[self.alt_index]


class Skip(Exception):
  """A variant that cannot be scored; the message says why."""


def iter_vcf(path, all_alts=False, flag='vcf'):
  """Yields a Variant per data line (per ALT with all_alts), as the file is read.

  Raises:
    UserError: a file that is not a VCF, naming the file and line.
  """
  with genome_files.open_lines(path, flag) as lines:
    for number, raw in enumerate(lines, 1):
      if raw.startswith(b'#') or not raw.strip():
        continue
      variant = _parse(raw, '--%s=%s line %d' % (flag, path, number), number)
      if all_alts and len(variant.alts) > 1:
        for i in range(len(variant.alts)):
          yield dataclasses.replace(variant, alt_index=i)
      else:
        yield variant


def _parse(raw, where, number):
  try:
    text = raw.decode('ascii').rstrip('\r\n')
  except UnicodeDecodeError:
    raise UserError('%s: not text; is this a VCF (tab-separated CHROM POS ID REF ALT '
                    '...)?' % where) from None
  fields = text.split('\t')
  if len(fields) < 5:
    raise UserError('%s: %d tab-separated field(s), a VCF line has at least 5 (CHROM '
                    'POS ID REF ALT); got %r' % (where, len(fields), text[:60]))
  raw_chrom, pos, snp, ref, alt = (f.strip() for f in fields[:5])
  try:
    pos = int(pos)
  except ValueError:
    pos = 0
  if pos < 1:
    raise UserError('%s: POS %r is not a positive integer; is this a VCF?'
                    % (where, fields[1][:20]))
  alts = tuple(alt.split(','))
  for allele in (ref,) + alts:
    if not allele or not set(allele) <= _ALLELE_LETTERS:
      raise UserError('%s: allele %r is not DNA (A, C, G, T, N); symbolic alleles '
                      'such as <DEL> cannot be scored: remove the line' % (
                          where, allele[:20]))
  chrom = raw_chrom if raw_chrom.startswith('chr') else 'chr' + raw_chrom
  snp = '%s:%d' % (chrom, pos) if snp == '.' else snp
  return Variant(number, chrom, raw_chrom, pos, snp, ref, alts)


def fasta_name(variant, lengths):
  """The FASTA's name of the variant's chromosome (basenji's, else as written)."""
  for name in (variant.chrom, variant.raw_chrom):
    if name in lengths:
      return name
  raise Skip(SKIP_NO_CHROMOSOME % variant.raw_chrom)


def allele_windows(variant, seq_length, reader):
  """-> (reference codes [L], [codes [L] per ALT of the variant]), uint8 0..4.

  Raises:
    Skip: the chromosome is not in the genome, or neither allele matches it.
  """
  chrom = fasta_name(variant, reader.genome.lengths)
  left = seq_length // 2 - 1
  ref = variant.ref.upper()
  alts = [a.upper() for a in variant.alts]
  start = variant.pos - left
  end = variant.pos + seq_length // 2 + max(0, len(ref) - max(len(a) for a in alts))
  codes = reader.codes(chrom, start - 1, end)
  ref_codes = dna.indices(ref)
  if not np.array_equal(codes[left:left + len(ref)], ref_codes):
    for alt in alts:
      if np.array_equal(codes[left:left + len(alt)], dna.indices(alt)):
        codes = np.concatenate([codes[:left], ref_codes, codes[left + len(alt):]])
        break
    else:
      found = dna.text(codes[left:left + len(ref)])
      raise Skip(SKIP_REF_MISMATCH % (found, variant.chrom, variant.pos, variant.ref,
                                      ','.join(variant.alts)))
  ref_window = fit_length(codes, seq_length)
  alt_windows = [fit_length(np.concatenate([codes[:left], dna.indices(alt),
                                            codes[left + len(ref):]]), seq_length)
                 for alt in alts]
  return ref_window, alt_windows


def fit_length(codes, length):
  """basenji's dna_length_1hot: cut or N-pad codes to length, centred."""
  if len(codes) > length:
    trim = (len(codes) - length) // 2
    return codes[trim:trim + length]
  if len(codes) < length:
    front = (length - len(codes)) // 2
    out = np.full(length, dna.N_INDEX, np.uint8)
    out[front:front + len(codes)] = codes
    return out
  return codes
