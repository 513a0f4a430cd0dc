r"""The motif report a person reads: each pattern's logo, seqlets and best matches.

  python -m export.motifs --attributions=attr/ --output_dir=motifs/

motifs/ gets modisco_results.h5 (modisco-lite's file), motifs.tsv (one line per
pattern: name, seqlets, width, consensus, the best three matches with Tomtom p and q),
report.html (a table of the same with each pattern's contribution-weight logo,
logos/<pattern>.png) and report.png (the same table as one picture). Everything is
written in a scratch folder and moved in when complete.
"""

import html
import os
import shutil
import tempfile

import numpy as np

from estimator_pipeline.core import files
from estimator_pipeline.core import plots as core_plots

# After core.plots, which picks matplotlib's file-only Agg backend first.
import matplotlib.pyplot as plt  # pylint: disable=g-bad-import-order,wrong-import-position

RESULTS_FILE = 'modisco_results.h5'
TABLE_FILE = 'motifs.tsv'


def consensus(ppm):
  return ''.join('ACGT'[i] for i in np.argmax(ppm, axis=1))


def _logo(ax, cwm, title):
  import logomaker  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  logomaker.Logo(pd.DataFrame(np.asarray(cwm, np.float64), columns=list('ACGT')),
                 ax=ax, color_scheme='classic')
  ax.axhline(0, color='gray', linewidth=0.5)
  ax.set_title(title, fontsize=9, loc='left')
  ax.set_xticks([])


def write_report(output_dir, motifs, results_path, db_name, count):
  """Writes the report files for motifs (analysis/motifs.Motif) into output_dir."""
  scratch = tempfile.mkdtemp(prefix='motifs-')
  try:
    os.makedirs(os.path.join(scratch, 'logos'))
    logos = []
    for motif in motifs:
      figure, ax = plt.subplots(figsize=(max(3.0, 0.35 * len(motif.cwm) + 1), 1.6))
      _logo(ax, motif.cwm, motif.name)
      name = os.path.join('logos', motif.name.replace('.', '_') + '.png')
      core_plots.save_png(figure, os.path.join(scratch, name))
      logos.append(name)
    _write_table(os.path.join(scratch, TABLE_FILE), motifs)
    _write_html(os.path.join(scratch, 'report.html'), motifs, logos, db_name, count)
    _write_png(os.path.join(scratch, 'report.png'), motifs, db_name, count)
    files.make_output_dir(output_dir)
    os.makedirs(os.path.join(output_dir, 'logos'), exist_ok=True)
    for name in [RESULTS_FILE, TABLE_FILE, 'report.html', 'report.png'] + logos:
      source = results_path if name == RESULTS_FILE else os.path.join(scratch, name)
      with files.atomic_path(os.path.join(output_dir, name)) as tmp:
        shutil.copyfile(source, tmp)
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def match_text(match):
  return '%s (p=%.2g, q=%.2g)' % match


def _write_table(path, motifs):
  with open(path, 'w') as f:
    f.write('pattern\tseqlets\twidth\tconsensus\tmatch1\tp1\tq1\tmatch2\tp2\tq2\t'
            'match3\tp3\tq3\n')
    for m in motifs:
      cells = [m.name, str(m.seqlets), str(len(m.ppm)), consensus(m.ppm)]
      for name, p, q in m.matches:
        cells += [name, '%.3g' % p, '%.3g' % q]
      f.write('\t'.join(cells) + '\n')


def _write_html(path, motifs, logos, db_name, count):
  rows = []
  for m, logo in zip(motifs, logos):
    matches = '<br>'.join(html.escape(match_text(x)) for x in m.matches)
    rows.append('<tr><td>%s</td><td>%d</td><td><img src="%s" height="80"></td>'
                '<td>%s</td><td>%s</td></tr>' % (html.escape(m.name), m.seqlets,
                                                 logo, consensus(m.ppm), matches))
  page = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Motifs</title>'
          '<style>body{font-family:sans-serif}td{padding:4px 10px;'
          'border-bottom:1px solid #ddd;vertical-align:middle}</style></head><body>'
          '<h2>TF-MoDISco motifs of %d sequences</h2><p>Matches: Tomtom against %s '
          '(q: Benjamini-Hochberg over the database).</p><table><tr><th>pattern</th>'
          '<th>seqlets</th><th>contribution weights</th><th>consensus</th>'
          '<th>best matches</th></tr>%s</table></body></html>\n' % (
              count, html.escape(db_name), ''.join(rows)))
  with open(path, 'w') as f:
    f.write(page)


def _write_png(path, motifs, db_name, count):
  figure, axes = plt.subplots(len(motifs), 2, figsize=(11, 1.5 * len(motifs) + 0.6),
                              squeeze=False,
                              gridspec_kw={'width_ratios': [1.2, 1]})
  figure.suptitle('TF-MoDISco motifs of %d sequences; Tomtom against %s'
                  % (count, db_name), fontsize=10)
  for (left, right), m in zip(axes, motifs):
    _logo(left, m.cwm, '%s: %d seqlets' % (m.name, m.seqlets))
    right.axis('off')
    right.text(0, 0.5, '\n'.join(match_text(x) for x in m.matches), fontsize=8,
               va='center', family='monospace')
  figure.tight_layout()
  core_plots.save_png(figure, path)
