"""Saturation mutagenesis: sequences/sec of export.mutagenesis against its ceiling.

The reference basenji model (tests/data/basenji: 4096 bp, 32 bins, 3 targets) with
basenji_sat_bed.py's --rc --shifts 1,0,-1 ensemble, loaded as the command loads it.
The pipeline: BED regions of a synthetic genome -> windows read from the FASTA ->
every mutant of 20 central bases built on the CPU -> the network -> sum, center and
scd reduced per prediction. The ceiling: the same network fed the same number of
pre-built one-hot batches.

  python -m bench --only=mutagenesis
"""

import os
import time

import numpy as np

from bench import common
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import mutagenesis
from estimator_pipeline.records import fasta_index

DATA = os.path.join(common.REPO, 'tests', 'data', 'basenji')
MUTATE_LENGTH = 20
STATS = ('sum', 'center', 'scd')
BATCH_SIZE = 16


def write_genome(directory, seq_length, regions, seed=0):
  """A FASTA of random bases and a BED of `regions` regions on it; -> (fasta, bed)."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.RandomState(seed)
  length = seq_length * (regions + 1)
  fasta = os.path.join(directory, 'genome.fa')
  with open(fasta, 'w') as f:
    bases = ''.join(rng.choice(list('ACGT'), length))
    f.write('>chr1\n' + '\n'.join(bases[i:i + 60] for i in range(0, length, 60)) +
            '\n')
  bed = os.path.join(directory, 'regions.bed')
  with open(bed, 'w') as f:
    for i in range(regions):
      mid = seq_length * (i + 1)
      f.write('chr1\t%d\t%d\tr%d\t0\t%s\n' % (mid - 10, mid + 10, i, '+-'[i % 2]))
  return fasta, bed


def run(work_dir, toy=False, repeats=3):
  regions = 2 if toy else 12
  model = model_source.load(
      params_file=os.path.join(DATA, 'basenji_params.json'),
      checkpoint=os.path.join(DATA, 'basenji_model.h5'), ensemble_rc=True,
      ensemble_shifts=(1, 0, -1), batch_size=BATCH_SIZE)
  fasta, bed = write_genome(work_dir, model.seq_length, regions)
  genome = fasta_index.open_genome(fasta, work_dir)
  span = mutagenesis.mutated_span(model.seq_length, MUTATE_LENGTH)
  count = regions * (1 + 3 * MUTATE_LENGTH)
  rng = np.random.RandomState(1)
  batches = [np.eye(4, dtype=np.float32)[rng.randint(0, 4, (BATCH_SIZE,
                                                             model.seq_length))]
             for _ in range(-(-count // BATCH_SIZE))]
  common.log('mutagenesis: %d regions x %d bp, %d sequences, batch %d, ensemble rc '
             '+ 3 shifts' % (regions, MUTATE_LENGTH, count, BATCH_SIZE))

  def pipeline():
    start = time.perf_counter()
    skipped = []
    done = mutagenesis.score(model, mutagenesis.bed_regions(
        bed, genome, model.seq_length, MUTATE_LENGTH, skipped), span, STATS)
    for region_scores in done:
      region_scores.scores()
    assert len(done) == regions and not skipped
    return count / (time.perf_counter() - start)

  def ceiling():
    start = time.perf_counter()
    for batch in batches:
      model.predict(batch)
    return len(batches) * BATCH_SIZE / (time.perf_counter() - start)

  pipeline(), ceiling()  # Warm-up: the first calls trace the signature.
  raw = common.interleave({'pipeline': pipeline, 'ceiling': ceiling}, repeats,
                          log=common.log)
  results = {v + '_sequences_per_sec': common.stats(raw[v]) for v in raw}
  results['pipeline_vs_ceiling_ratio'] = common.stats(
      common.ratios(raw['pipeline'], raw['ceiling']))
  results['setup'] = ('reference basenji model, 4096 bp, ensemble rc + shifts 1,0,-1, '
                      '%d regions x %d bp, batch %d, stats %s' % (
                          regions, MUTATE_LENGTH, BATCH_SIZE, ','.join(STATS)))
  return {'mutagenesis': results}
