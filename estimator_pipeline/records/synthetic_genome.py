r"""A synthetic genome whose coverage is driven by planted motifs: the answer is known.

  python -m estimator_pipeline.records.synthetic_genome --output_dir=genome/ --seed=0

writes, from nothing but the seed:

  genome/genome.fa          random chromosomes chr1..chrN (uniform A/C/G/T)
  genome/regions.bed        windows of seq_length bases with a fold column:
                            the last two chromosomes are valid and test, the rest train
  genome/motifA.bedGraph    track 0: a Gaussian bump on every occurrence of motif A
  genome/motifB.bedGraph    track 1: the same for motif B
  genome/motifA.bw, motifB.bw   the same tracks as bigWig files
  genome/targets.txt        basenji's targets table of the two bigWigs
  genome/motifs.bed         every occurrence of each motif (chrom, start, end, name, strand)

Motifs are planted on both strands at random places; the tracks are then computed from
every occurrence found by scanning the finished genome (planted or by chance, either
strand), so each track is a function of the sequence alone, up to a small per-site
strength jitter. A model that finds the motifs predicts the tracks; its saliency should
sit on motifs.bed. Nothing here is stored in the repository: the same seed gives
byte-identical files. From Python:

  from estimator_pipeline.records import synthetic_genome
  genome = synthetic_genome.write_synthetic_genome('genome', seed=0)
  print(genome.fasta, genome.bed, genome.coverage)
"""

import dataclasses
import os
import re
import sys
from typing import Dict, Tuple

import numpy as np
import pyBigWig

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna

# name -> motif (forward strand). Neither is its own reverse complement, so a model
# has to learn both orientations, as for real transcription factor sites.
MOTIFS = (('motifA', 'TGACTCAT'), ('motifB', 'CCAATCGG'))
DEFAULT_NUM_CHROMS = 6
DEFAULT_CHROM_LENGTH = 131072
DEFAULT_SEQ_LENGTH = 1024
# Mean bases between planted sites of one motif.
DEFAULT_SITE_SPACING = 400
# Width (standard deviation, bp) and height of the coverage bump around each site.
DEFAULT_SIGMA = 12.0
DEFAULT_HEIGHT = 1.0
# Relative jitter of each site's height: the part of a track the sequence cannot tell.
DEFAULT_JITTER = 0.1
# bedGraph values are rounded to this many decimals (and zeros left out) so runs of
# equal values merge into one line.
DECIMALS = 2

FASTA_NAME = 'genome.fa'
BED_NAME = 'regions.bed'
MOTIFS_BED_NAME = 'motifs.bed'
TARGETS_NAME = 'targets.txt'
_FASTA_LINE = 60
@dataclasses.dataclass(frozen=True)
class SyntheticGenome:
  """Paths of what write_synthetic_genome wrote, and the truth behind it.

  Attributes:
    output_dir: The folder.
    fasta: genome.fa.
    bed: regions.bed (chrom, start, end, fold).
    coverage: One bedGraph per motif, in MOTIFS order (track i is driven by motif i).
    bigwigs: The same tracks as bigWig files.
    targets_file: basenji's targets table of the bigWigs (targets.txt).
    motifs_bed: motifs.bed, every occurrence of every motif.
    motifs: {name: motif} in track order.
    chrom_lengths: {chrom: length}.
    seq_length: Length of the regions.
    num_regions: {fold: regions}.
  """

  output_dir: str
  fasta: str
  bed: str
  coverage: Tuple[str, ...]
  bigwigs: Tuple[str, ...]
  targets_file: str
  motifs_bed: str
  motifs: Dict[str, str]
  chrom_lengths: Dict[str, int]
  seq_length: int
  num_regions: Dict[str, int]


