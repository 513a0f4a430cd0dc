r"""sad.h5 (basenji_sad.py's layout) and sad.tsv, written as the variants are scored.

  python -c "
  import h5py
  with h5py.File('out/sad.h5') as f:
      print({k: (f[k].dtype, f[k].shape) for k in f})"

sad.h5: per variant row `snp`, `chr`, `pos` (uint32), `ref_allele`, `alt_allele`
(fixed-length byte strings, as long as the longest), one float16 dataset per statistic
([rows, targets]; REF and ALT [rows, bins, targets]); `target_ids`, `target_labels`;
`percentiles` (float64 [279]) and `<stat>_pct` (float16 [targets, 279]) for every
statistic but REF and ALT. sad.tsv: a header, then one line per (row, statistic) with
row, snp, chr, pos, ref_allele, alt_allele, stat and one column per target.

Rows are appended in blocks; the string columns wait in a text file until their width
is known, so memory does not grow with the VCF. Both files are built in a scratch
folder and copied into place atomically when the run completes.
"""

import os
import shutil

import h5py
import numpy as np

from estimator_pipeline.analysis import variant_stats
from estimator_pipeline.core import files

H5_FILE = 'sad.h5'
TSV_FILE = 'sad.tsv'
_META = ('snp', 'chr', 'pos', 'ref_allele', 'alt_allele')
# Rows and values at most per HDF5 chunk of a statistic; values per percentile pass.
_CHUNK_ROWS = 256
_CHUNK_VALUES = 1 << 19
_PCT_VALUES = 1 << 24


class SadWriter:
  """Appends scored variant rows; finish() completes the files and moves them."""

  def __init__(self, scratch, stats, targets, bins, names=(H5_FILE, TSV_FILE),
               per_bin=None):
    """names: the .h5 and .tsv file names; per_bin: the shape of a REF or ALT row
    ((bins, targets) when None)."""
    self.scratch, self.stats, self.targets = scratch, stats, targets
    self.names = names
    self.rows = 0
    num_targets = len(targets.ids)
    self._h5 = h5py.File(os.path.join(scratch, names[0]), 'w', track_order=False)
    for stat in stats:
      shape = ((per_bin or (bins, num_targets)) if stat in variant_stats.PER_BIN else
               (num_targets,))
      # About a megabyte per chunk: a big model's REF and ALT rows are large.
      rows = max(1, min(_CHUNK_ROWS, _CHUNK_VALUES // int(np.prod(shape))))
      self._h5.create_dataset(stat, shape=(0,) + shape, maxshape=(None,) + shape,
                              chunks=(rows,) + shape, dtype=np.float16,
                              track_times=False)
    self._meta = open(os.path.join(scratch, 'meta.txt'), 'w', encoding='ascii')
    self._tsv = open(os.path.join(scratch, names[1]), 'w', encoding='utf-8')
    self._tsv.write('\t'.join(('row',) + _META + ('stat',) + tuple(targets.ids))
                    + '\n')

  def add(self, rows):
    """rows: [(Variant, {stat: float16 values})], in output order."""
    if not rows:
      return
    first, count = self.rows, len(rows)
    for stat in self.stats:
      dataset = self._h5[stat]
      dataset.resize(first + count, axis=0)
      dataset[first:first + count] = np.stack([values[stat] for _, values in rows])
    for i, (variant, values) in enumerate(rows):
      meta = (variant.snp, variant.chrom, str(variant.pos), variant.ref, variant.alt)
      self._meta.write('\t'.join(meta) + '\n')
      for stat in self.stats:
        if stat not in variant_stats.PER_BIN:
          self._tsv.write('\t'.join(
              (str(first + i),) + meta + (stat,) +
              tuple('%.8g' % v for v in values[stat].astype(np.float64))) + '\n')
    self.rows += count

  def finish(self, output_dir):
    """Writes the string columns and percentiles; copies both files to output_dir."""
    self._meta.close()
    self._tsv.close()
    h5 = self._h5
    self._write_meta(h5)
    for name, values in (('target_ids', self.targets.ids),
                         ('target_labels', self.targets.labels)):
      # Through an object array, as basenji's pandas column: all-empty labels are
      # then |S8, not |S1.
      h5.create_dataset(name, data=np.array(np.array(values, object), 'S'),
                        track_times=False)
    pct = variant_stats.percentiles()
    h5.create_dataset('percentiles', data=pct, track_times=False)
    for stat in self.stats:
      if stat not in variant_stats.PER_BIN:
        h5.create_dataset('%s_pct' % stat, data=self._pct(h5[stat], pct),
                          dtype=np.float16, track_times=False)
    h5.close()
    self._h5 = None
    files.make_output_dir(output_dir)
    for name in self.names:
      with files.atomic_path(os.path.join(output_dir, name)) as tmp:
        shutil.copyfile(os.path.join(self.scratch, name), tmp)

  def close(self):
    """Closes what is open (after a failure: nothing is copied)."""
    for handle in (self._meta, self._tsv):
      handle.close()
    if self._h5:
      self._h5.close()

  def _meta_lines(self):
    with open(os.path.join(self.scratch, 'meta.txt'), encoding='ascii') as f:
      for line in f:
        yield line.rstrip('\n').split('\t')

  def _write_meta(self, h5):
    widths = [1] * len(_META)
    for fields in self._meta_lines():
      widths = [max(w, len(f)) for w, f in zip(widths, fields)]
    datasets = [h5.create_dataset(name, shape=(self.rows,), track_times=False,
                                  dtype='uint32' if name == 'pos' else 'S%d' % width)
                for name, width in zip(_META, widths)]
    block, start = [], 0
    for fields in self._meta_lines():
      block.append(fields)
      if len(block) == _CHUNK_ROWS * 16:
        _write_block(datasets, block, start)
        start += len(block)
        block = []
    _write_block(datasets, block, start)

  def _pct(self, dataset, pct):
    """basenji's np.percentile over rows, per target, a band of targets at a time."""
    num_targets = dataset.shape[1]
    step = max(1, _PCT_VALUES // max(1, self.rows))
    bands = [np.percentile(dataset[:, t:t + step], 100 * pct, axis=0).T
             for t in range(0, num_targets, step)]
    return np.concatenate(bands).astype(np.float16)


def _write_block(datasets, block, start):
  if not block:
    return
  for i, dataset in enumerate(datasets):
    column = [fields[i] for fields in block]
    values = (np.array(column, np.uint32) if dataset.dtype == np.uint32 else
              np.array(column, 'S'))
    dataset[start:start + len(block)] = values
