r"""The one GTF reader: genes with their chromosome, strand, span and exons.

  python -c "
  from estimator_pipeline.analysis import gtf
  genes = gtf.read_genes('genes.gtf.gz')
  print(genes['GATA1'].chrom, genes['GATA1'].strand, genes['GATA1'].exons[:3])"

Plain or gzipped GTF (GENCODE's, Ensembl's). Only `exon` lines are read, as
borzoi_satg_gene.py does: a gene is the union of its exons, keyed by gene_id and by
gene_name (either finds it), coordinates 0-based half-open. Attributions over a gene's
exon bins (export.attribution --gtf --gene) and gene-level variant scores read genes
here.
"""

import dataclasses
import re
from typing import Dict, List, Tuple

from estimator_pipeline.core.errors import UserError
from estimator_pipeline.records import genome_files

_ATTRIBUTE = re.compile(r'\s*([^\s;]+)\s+"?([^";]*)"?\s*;?')


@dataclasses.dataclass
class Gene:
  """One gene of a GTF: its exons merged and sorted, 0-based half-open."""
  gene_id: str
  name: str
  chrom: str
  strand: str
  exons: List[Tuple[int, int]] = dataclasses.field(default_factory=list)

  @property
  def start(self):
    return self.exons[0][0]

  @property
  def end(self):
    return max(end for _, end in self.exons)


def attributes(text):
  """A GTF attribute column -> {key: value} (the first value of a repeated key)."""
  found = {}
  for key, value in _ATTRIBUTE.findall(text):
    found.setdefault(key, value)
  return found


def read_genes(path, flag='gtf'):
  """{gene_id and gene_name: Gene} of the GTF's exon lines.

  Raises UserError naming the line of a malformed exon line, or when the file has
  no exon line at all.
  """
  genes: Dict[str, Gene] = {}
  with genome_files.open_lines(path, flag) as lines:
    for number, raw in enumerate(lines, 1):
      line = raw.decode('utf-8', 'replace') if isinstance(raw, bytes) else raw
      if not line.strip() or line.startswith('#'):
        continue
      fields = line.rstrip('\n').split('\t')
      if len(fields) < 9:
        raise UserError('--%s=%s line %d: a GTF line has 9 tab-separated columns, '
                        'this one %d.' % (flag, path, number, len(fields)))
      if fields[2] != 'exon':
        continue
      try:
        start, end = int(fields[3]) - 1, int(fields[4])
      except ValueError:
        raise UserError('--%s=%s line %d: start and end must be integers, not %r '
                        'and %r.' % (flag, path, number, fields[3], fields[4])) from None
      attrs = attributes(fields[8])
      gene_id = attrs.get('gene_id')
      if not gene_id:
        raise UserError('--%s=%s line %d: the exon has no gene_id attribute.'
                        % (flag, path, number))
      gene = genes.get(gene_id)
      if gene is None:
        gene = genes[gene_id] = Gene(gene_id, attrs.get('gene_name', gene_id),
                                     fields[0], fields[6])
      gene.exons.append((start, end))
  if not genes:
    raise UserError('--%s=%s holds no exon line: pass a GTF of genes and their exons '
                    '(GENCODE\'s, for example).' % (flag, path))
  by_name = {}
  for gene in genes.values():
    gene.exons = _merge(gene.exons)
    by_name.setdefault(gene.name, gene)
  return {**by_name, **genes}


def _merge(exons):
  """Sorted exons with overlapping ones merged (a gene's transcripts share exons)."""
  merged = []
  for start, end in sorted(exons):
    if merged and start <= merged[-1][1]:
      merged[-1] = (merged[-1][0], max(merged[-1][1], end))
    else:
      merged.append((start, end))
  return merged


def find(genes, name, path):
  """The Gene named name (gene_id or gene_name); UserError naming the GTF if none."""
  gene = genes.get(name)
  if gene is None:
    close = sorted(g for g in genes if g.lower().startswith(name[:3].lower()))[:5]
    raise UserError('--gene=%s is not in --gtf=%s%s.' % (
        name, path, ' (close: %s)' % ', '.join(close) if close else ''))
  return gene
