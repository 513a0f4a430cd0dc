r"""Variant effects: each VCF variant's reference and alternative windows through the
model, basenji_sad.py's statistics of the two predictions, sad.h5 and sad.tsv.

  python -m export.variants --params_file=params.json --checkpoint=model_best.h5 \
      --fasta=genome.fa --vcf=variants.vcf --stats=SAD,logSAD,REF,ALT \
      --ensemble_rc --ensemble_shifts=1,0,-1 --output_dir=out/

The VCF is read line by line on a second thread, which builds the windows of the next
batch (basenji's one-hot with N = 0.25 in every channel) while the network runs; each
batch holds the two sequences of --batch_size / 2 variants. A variant that cannot be
scored (its chromosome is not in the FASTA, or the genome matches neither allele) is
skipped, named on the console with its reason, and counted at the end.
"""

import collections
import shutil
import tempfile

import numpy as np

from estimator_pipeline.analysis import variant_output
from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import dna
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import vcf as vcf_lib

# basenji_sad.py's one-hot value of N (and any other letter) in each channel.
N_VALUE = 0.25
# Lines naming single skipped or multi-allelic variants before only counting them.
_NAMED = 20


class Summary:
  """What a run did: rows written, variants skipped by reason, multi-allelic lines."""

  def __init__(self):
    self.rows = 0
    self.skipped = []  # (VCF line number, reason)
    self.multi_allelic = 0

  def skip(self, variant, reason):
    self.skipped.append((variant.line, reason))
    if len(self.skipped) <= _NAMED:
      console.line('skipped %s (line %d): %s' % (variant.snp, variant.line, reason))

  def note_alts(self, variant, all_alts):
    if len(variant.alts) < 2 or variant.alt_index:
      return
    self.multi_allelic += 1
    if self.multi_allelic <= _NAMED and not all_alts:
      console.line('%s (line %d) has %d ALT alleles: scored for its first, %s, as '
                   'basenji does (--all_alts scores each as its own row).' % (
                       variant.snp, variant.line, len(variant.alts), variant.alt))


def variant_batches(genome, vcf, seq_length, batch_size, all_alts=False):
  """Yields (rows, skipped, one-hot [2 * rows, L, 4]): rows' REF and ALT windows
  interleaved; skipped: [(Variant, reason)] met while filling the batch."""
  reader = genome.reader()
  per_batch = max(1, batch_size // 2)
  rows, skipped, codes = [], [], []
  try:
    for variant in vcf_lib.iter_vcf(vcf, all_alts):
      try:
        ref, alts = vcf_lib.allele_windows(variant, seq_length, reader)
      except vcf_lib.Skip as e:
        skipped.append((variant, str(e)))
        continue
      rows.append(variant)
      codes += [ref, alts[variant.alt_index]]
      if len(rows) >= per_batch:
        yield rows, skipped, _one_hot(codes, seq_length)
        rows, skipped, codes = [], [], []
    if rows or skipped:
      yield rows, skipped, _one_hot(codes, seq_length)
  finally:
    reader.close()


def _one_hot(codes, seq_length):
  if not codes:
    return np.zeros((0, seq_length, 4), np.float32)
  return dna.one_hot(np.stack(codes), n_value=N_VALUE)


def score(model, fasta, vcf, output_dir, stats=('SAD',), targets_file='',
          all_alts=False):
  """Scores every variant of vcf; writes output_dir/sad.h5 and sad.tsv. -> Summary.

  Raises:
    UserError: bad input (a file that is not a VCF, a FASTA without the VCF's
      chromosomes, a targets table without clip_soft, ...); nothing is written then.
  """
  targets = variant_stats.Targets(model.num_targets, targets_file)
  if targets.model_pairs() is not None and model.strand_pair is None:
    # Reverse-complemented copies averaged around the network swap strands (a model
    # loaded with the table has its pairs already, in the graph or here).
    model.strand_pair = targets.model_pairs()
  scratch = tempfile.mkdtemp(prefix='variants-')
  try:
    genome = fasta_index.open_genome(fasta, scratch)
    writer = variant_output.SadWriter(scratch, stats, targets, model.bins)
    try:
      summary = _score_all(model, genome, vcf, stats, targets, writer, all_alts)
      check_scored(summary, fasta, vcf, genome)
      writer.finish(output_dir)
    finally:
      writer.close()
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  report(summary, output_dir, all_alts)
  return summary


def _score_all(model, genome, vcf, stats, targets, writer, all_alts):
  summary = Summary()
  batches = variant_batches(genome, vcf, model.seq_length, model.batch_size, all_alts)
  with console.Progress(0, 'scoring variants', unit='variant') as progress:
    for (rows, skipped), preds in model.predict_pairs(
        ((rows, skipped), one_hot) for rows, skipped, one_hot in batches):
      for variant, reason in skipped:
        summary.skip(variant, reason)
      preds = targets.apply(preds)
      scored = []
      for i, variant in enumerate(rows):
        summary.note_alts(variant, all_alts)
        scored.append((variant, variant_stats.compute(preds[2 * i], preds[2 * i + 1],
                                                      stats)))
      writer.add(scored)
      summary.rows += len(rows)
      progress.update(len(rows) + len(skipped))
  return summary


def check_scored(summary, fasta, vcf, genome):
  if summary.rows:
    return
  if not summary.skipped:
    raise UserError('--vcf=%s holds no variant (no data line under its header).' % vcf)
  missing = [r for _, r in summary.skipped if 'is not in the FASTA' in r]
  if len(missing) == len(summary.skipped):
    raise UserError('--fasta=%s holds none of the chromosomes of --vcf=%s (its '
                    'chromosomes: %s): pass the genome the VCF was called on.' % (
                        fasta, vcf, ', '.join(list(genome.lengths)[:8])))
  raise UserError('--vcf=%s: none of its %d variants could be scored (first, line '
                  '%d: %s).' % (vcf, len(summary.skipped), summary.skipped[0][0],
                                summary.skipped[0][1]))


def report(summary, output_dir, all_alts,
           names=(variant_output.H5_FILE, variant_output.TSV_FILE)):
  if summary.skipped:
    reasons = collections.Counter(r.split(':')[0] if 'the genome has' not in r else
                                  'the genome matches neither allele'
                                  for _, r in summary.skipped)
    console.line('%d variant(s) skipped (%s); lines: %s%s' % (
        len(summary.skipped),
        ', '.join('%d: %s' % (n, r) for r, n in sorted(reasons.items())),
        ', '.join(str(line) for line, _ in summary.skipped[:_NAMED]),
        ' ...' if len(summary.skipped) > _NAMED else ''))
  if summary.multi_allelic and not all_alts:
    console.line('%d multi-allelic line(s) scored for their first ALT only.'
                 % summary.multi_allelic)
  console.line('Wrote %d variant rows to %s/%s and %s.' % (
      summary.rows, output_dir.rstrip('/'), names[0], names[1]))