def write_synthetic_genome(output_dir,
                           seed=0,
                           num_chroms=DEFAULT_NUM_CHROMS,
                           chrom_length=DEFAULT_CHROM_LENGTH,
                           seq_length=DEFAULT_SEQ_LENGTH,
                           site_spacing=DEFAULT_SITE_SPACING,
                           sigma=DEFAULT_SIGMA,
                           height=DEFAULT_HEIGHT,
                           jitter=DEFAULT_JITTER,
                           train_stride=None) -> SyntheticGenome:
  """Writes genome.fa, regions.bed, one bedGraph per motif and motifs.bed.

  Args:
    output_dir: Folder to write into (created if missing).
    seed: Seed of everything random; the same arguments give byte-identical files.
    num_chroms: Chromosomes (at least 3: the last two are valid and test).
    chrom_length: Bases per chromosome.
    seq_length: Bases per region of regions.bed.
    site_spacing: Mean bases between planted sites of each motif.
    sigma: Standard deviation (bp) of the Gaussian bump a site adds to its track.
    height: Peak height of a bump, per base.
    jitter: Relative standard deviation of each site's height.
    train_stride: Bases between the starts of train regions (overlapping windows
      give more training data); default seq_length / 2. Valid and test regions do
      not overlap.

  Returns:
    A SyntheticGenome.
  """
  if num_chroms < 3:
    raise UserError('num_chroms=%d: need at least 3 (train, valid, test)' % num_chroms)
  if chrom_length < seq_length:
    raise UserError('chrom_length=%d is shorter than seq_length=%d' % (chrom_length,
                                                                     seq_length))
  train_stride = train_stride or max(1, seq_length // 2)
  rng = np.random.RandomState(seed)
  os.makedirs(output_dir, exist_ok=True)
  names = ['chr%d' % (i + 1) for i in range(num_chroms)]
  sequences = _plant_motifs(rng, names, chrom_length, site_spacing)
  paths = {
      'fasta': os.path.join(output_dir, FASTA_NAME),
      'bed': os.path.join(output_dir, BED_NAME),
      'motifs_bed': os.path.join(output_dir, MOTIFS_BED_NAME),
  }
  with open(paths['fasta'], 'w') as f:
    for name in names:
      f.write('>%s synthetic chromosome, seed %d\n' % (name, seed))
      for i in range(0, chrom_length, _FASTA_LINE):
        f.write(sequences[name][i:i + _FASTA_LINE] + '\n')
  num_regions = _write_regions(paths['bed'], names, chrom_length, seq_length,
                               train_stride)
  coverage, bigwigs = _write_tracks(output_dir, paths['motifs_bed'], sequences, rng,
                                    sigma, height, jitter)
  targets_file = os.path.join(output_dir, TARGETS_NAME)
  with open(targets_file, 'w') as f:
    f.write('\tidentifier\tfile\tclip\tclip_soft\tscale\tsum_stat\tdescription\n')
    f.writelines('%d\t%s\t%s\t\t\t1\tsum\tdriven by %s\n' % (
        i, name, os.path.basename(bigwigs[i]), motif) for i, (name, motif) in
                 enumerate(MOTIFS))
  return SyntheticGenome(
      output_dir=output_dir, fasta=paths['fasta'], bed=paths['bed'],
      coverage=tuple(coverage), bigwigs=tuple(bigwigs), targets_file=targets_file,
      motifs_bed=paths['motifs_bed'], motifs=dict(MOTIFS),
      chrom_lengths={name: chrom_length for name in names}, seq_length=seq_length,
      num_regions=num_regions)


def _plant_motifs(rng, names, chrom_length, site_spacing):
  """{name: random ACGT with each motif planted on both strands at random places}."""
  sequences = {}
  for name in names:
    bases = bytearray(dna.text(rng.randint(0, 4, chrom_length)).encode('ascii'))
    for _, motif in MOTIFS:
      num_sites = rng.poisson(chrom_length / float(site_spacing))
      starts = rng.randint(0, chrom_length - len(motif) + 1, num_sites)
      strands = rng.randint(0, 2, num_sites)
      for start, strand in zip(starts, strands):
        site = motif if strand == 0 else dna.reverse_complement(motif)
        bases[start:start + len(motif)] = site.encode('ascii')
    sequences[name] = bases.decode('ascii')
  return sequences


def _write_regions(path, names, chrom_length, seq_length, train_stride):
  """regions.bed: the last two chromosomes are valid and test, the rest train."""
  folds = {name: 'train' for name in names}
  folds[names[-2]] = 'valid'
  folds[names[-1]] = 'test'
  num_regions = {'train': 0, 'valid': 0, 'test': 0}
  with open(path, 'w') as f:
    for name in names:
      fold = folds[name]
      stride = train_stride if fold == 'train' else seq_length
      for start in range(0, chrom_length - seq_length + 1, stride):
        f.write('%s\t%d\t%d\t%s\n' % (name, start, start + seq_length, fold))
        num_regions[fold] += 1
  return num_regions


def _write_tracks(output_dir, motifs_bed, sequences, rng, sigma, height, jitter):
  """One bedGraph and one bigWig per motif (a Gaussian bump on every site found), and
  motifs.bed."""
  radius = int(np.ceil(4 * sigma))
  offsets = np.arange(-radius, radius + 1)
  kernel = height * np.exp(-0.5 * (offsets / sigma) ** 2)
  coverage, bigwigs = [], []
  with open(motifs_bed, 'w') as motifs_out:
    for motif_name, motif in MOTIFS:
      path = os.path.join(output_dir, '%s.bedGraph' % motif_name)
      coverage.append(path)
      bigwigs.append(os.path.join(output_dir, '%s.bw' % motif_name))
      bigwig = pyBigWig.open(bigwigs[-1], 'w')
      bigwig.addHeader([(name, len(bases)) for name, bases in sequences.items()])
      with open(path, 'w') as out:
        out.write('track type=bedGraph name=%s description="driven by %s"\n'
                  % (motif_name, motif))
        for name, bases in sequences.items():
          impulses = np.zeros(len(bases))
          for start, strand in find_sites(bases, motif):
            motifs_out.write('%s\t%d\t%d\t%s\t%s\n' % (
                name, start, start + len(motif), motif_name, strand))
            impulses[start + len(motif) // 2] += max(0.0, 1.0 + jitter * rng.randn())
          signal = np.convolve(impulses, kernel, mode='same')
          _write_bedgraph_runs(out, bigwig, name, np.round(signal, DECIMALS))
      bigwig.close()
  return coverage, bigwigs


def find_sites(bases, motif):
  """[(start, '+' or '-')] of every occurrence of motif on either strand, sorted."""
  sites = []
  for site, strand in ((motif, '+'), (dna.reverse_complement(motif), '-')):
    # A lookahead finds overlapping occurrences too.
    sites.extend((m.start(), strand) for m in re.finditer('(?=%s)' % site, bases))
  return sorted(sites)


def read_motif_sites(path):
  """motifs.bed -> {chrom: [(start, end, name, strand)]}."""
  sites = {}
  with open(path) as f:
    for line in f:
      chrom, start, end, name, strand = line.split()
      sites.setdefault(chrom, []).append((int(start), int(end), name, strand))
  return sites


def _write_bedgraph_runs(out, bigwig, chrom, values):
  """Writes the runs of equal non-zero values of one chromosome as bedGraph lines and
  as bigWig entries."""
  if not len(values):
    return
  change = np.flatnonzero(np.diff(values)) + 1
  starts = np.concatenate([[0], change])
  ends = np.concatenate([change, [len(values)]])
  nonzero = values[starts] != 0
  starts, ends = starts[nonzero], ends[nonzero]
  for start, end in zip(starts, ends):
    out.write('%s\t%d\t%d\t%.*f\n' % (chrom, start, end, DECIMALS, values[start]))
  if len(starts):
    bigwig.addEntries([chrom] * len(starts), starts.tolist(), ends=ends.tolist(),
                      values=values[starts].tolist())


def main(argv=None):
  """`python -m estimator_pipeline.records.synthetic_genome --output_dir=... [--seed=N]`."""
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(
      prog='python -m estimator_pipeline.records.synthetic_genome',
      description='Writes a synthetic genome whose coverage is driven by planted '
                  'motifs.')
  parser.add_argument('--output_dir', required=True,
                      help='Folder for genome.fa, regions.bed, the bedGraphs and '
                           'motifs.bed.')
  parser.add_argument('--seed', type=int, default=0,
                      help='Seed; the same seed gives byte-identical files.')
  parser.add_argument('--num_chroms', type=int, default=DEFAULT_NUM_CHROMS,
                      help='Chromosomes; the last two are the valid and test folds.')
  parser.add_argument('--chrom_length', type=int, default=DEFAULT_CHROM_LENGTH,
                      help='Bases per chromosome.')
  parser.add_argument('--seq_length', type=int, default=DEFAULT_SEQ_LENGTH,
                      help='Bases per region of regions.bed.')
  args = parser.parse_args(argv)
  try:
    genome = write_synthetic_genome(args.output_dir, seed=args.seed,
                                    num_chroms=args.num_chroms,
                                    chrom_length=args.chrom_length,
                                    seq_length=args.seq_length)
  except UserError as e:
    sys.stderr.write('error: %s\n' % e)
    sys.exit(2)
  print('wrote %s, %s (%s), %s and %s' % (
      genome.fasta, genome.bed,
      ', '.join('%d %s' % (n, f) for f, n in genome.num_regions.items()),
      ', '.join(genome.coverage), genome.motifs_bed))


if __name__ == '__main__':
  main()
