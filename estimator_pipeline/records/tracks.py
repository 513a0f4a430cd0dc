r"""Coverage tracks by random access: bigWig by pyBigWig, bedGraph through an index.

Before any window is written every track is checked against the genome: a bigWig's
header (its chromosomes and their lengths), a bedGraph's every line, which is also
streamed into an interval_store on disk so that no track is held in memory. A track
named like a bigWig that is not one, a track on another assembly, or one that names
chromosomes another way (1 versus chr1) is one UserError that says how to fix it.

  python -c "
  from estimator_pipeline.records import tracks, targets_table, fasta_index
  genome = fasta_index.open_genome('genome.fa', '/tmp')
  [track] = tracks.check(targets_table.tracks_from_flags(['dnase.bw']), genome)
  print(tracks.TrackReader(track).values('chr1', 0, 10))"
"""

import dataclasses
import os

import numpy as np
import pyBigWig

from estimator_pipeline.core import console
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import genome_files
from estimator_pipeline.records import interval_store

_BIGWIG_MAGIC = (b'\x26\xfc\x8f\x88', b'\x88\x8f\xfc\x26')
_BIGBED_MAGIC = (b'\xeb\xf2\x89\x87', b'\x87\x89\xf2\xeb')
_BIGWIG_NAMES = ('.bw', '.bigwig')


def check(tracks, genome, ignore_chroms=()):
  """The cheap checks of every track: its file, its kind, a bigWig's header against
  genome. Returns the TrackSpecs with kind set."""
  checked = []
  for track in tracks:
    kind = track_kind(track)
    if kind == 'bigwig':
      _check_bigwig(track, genome, set(ignore_chroms))
    checked.append(dataclasses.replace(track, kind=kind))
  return checked


def index_bedgraphs(tracks, genome, work_dir, ignore_chroms=(), progress=True):
  """Reads every bedGraph of tracks (checked) into a store under work_dir, checking
  each line against genome. Returns the TrackSpecs with store set."""
  return [_index_bedgraph(t, i, genome, work_dir, set(ignore_chroms), progress)
          if t.kind == 'bedgraph' else t for i, t in enumerate(tracks)]


def read_mask(path, flag, genome, work_dir, pad=0):
  """A BED of masked bases (--blacklist, --umap) -> IntervalStore, each interval
  widened by pad bases each side; chromosomes the FASTA lacks are left out, but a BED
  that shares none with it (1 versus chr1) is refused."""
  builder = interval_store.Builder(os.path.join(work_dir, 'masks'), flag,
                                   '--%s=%s' % (flag, path), merge=True)
  first_unknown = None
  for line, chrom, start, end, _ in genome_files.iter_bed(path, flag):
    if chrom in genome.lengths:
      builder.add(chrom, max(0, start - pad), end + pad, 1.0, line)
    elif first_unknown is None:
      first_unknown = (line, chrom)
  store = builder.finish()
  if not store.index and first_unknown:
    line, chrom = first_unknown
    raise UserError(unknown_chrom_message(
        '--%s=%s names no chromosome of --fasta (line %d: %s)' % (
            flag, path, line, chrom), chrom, genome))
  return store


def track_kind(track):
  """'bigwig' or 'bedgraph', by the file's first bytes; a misnamed one is refused."""
  path = track.file
  if not os.path.isfile(path):
    raise UserError('%s does not exist' % track.source)
  try:
    with open(path, 'rb') as f:
      head = f.read(4)
  except OSError as e:
    raise UserError('%s cannot be read: %s' % (track.source, e.strerror or e)) from None
  if head in _BIGWIG_MAGIC:
    return 'bigwig'
  if head in _BIGBED_MAGIC:
    raise UserError('%s is a bigBed (intervals), not coverage: give a bigWig or a '
                    'bedGraph' % track.source)
  if os.path.splitext(path)[1].lower() in _BIGWIG_NAMES:
    looks = 'text: a bedGraph?' if head[:1].isalnum() else 'bytes %r' % head
    raise UserError('%s is named as a bigWig but is not one (it starts as %s); convert '
                    'it with bedGraphToBigWig, or name it .bedGraph to read it as one'
                    % (track.source, looks))
  return 'bedgraph'


def _open_bigwig(track):
  with fasta_index.stderr_lines():  # libBigWig prints its own complaints.
    try:
      handle = pyBigWig.open(track.file)
    except RuntimeError:
      handle = None
  if handle is None or not handle.isBigWig():
    raise UserError('%s cannot be read as a bigWig (damaged or truncated?)'
                    % track.source)
  return handle


