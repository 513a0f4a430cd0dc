r"""export.variants --format=baskerville: hound_snp.py's scores.h5, indels included.

  python -m export.variants --format=baskerville --params_file=params.json \
      --checkpoint=model.h5 --targets_file=targets.txt --fasta=genome.fa \
      --vcf=variants.vcf --ensemble_rc --ensemble_shifts=1,0,-1 --indel_stitch \
      --stats=logSUM,SUM,logSED,SAX,D1,D2,JS --output_dir=out/

Each variant (or --cluster_pct's group of nearby variants) gets its window
(variant_alleles.py), the reference and alternative sequences are predicted at every
shift with the reverse-complement ensemble (strand pairs swapped), untransformed by
the targets table in float64, and the statistics (variant_effects.py) are summed over
strand pairs into the table's collapsed targets. out/scores.h5 has hound_snp.py's
layout (`snp`, `chr`, `pos`, `ref_allele`, `alt_allele`, `target_ids`,
`target_labels`, one float16 [rows, targets] dataset per statistic, REF and ALT
[rows, shifts, bins, targets], `percentiles` and `<stat>_pct`); out/scores.tsv the same
statistics as text. A variant whose chromosome is not in the FASTA, or whose genome
holds neither REF nor the scored ALT, is skipped with its reason.
"""

import json
import shutil
import tempfile

import numpy as np

from estimator_pipeline.analysis import sequence_model
from estimator_pipeline.analysis import targets as targets_lib
from estimator_pipeline.analysis import variant_alleles
from estimator_pipeline.analysis import variant_effects
from estimator_pipeline.analysis import variant_output
from estimator_pipeline.analysis import variants
from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import vcf as vcf_lib

NAMES = ('scores.h5', 'scores.tsv')
# Sequences gathered before a round of network calls (several clusters' worth).
_GATHER = 64


class Scorer:
  """What turns network outputs into scores: the targets table (order, strand pairs,
  untransform), the ensemble, the shifts and the model's bin geometry."""

  def __init__(self, model, targets_file='', rc=False, shifts=(0,), old=False,
               stitch=False, crop_bins=-1, params_file=''):
    if targets_file:
      required = ('identifier', 'clip_soft', 'sum_stat') + (('scale',) if old else ())
      self.table = targets_lib.read(targets_file, model.num_targets, required)
    else:
      self.table = targets_lib.model_targets(model.num_targets)
    self.untransform = bool(targets_file)
    self.old, self.stitch = old, stitch
    self.shifts = tuple(int(s) for s in shifts) or (0,)
    stranded = self.table.pair is not None
    self.strand_sum = self.table.sum_matrix() if stranded else None
    self.columns = self.table.collapsed if stranded else tuple(
        range(len(self.table.index)))
    self.ids = [self.table.ids[k] for k in self.columns]
    self.labels = [self.table.labels[k] for k in self.columns]
    self.ensemble = variant_alleles.Ensemble(model, self.table.index,
                                             self.table.pair, rc)
    self.seq_length, self.bins = model.seq_length, model.bins
    self.stride, self.crop = geometry(model, crop_bins, params_file)

  def predict(self, codes, shifts):
    """uint8 [n, L], [n] shifts -> float64 [n, bins, T], untransformed."""
    return self.untransformed(self.ensemble.predict(codes, shifts))

  def untransformed(self, preds):
    """The ensemble's float32 predictions -> float64, the table's transform undone."""
    if not self.untransform:
      return preds.astype(np.float64)
    return variant_effects.untransform(preds, self.table.rows, self.old)

  def stitch_bin(self, allele, start):
    """The bin holding the base after the variant's first base, or None."""
    if not self.stitch or not allele.indel:
      return None
    # A variant in a gene window's cropped flank stitches at the edge.
    at = (allele.variant.pos - start - self.crop) // self.stride
    return min(max(at, 0), self.bins)


def geometry(model, crop_bins=-1, params_file=''):
  """(stride, crop in bp) of the model's output bins within its window.

  crop_bins: bins the model crops at each end (its Cropping1D); -1 reads them from
  the params file (0 without one).
  """
  if crop_bins < 0:
    crop_bins = 0
    if params_file:
      with open(params_file) as f:
        trunk = json.load(f).get('model', {}).get('trunk', [])
      crop_bins = sum(int(b.get('cropping', 0)) for b in trunk
                      if b.get('name') == 'Cropping1D')
  total = model.bins + 2 * crop_bins
  if model.seq_length % total:
    raise UserError('the model maps %d bp to %d bins: with %d cropped bins at each '
                    'end that is no whole number of bp per bin; pass the number it '
                    'crops as --crop_bins (its Cropping1D cropping).' % (
                        model.seq_length, model.bins, crop_bins))
  stride = model.seq_length // total
  return stride, crop_bins * stride


def read_alleles(genome, vcf, seq_length, summary, all_alts=False, flip=True):
  """Yields Allele per scorable VCF row; skipped ones go to summary."""
  reader = genome.reader()
  try:
    for variant in vcf_lib.iter_vcf(vcf, all_alts):
      variant_alleles.check_allele_length(variant, seq_length)
      summary.note_alts(variant, all_alts)
      try:
        yield variant_alleles.resolve(variant, reader, flip)
      except vcf_lib.Skip as e:
        summary.skip(variant, str(e))
  finally:
    reader.close()


