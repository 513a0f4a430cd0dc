"""Variant scoring as baskerville: variants/sec of `export.variants --format=baskerville
--cluster_pct` against the network's ceiling and against baskerville's hound_snp.py.

The pipeline (analysis/variant_scores.py) reads the VCF, clusters nearby SNPs into
shared windows, builds every window, predicts each shift and its reverse complement,
untransforms and scores in float64 and writes scores.h5; the ceiling is the same
loaded network fed the same number of pre-built one-hot sequences in batches of
--batch_size, nothing else. Goal: >= 0.8. The model is baskerville's small stranded
model of tests/data/baskerville_snp (4096 bp, 12 targets), so the host-side work is a
real share of the time.

Side by side, when BASKERVILLE_PYTHON (a Python with baskerville's requirements) and
BASKERVILLE_SRC (baskerville's `src` folder) are set: baskerville's own, unmodified
hound_snp.py on the same VCF, model, targets table and ensemble (-c, --rc, --shifts),
against the same command of this project, both timed as whole commands (start-up
included) on a VCF large enough that start-up is a small share. Goal: >= 1.5x.

  BASKERVILLE_PYTHON=~/venvs/baskerville/bin/python BASKERVILLE_SRC=baskerville/src \
      python -m bench --only=variant_scores
"""

import os
import subprocess
import sys
import time

import numpy as np

from bench import common
from estimator_pipeline.analysis import model_source
from estimator_pipeline.analysis import variant_scores
from estimator_pipeline.records import dna
from tests import baskerville_snp_model

DATA = os.path.join(common.REPO, 'tests', 'data', 'baskerville_snp')
CHROM_LENGTH = 120000
BATCH = 8
SHIFTS = (1, 0, -1)
PCT = 0.1
STATS = ('logSUM', 'SUM', 'logSED', 'D2')