def _check_bigwig(track, genome, ignore):
  handle = _open_bigwig(track)
  try:
    sizes = handle.chroms()
    for chrom, size in sizes.items():
      if chrom in ignore:
        continue
      if chrom in genome.lengths:
        if size != genome.lengths[chrom]:
          raise UserError(
              '%s says %s is %d bp, --fasta=%s %d bp: the track is on another assembly '
              '(hg19 vs hg38?); use the FASTA it was made against' % (
                  track.source, chrom, size, genome.fasta, genome.lengths[chrom]))
      elif handle.stats(chrom, exact=False) != [None]:  # A name without data passes.
        raise UserError(unknown_chrom_message(
            '%s has data on %s, which --fasta=%s lacks' % (track.source, chrom,
                                                          genome.fasta),
            chrom, genome, track=track))
  finally:
    handle.close()


def unknown_chrom_message(head, chrom, genome, track=None):
  """head (which names chrom and says the FASTA lacks it), then the likely fix."""
  names = genome.lengths
  other = {'chrM': 'MT', 'MT': 'chrM'}.get(chrom) or (
      chrom[3:] if chrom.startswith('chr') else 'chr' + chrom)
  if other in names:
    add = not chrom.startswith('chr')
    text = '%s; the FASTA calls it %s (its names %s \'chr\': %s)' % (
        head, other, 'have' if add else 'lack', ', '.join(list(names)[:3]))
    if track is None:
      return text
    return ('%s: use the FASTA the track was made against, or rename the track\'s '
            'chromosomes (a bigWig: bigWigToBedGraph it, sed \'s/^%s/%s/\' the '
            'bedGraph, and pass that)' % (text, '' if add else 'chr',
                                          'chr' if add else ''))
  some = ', '.join(list(names)[:5]) + (', ...' if len(names) > 5 else '')
  if track is None:
    return '%s (its chromosomes: %s)' % (head, some)
  return ('%s (its chromosomes: %s); is the track for another genome? If the FASTA '
          'leaves %s out on purpose, pass --ignore_track_chroms=%s' % (
              head, some, chrom, chrom))


def _index_bedgraph(track, number, genome, work_dir, ignore, progress):
  """Streams a bedGraph into an interval store, checking every line."""
  builder = interval_store.Builder(os.path.join(work_dir, 'tracks'), 'track%d' % number,
                                   track.source)
  names = {}
  description = []
  size_mb = os.path.getsize(track.file) / 1e6
  meter = console.Progress(size_mb, 'reading %s' % os.path.basename(track.file),
                           unit='MB', enabled=progress)
  try:
    for line, raw, start, end, value in genome_files.iter_bedgraph(
        track.file, track.source,
        on_track_line=lambda l: description.append(
            genome_files.track_line_description(l)),
        on_progress=lambda position: meter.update(done=position / 1e6)):
      chrom = names.get(raw)
      if chrom is None:
        chrom = names[raw] = raw.decode('utf-8', 'replace')
        if chrom not in genome.lengths and chrom not in ignore:
          raise UserError(unknown_chrom_message(
              '%s line %d: chromosome %s is not in --fasta=%s' % (
                  track.source, line, chrom, genome.fasta), chrom, genome, track=track))
      if chrom in ignore:
        continue
      if end > genome.lengths[chrom]:
        raise UserError('%s line %d: end %d is past the end of %s (%d bp in '
                        '--fasta=%s); is the track for another assembly?' % (
                            track.source, line, end, chrom, genome.lengths[chrom],
                            genome.fasta))
      builder.add(chrom, start, end, value, line)
  finally:
    meter.close()
  return dataclasses.replace(track, store=builder.finish(),
                             description=track.description or
                             next((d for d in description if d), ''))


class TrackReader:
  """Per-base values of one track; NaN where it has none (or off the chromosome)."""

  def __init__(self, track):
    self._track = track
    self._bigwig = _open_bigwig(track) if track.kind == 'bigwig' else None
    self._sizes = self._bigwig.chroms() if self._bigwig else None

  def values(self, chrom, start, end):
    """float32 [end - start]."""
    if self._bigwig is None:
      return self._track.store.values(chrom, start, end)
    size = self._sizes.get(chrom, 0)
    lo, hi = max(0, start), min(size, end)
    if lo == start and hi == end:
      return self._bigwig.values(chrom, start, end, numpy=True)
    out = np.full(end - start, np.nan, np.float32)
    if hi > lo:
      out[lo - start:hi - start] = self._bigwig.values(chrom, lo, hi, numpy=True)
    return out

  def close(self):
    if self._bigwig is not None:
      self._bigwig.close()
