"""The GTF reader (estimator_pipeline/analysis/gtf.py): genes from exon lines, plain or
gzipped, found by id or name; bad lines name themselves.

  .venv/bin/python -m pytest -q tests/test_gtf.py
"""

import gzip

import pytest

from estimator_pipeline.analysis import gtf
from estimator_pipeline.analysis import readout
from estimator_pipeline.core.errors import UserError

LINES = (
    '#!genome-build test\n'
    'chr1\tHAVANA\tgene\t1001\t3000\t.\t+\t.\tgene_id "ENSG1.1"; gene_name "AAA1";\n'
    'chr1\tHAVANA\texon\t1001\t1200\t.\t+\t.\tgene_id "ENSG1.1"; transcript_id "T1"; '
    'gene_name "AAA1";\n'
    'chr1\tHAVANA\texon\t1101\t1300\t.\t+\t.\tgene_id "ENSG1.1"; transcript_id "T2"; '
    'gene_name "AAA1";\n'
    'chr1\tHAVANA\texon\t2801\t3000\t.\t+\t.\tgene_id "ENSG1.1"; transcript_id "T1"; '
    'gene_name "AAA1";\n'
    'chr2\tHAVANA\texon\t501\t600\t.\t-\t.\tgene_id "ENSG2.1";\n')


@pytest.mark.parametrize('packed', [False, True], ids=['plain', 'gzipped'])
def test_genes_from_exon_lines(tmp_path, packed):
  path = tmp_path / ('genes.gtf.gz' if packed else 'genes.gtf')
  if packed:
    with gzip.open(path, 'wt') as f:
      f.write(LINES)
  else:
    path.write_text(LINES)
  genes = gtf.read_genes(str(path))
  gene = gtf.find(genes, 'AAA1', str(path))
  assert gene is genes['ENSG1.1']
  # Overlapping exons of two transcripts merge; 1-based closed -> 0-based half-open.
  assert (gene.chrom, gene.strand, gene.exons) == ('chr1', '+',
                                                   [(1000, 1300), (2800, 3000)])
  assert (gene.start, gene.end) == (1000, 3000)
  assert genes['ENSG2.1'].name == 'ENSG2.1' and genes['ENSG2.1'].strand == '-'
  # The exon bins of a 4096 bp window of 32 bins of 128 bp centred on the gene.
  assert readout.exon_bins(gene, -48, 4096, 32, 128) == [8, 9, 10, 22, 23]
  with pytest.raises(UserError, match=r'--gene=AAA2 is not in --gtf=.*close: AAA1'):
    gtf.find(genes, 'AAA2', str(path))


def test_bad_gtf_lines_name_themselves(tmp_path):
  path = tmp_path / 'bad.gtf'
  path.write_text('chr1\tx\texon\t10\n')
  with pytest.raises(UserError, match='line 1: a GTF line has 9'):
    gtf.read_genes(str(path))
  path.write_text('chr1\tx\texon\tten\t20\t.\t+\t.\tgene_id "G";\n')
  with pytest.raises(UserError, match='line 1: start and end must be integers'):
    gtf.read_genes(str(path))
  path.write_text('chr1\tx\tgene\t10\t20\t.\t+\t.\tgene_id "G";\n')
  with pytest.raises(UserError, match='holds no exon line'):
    gtf.read_genes(str(path))