def streamed_clusters(alleles, seq_length, pct):
  """variant_alleles.cluster over a stream: each cluster once the next one starts."""
  pending = []
  for allele in alleles:
    if pending and variant_alleles.cluster(pending + [allele], seq_length, pct)[
        -1].alleles[0] is allele:
      yield from variant_alleles.cluster(pending, seq_length, pct)
      pending = []
    pending.append(allele)
  if pending:
    yield from variant_alleles.cluster(pending, seq_length, pct)


def cluster_requests(scorer, c, reader, compensate_ref):
  """-> [(codes, shifts, (key))] of a cluster: its reference once, each allele's ALT."""
  c.codes = reader.codes(c.chrom, c.start, c.start + scorer.seq_length)
  shifts = scorer.shifts
  single = c.alleles[0]
  ref_shifts = variant_alleles.shift_plan(shifts, single.indel, True)[0] if (
      compensate_ref and c.singleton and single.indel < 0) else list(shifts)
  requests = [(c.codes, ref_shifts, ('ref',))]
  for i, allele in enumerate(c.alleles):
    index = allele.variant.pos - 1 - c.start
    codes = variant_alleles.alt_codes(c.codes, index, allele.ref, allele.alt)
    comp_ref = compensate_ref and c.singleton and allele.indel < 0
    alt_shifts = variant_alleles.shift_plan(shifts, allele.indel, comp_ref)[1]
    requests.append((codes, alt_shifts, ('alt', i)))
  return requests


def predict_clusters(scorer, clusters, reader, compensate_ref=True):
  """Yields (Cluster, {key: float64 [shifts, bins, T]}), network calls gathered over
  several clusters. The windows of the next group are read and encoded on a second
  thread while the network runs (sequence_model.prefetch)."""
  for group, batch in sequence_model.prefetch(
      _groups(scorer, clusters, reader, compensate_ref)):
    preds = scorer.untransformed(scorer.ensemble.outputs(batch))
    at = 0
    for c, reqs in group:
      found = {}
      for _, shifts, key in reqs:
        found[key] = preds[at:at + len(shifts)]
        at += len(shifts)
      yield c, found


def _groups(scorer, clusters, reader, compensate_ref):
  """Yields ([(Cluster, requests)], the network's one-hot batch of them)."""
  group, size = [], 0
  for c in clusters:
    group.append((c, cluster_requests(scorer, c, reader, compensate_ref)))
    size += sum(len(s) for _, s, _ in group[-1][1])
    if size >= _GATHER:
      yield group, _inputs(scorer, group)
      group, size = [], 0
  if group:
    yield group, _inputs(scorer, group)


def _inputs(scorer, group):
  codes = [codes for _, reqs in group for codes, shifts, _ in reqs for _ in shifts]
  shifts = [s for _, reqs in group for _, shifts, _ in reqs for s in shifts]
  return scorer.ensemble.inputs(np.stack(codes), shifts)


def allele_sides(scorer, c, preds, i, compensate_ref=True):
  """(ref [S, bins, T], alt [S, bins, T], plain (ref, alt)) of allele i, both in VCF
  order (flipped back). plain: the predictions at the shifts only (REF / ALT)."""
  allele = c.alleles[i]
  comp_ref = compensate_ref and c.singleton and allele.indel < 0
  ref, alt = preds[('ref',)], preds[('alt', i)]
  plain = (ref[0::2] if comp_ref and allele.indel else ref[:len(scorer.shifts)],
           alt if comp_ref or not allele.indel else alt[0::2])
  ref, alt = variant_alleles.pair_sides(ref, alt, allele.indel, comp_ref,
                                        scorer.stitch_bin(allele, c.start))
  if scorer.stitch_bin(allele, c.start) is not None:
    plain = (ref, alt)
  if allele.flipped:
    return alt, ref, plain[::-1]
  return ref, alt, plain


def score(model, fasta, vcf, output_dir, stats, scorer, all_alts=False, pct=0.0):
  """Scores every variant of vcf into output_dir/scores.h5 and scores.tsv.

  Raises:
    UserError: bad input; nothing is written then.
  """
  per_bin = (len(scorer.shifts), model.bins, len(scorer.ids))
  scratch = tempfile.mkdtemp(prefix='variants-')
  try:
    genome = fasta_index.open_genome(fasta, scratch)
    writer = variant_output.SadWriter(scratch, stats, scorer, model.bins, NAMES,
                                      per_bin)
    try:
      summary = _score_all(genome, vcf, stats, scorer, writer, all_alts, pct)
      variants.check_scored(summary, fasta, vcf, genome)
      writer.finish(output_dir)
    finally:
      writer.close()
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  variants.report(summary, output_dir, all_alts, NAMES)
  return summary


def _score_all(genome, vcf, stats, scorer, writer, all_alts, pct):
  summary = variants.Summary()
  alleles = read_alleles(genome, vcf, scorer.seq_length, summary, all_alts)
  clusters = streamed_clusters(alleles, scorer.seq_length, pct)
  reader = genome.reader()
  try:
    with console.Progress(0, 'scoring variants', unit='variant') as progress:
      for c, preds in predict_clusters(scorer, clusters, reader):
        rows = []
        for i, allele in enumerate(c.alleles):
          ref, alt, plain = allele_sides(scorer, c, preds, i)
          values = variant_effects.compute(
              ref, alt, [s for s in stats if s not in variant_effects.PER_BIN],
              scorer.strand_sum)
          per_bin = [s for s in stats if s in variant_effects.PER_BIN]
          values.update(variant_effects.compute(plain[0], plain[1], per_bin,
                                                scorer.strand_sum))
          rows.append((allele.variant, values))
        writer.add(rows)
        summary.rows += len(rows)
        progress.update(len(rows))
  finally:
    reader.close()
  return summary
