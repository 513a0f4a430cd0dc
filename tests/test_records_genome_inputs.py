"""The genome converter's inputs: every bad one is one UserError before any record is
written, and the pieces underneath (the .fai, contigs, the interval index, the record
writer) against their references.

  .venv/bin/python -m pytest -q tests/test_records_genome_inputs.py
"""

import gzip
import os
import shutil

import estimator_pipeline  # noqa: F401  (compat fixes before TF)
import numpy as np
import pytest
import tensorflow as tf

import genome_helpers as gh
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import fasta_index
from estimator_pipeline.records import interval_store
from estimator_pipeline.records import record_file
from estimator_pipeline.records import sequence_format
from estimator_pipeline.records import sequences


@pytest.fixture
def inputs(tmp_path):
  fasta, _ = gh.write_genome(tmp_path)
  values = gh.coverage(1)
  return {'dir': tmp_path, 'fasta': fasta, 'values': values,
          'bw': gh.write_bigwig(tmp_path / 'a.bw', values),
          'targets': gh.write_targets(tmp_path / 'targets.txt',
                                      [('a', 'a.bw', '', '', 1, 'sum')])}


def _break(case, inputs, kwargs):
  """Makes one input bad; returns the message expected."""
  root = inputs['dir']
  if case == 'bigwig_is_bedgraph':
    kwargs['coverage'] = [gh.write_bedgraph(root / 'b.bw', inputs['values'])]
    return r'b.bw is named as a bigWig but is not one .*a bedGraph\?'
  if case == 'fai_mismatch':
    fasta_index.open_genome(inputs['fasta'], str(root))  # Writes genome.fa.fai.
    text = open(inputs['fasta']).read().replace('>chr2 test', '>chr2 a longer test')
    open(inputs['fasta'], 'w').write(text)
    return r'genome.fa.fai does not match --fasta=.*genome.fa \(chr2: no >chr2 header'
  if case == 'chrom_names':
    names = {'chr1': '1', 'chr2': '2', 'chr3': '3'}
    kwargs['coverage'] = [gh.write_bigwig(root / 'ensembl.bw', inputs['values'],
                                          names=names)]
    return (r"ensembl.bw has data on 1, which --fasta=.* lacks; the FASTA calls it "
            r"chr1 .* sed 's/\^/chr/'")
  if case == 'assembly':
    kwargs['coverage'] = [gh.write_bigwig(root / 'hg19.bw', inputs['values'],
                                          lengths={'chr2': 3100})]
    return r'hg19.bw says chr2 is 3100 bp, --fasta=.* 3000 bp: the track is on another'
  if case == 'truncated_bigwig':
    data = open(inputs['bw'], 'rb').read()
    open(root / 'cut.bw', 'wb').write(data[:200])
    kwargs['coverage'] = [str(root / 'cut.bw')]
    return r'cut.bw cannot be read as a bigWig \(damaged or truncated\?\)'
  if case == 'bedgraph_past_end':
    path = root / 'long.bedGraph'
    path.write_text('chr1\t0\t10\t1\nchr2\t2990\t3010\t1\n')
    kwargs['coverage'] = [str(path)]
    return r'long.bedGraph line 2: end 3010 is past the end of chr2 \(3000 bp'
  if case == 'blacklist_line':
    (root / 'black.bed').write_text('chr1\t10\t50\nchr1\t10\n')
    kwargs['blacklist'] = str(root / 'black.bed')
    return r'--blacklist=.*black.bed line 2: expected chrom, start, end'
  if case == 'blacklist_names':
    (root / 'black.bed').write_text('1\t10\t50\n')
    kwargs['blacklist'] = str(root / 'black.bed')
    return r'black.bed names no chromosome of --fasta \(line 1: 1\); the FASTA calls'
  if case == 'stride':
    kwargs['stride'] = 0
    return r'--stride=0 must be positive'
  if case == 'pool':
    kwargs.update(seq_length=500, pool_width=16)
    return r'--seq_length=500 is not a multiple of --pool_width=16'
  if case == 'targets_columns':
    (root / 'bad.txt').write_text('identifier\tpath\nx\ta.bw\n')
    kwargs.update(coverage=(), targets_file=str(root / 'bad.txt'))
    return r"bad.txt has no 'file' column \(its header: 'identifier path'\)"
  if case == 'targets_stat':
    kwargs.update(coverage=(), targets_file=gh.write_targets(
        root / 't.txt', [('a', 'a.bw', '', '', 1, 'total')]))
    return r"t.txt line 2: sum_stat 'total' is not one of sum, sum_sqrt"
  if case == 'split_chroms':
    kwargs['valid_chroms'] = ['2']
    return r'--valid_chroms names 2, which --fasta=.* lacks; the FASTA calls it chr2'
  raise ValueError(case)


@pytest.mark.parametrize('case', [
    'bigwig_is_bedgraph', 'fai_mismatch', 'chrom_names', 'assembly', 'truncated_bigwig',
    'bedgraph_past_end', 'blacklist_line', 'blacklist_names', 'stride', 'pool',
    'targets_columns', 'targets_stat', 'split_chroms'])