def write_inputs(directory, count, seed=0):
  """A random one-chromosome FASTA and a sorted VCF of `count` SNPs, about 100 bp
  apart (clusters of about four at --cluster_pct=0.1); -> (fasta, vcf)."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.RandomState(seed)
  bases = dna.text(rng.randint(0, 4, CHROM_LENGTH))
  fasta = os.path.join(directory, 'genome.fa')
  with open(fasta, 'w') as f:
    f.write('>chr1\n')
    f.writelines(bases[i:i + 60] + '\n' for i in range(0, len(bases), 60))
  positions = np.sort(rng.choice(np.arange(3000, CHROM_LENGTH - 3000), count,
                                 replace=False)) if count * 100 > CHROM_LENGTH else (
                                     3000 + 100 * np.arange(count))
  vcf = os.path.join(directory, 'variants.vcf')
  with open(vcf, 'w') as f:
    f.write('##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n')
    for i, pos in enumerate(positions):
      ref = bases[pos - 1]
      alt = 'ACGT'[('ACGT'.index(ref) + 1 + rng.randint(3)) % 4]
      f.write('chr1\t%d\trs%d\t%s\t%s\t.\tPASS\t.\n' % (pos, i, ref, alt))
  return fasta, vcf


def _network_sequences(vcf, seq_length):
  """Sequences the pipeline predicts: per cluster its reference and each ALT, at each
  shift, forward and reverse complement."""
  with open(vcf) as f:
    positions = [int(l.split('\t')[1]) for l in f if not l.startswith('#')]
  clusters, first = 0, None
  for pos in positions:
    if first is None or pos >= first + int(seq_length * PCT):
      clusters, first = clusters + 1, pos
  return (clusters + len(positions)) * len(SHIFTS) * 2


def _command(args, env=None):
  start = time.perf_counter()
  proc = subprocess.run(args, capture_output=True, text=True, env=env or
                        common.python_env(), cwd=common.REPO)
  if proc.returncode:
    raise RuntimeError('%s failed: %s' % (args[1], proc.stderr[-2000:]))
  return time.perf_counter() - start


def run(work_dir, toy=False, repeats=3):
  count = 16 if toy else 256
  fasta, vcf = write_inputs(os.path.join(work_dir, 'data'), count)
  # The reference's model, drawn again from its seed (tests/baskerville_snp_model.py).
  h5 = baskerville_snp_model.write_model(os.path.join(work_dir, 'model.h5'))
  model = model_source.load(params_file=os.path.join(DATA, 'model_params.json'),
                            checkpoint=h5, batch_size=BATCH)
  scorer = variant_scores.Scorer(model, os.path.join(DATA, 'targets.txt'), True,
                                 SHIFTS, params_file=os.path.join(DATA,
                                                                  'model_params.json'))
  sequences = _network_sequences(vcf, model.seq_length)
  rng = np.random.RandomState(1)
  batches = [dna.one_hot(rng.randint(0, 4, (BATCH, model.seq_length)))
             for _ in range(-(-sequences // BATCH))]
  model.predict(batches[0])  # The first call pays for graph start-up.
  runs = [0]

  def pipeline():
    runs[0] += 1
    start = time.perf_counter()
    summary = variant_scores.score(model, fasta, vcf, os.path.join(
        work_dir, 'out%d' % runs[0]), STATS, scorer, pct=PCT)
    return summary.rows / (time.perf_counter() - start)

  def ceiling():
    start = time.perf_counter()
    for batch in batches:
      model.predict(batch)
    return count / (time.perf_counter() - start)

  common.log('variant_scores: %d SNPs, %d network sequences, batch %d'
             % (count, sequences, BATCH))
  raw = common.interleave({'pipeline': pipeline, 'ceiling': ceiling}, repeats,
                          log=common.log)
  results = {v + '_variants_per_sec': common.stats(raw[v]) for v in raw}
  results['pipeline_vs_ceiling_ratio'] = common.stats(
      common.ratios(raw['pipeline'], raw['ceiling']))
  results['setup'] = (
      '%d SNPs about 100 bp apart on a %d bp chromosome, --cluster_pct=%g, the '
      'baskerville test model (4096 bp, 12 outputs, 10-row stranded table), --rc, '
      'shifts %s, batch %d, stats %s' % (count, CHROM_LENGTH, PCT,
                                         ','.join(map(str, SHIFTS)), BATCH,
                                         ','.join(STATS)))
  results.update(_versus_baskerville(work_dir, h5, toy, repeats))
  return {'variant_scores': results}


def _versus_baskerville(work_dir, h5, toy, repeats):
  python, src = (os.environ.get('BASKERVILLE_PYTHON', ''),
                 os.environ.get('BASKERVILLE_SRC', ''))
  if toy or not python or not src:
    return {'baskerville': 'not measured (set BASKERVILLE_PYTHON and BASKERVILLE_SRC)'}
  count = 1024
  fasta, vcf = write_inputs(os.path.join(work_dir, 'big'), count, seed=2)
  params = os.path.join(DATA, 'model_params.json')
  targets = os.path.join(DATA, 'targets.txt')
  shifts = ','.join(map(str, SHIFTS))
  env = dict(os.environ, PYTHONPATH=src, PYTHONHASHSEED='0', TF_CPP_MIN_LOG_LEVEL='2',
             CUDA_VISIBLE_DEVICES='')
  theirs = [python, os.path.join(src, 'baskerville', 'scripts', 'hound_snp.py'),
            '-f', fasta, '-t', targets, '--rc', '--shifts', shifts, '-c', str(PCT),
            '--stats', ','.join(STATS), params, h5, vcf]
  mine = [sys.executable, '-m', 'export.variants', '--format=baskerville',
          '--params_file=' + params, '--checkpoint=' + h5, '--targets_file=' + targets,
          '--fasta=' + fasta, '--vcf=' + vcf, '--ensemble_rc',
          '--ensemble_shifts=' + shifts, '--cluster_pct=%g' % PCT,
          '--stats=' + ','.join(STATS), '--batch_size=%d' % BATCH]
  runs = [0]

  def project():
    runs[0] += 1
    return count / _command(mine + ['--output_dir=' + os.path.join(
        work_dir, 'mine%d' % runs[0])])

  def baskerville():
    runs[0] += 1
    return count / _command(theirs[:2] + ['-o', os.path.join(
        work_dir, 'theirs%d' % runs[0])] + theirs[2:], env)

  raw = common.interleave({'project': project, 'baskerville': baskerville},
                          max(1, repeats - 1), log=common.log)
  return {'command_variants_per_sec': common.stats(raw['project']),
          'baskerville_hound_snp_variants_per_sec': common.stats(raw['baskerville']),
          'command_vs_baskerville_ratio': common.stats(
              common.ratios(raw['project'], raw['baskerville'])),
          'baskerville_setup': '%d SNPs; both whole commands, start-up included' % count}
