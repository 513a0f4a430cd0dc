"""Variant scoring: variants/sec of `export.variants` against its ceiling.

The pipeline reads a VCF line by line, builds each variant's reference and alternative
windows from the FASTA on a second thread and writes sad.h5 and sad.tsv
(analysis/variants.py); the ceiling is the same loaded network fed the same number of
pre-built one-hot batches (two sequences per variant), nothing else. Goal: >= 0.8.
The model is basenji's params_small.json at 4096 bp (tests/data/basenji), small enough
that the host-side work is a real share of the time.

  python -m bench --only=variants
"""

import os
import time

import numpy as np

from bench import common
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import variants
from estimator_pipeline.records import dna

DATA = os.path.join(common.REPO, 'tests', 'data', 'basenji')
CHROM_LENGTH = 200000
BATCH = 8  # Sequences per network call: --batch_size's default.


def write_inputs(directory, count, seed=0):
  """A random two-chromosome FASTA and a VCF of `count` SNPs on it; -> (fasta, vcf)."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.RandomState(seed)
  fasta = os.path.join(directory, 'genome.fa')
  chroms = {}
  with open(fasta, 'w') as f:
    for name in ('chr1', 'chr2'):
      bases = dna.text(rng.randint(0, 4, CHROM_LENGTH))
      chroms[name] = bases
      f.write('>%s\n' % name)
      f.writelines(bases[i:i + 60] + '\n' for i in range(0, len(bases), 60))
  vcf = os.path.join(directory, 'variants.vcf')
  with open(vcf, 'w') as f:
    f.write('##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
    for i in range(count):
      chrom = ('chr1', 'chr2')[i % 2]
      pos = int(rng.randint(1, CHROM_LENGTH + 1))
      ref = chroms[chrom][pos - 1]
      alt = 'ACGT'[('ACGT'.index(ref) + 1 + rng.randint(3)) % 4]
      f.write('%s\t%d\trs%d\t%s\t%s\t.\tPASS\t.\n' % (chrom, pos, i, ref, alt))
  return fasta, vcf


def run(work_dir, toy=False, repeats=3):
  count = 32 if toy else 384
  fasta, vcf = write_inputs(os.path.join(work_dir, 'data'), count)
  model = model_source.load(params_file=os.path.join(DATA, 'basenji_params.json'),
                            checkpoint=os.path.join(DATA, 'basenji_model.h5'),
                            batch_size=BATCH)
  rng = np.random.RandomState(1)
  batches = [dna.one_hot(rng.randint(0, 4, (BATCH, model.seq_length)))
             for _ in range(2 * count // BATCH)]
  model.predict(batches[0])  # The first call pays for graph start-up.
  runs = [0]

  def pipeline():
    runs[0] += 1
    start = time.perf_counter()
    summary = variants.score(model, fasta, vcf, os.path.join(work_dir,
                                                              'out%d' % runs[0]),
                             ('SAD', 'logSAD'))
    return summary.rows / (time.perf_counter() - start)

  def ceiling():
    start = time.perf_counter()
    for batch in batches:
      model.predict(batch)
    return count / (time.perf_counter() - start)

  common.log('variants: %d SNPs, %d bp model, batch %d sequences'
             % (count, model.seq_length, BATCH))
  raw = common.interleave({'pipeline': pipeline, 'ceiling': ceiling}, repeats,
                          log=common.log)
  results = {v + '_variants_per_sec': common.stats(raw[v]) for v in raw}
  results['pipeline_vs_ceiling_ratio'] = common.stats(
      common.ratios(raw['pipeline'], raw['ceiling']))
  results['setup'] = ('%d SNPs on a 2 x %d bp genome, basenji params_small at %d bp, '
                      'no ensemble, batch %d sequences, stats SAD,logSAD'
                      % (count, CHROM_LENGTH, model.seq_length, BATCH))
  return {'variants': results}