def test_bad_input_is_one_error_and_leaves_nothing(inputs, case):
  out = inputs['dir'] / 'out'
  kwargs = dict(coverage=[inputs['bw']], seq_length=512, pool_width=16,
                valid_chroms=['chr2'], test_chroms=['chr3'], processes=1,
                progress=False)
  message = _break(case, inputs, kwargs)
  with pytest.raises(UserError, match=message) as raised:
    sequences.convert_sequences(inputs['fasta'], output_dir=str(out), **kwargs)
  assert '\n' not in str(raised.value)
  assert not out.exists()


def test_fasta_index_is_written_and_gzip_unpacked(tmp_path):
  fasta, dna = gh.write_genome(tmp_path)
  genome = fasta_index.open_genome(fasta, str(tmp_path))
  assert os.path.exists(fasta + '.fai') and genome.index == fasta + '.fai'
  assert genome.lengths == gh.LENGTHS
  reader = genome.reader()
  np.testing.assert_array_equal(reader.codes('chr2', -3, 5),
                                gh.window_bases(dna, 'chr2', -3, 5))
  np.testing.assert_array_equal(reader.codes('chr3', 2490, 2510),
                                gh.window_bases(dna, 'chr3', 2490, 2510))
  reader.close()
  # A plain gzip FASTA is unpacked into the work folder and indexed there.
  with open(fasta, 'rb') as src, gzip.open(tmp_path / 'g.fa.gz', 'wb') as dst:
    shutil.copyfileobj(src, dst)
  work = tmp_path / 'work'
  work.mkdir()
  unpacked = fasta_index.open_genome(str(tmp_path / 'g.fa.gz'), str(work))
  assert unpacked.path == str(work / 'g.fa') and unpacked.lengths == gh.LENGTHS


def test_contigs_split_at_long_runs_of_n_across_chunks(tmp_path, monkeypatch):
  fasta, _ = gh.write_genome(tmp_path)
  genome = fasta_index.open_genome(fasta, str(tmp_path))
  want = [('chr1', 0, 2000), ('chr1', 2300, 6000), ('chr2', 0, 3000),
          ('chr3', 0, 2500)]
  assert fasta_index.find_contigs(genome, 100) == want
  # Chunks that end inside a run of N, and a gap_min that splits the short run too.
  monkeypatch.setattr(fasta_index, '_CHUNK', 7)
  assert fasta_index.find_contigs(genome, 100) == want
  assert fasta_index.find_contigs(genome, 20) == [
      ('chr1', 0, 2000), ('chr1', 2300, 4000), ('chr1', 4020, 6000)] + want[2:]


def test_interval_store_matches_numpy_sorted_or_not(tmp_path):
  rng = np.random.RandomState(0)
  truth = np.full(50000, np.nan, np.float32)
  rows, pos = [], 0
  while pos < 49000:
    run = int(rng.randint(1, 30))
    if rng.rand() < 0.6:
      rows.append(('c', pos, pos + run, np.float32(rng.rand())))
      truth[pos:pos + run] = rows[-1][3]
    pos += run
  for name, order in (('sorted', range(len(rows))),
                      ('shuffled', rng.permutation(len(rows)))):
    builder = interval_store.Builder(str(tmp_path), name, 'x')
    for i in order:
      builder.add(*rows[i], line=int(i) + 1)
    store = builder.finish()
    for lo, hi in ((0, 100), (1234, 40000), (48990, 50100), (-5, 3)):
      np.testing.assert_array_equal(store.values('c', lo, hi),
                                    gh.padded(truth, lo, hi))
  masks = interval_store.Builder(str(tmp_path), 'mask', 'x', merge=True)
  for start, end in ((50, 60), (10, 20), (15, 30), (30, 40)):
    masks.add('c', start, end, 1.0, 1)
  store = masks.finish()
  assert store.overlaps('c', 0, 100) == [(10, 40), (50, 60)]
  assert store.covered('c', 35, 55).tolist() == [True] * 5 + [False] * 10 + [True] * 5


def test_record_file_writes_what_tensorflow_writes(tmp_path):
  rng = np.random.RandomState(1)
  records = []
  # The last spans many deflate blocks (zlib-ng must split them where zlib does).
  for n in (1000, 3, 70000, 262144):
    codes = rng.randint(0, 5, n).astype(np.uint8)
    targets = rng.gamma(1, 2, (n // 10 + 1, 3)).astype(np.float16)
    mine = record_file.example_bytes([('target', targets.tobytes()),
                                      ('sequence', codes.tobytes())])
    assert mine == sequence_format.make_example(codes, targets).SerializeToString(
        deterministic=True)
    records.append(mine)
  with record_file.RecordFile(str(tmp_path / 'mine.tfr')) as out:
    for record in records:
      out.write(record)
  options = tf.io.TFRecordOptions(**record_file.TF_OPTIONS)
  with tf.io.TFRecordWriter(str(tmp_path / 'tf.tfr'), options) as out:
    for record in records:
      out.write(record)
  assert (tmp_path / 'mine.tfr').read_bytes() == (tmp_path / 'tf.tfr').read_bytes()
  read = [r.numpy() for r in tf.data.TFRecordDataset(str(tmp_path / 'mine.tfr'),
                                                     compression_type='ZLIB')]
  assert read == records
