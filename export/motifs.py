r"""What motifs did the model learn? TF-MoDISco on attributions, matched by Tomtom.

  python -m export.attribution --method=deepshap --params_file=params.json \
      --checkpoint=model_best.h5 --fasta=genome.fa --bed=peaks.bed --output_dir=attr/
  python -m export.motifs --attributions=attr/ --output_dir=motifs/ \
      [--motif_db=JASPAR2024_CORE_vertebrates.meme]

--attributions is export.attribution's --output_dir (ohe.npz, hypothetical.npz).
TF-MoDISco (modisco-lite) finds the patterns, saved as modisco_results.h5; each is
matched by Tomtom (memelite) against --motif_db, a MEME file, or by default JASPAR
2024's CORE vertebrate motifs, which the pyjaspar package ships (no network). The
report: report.html and report.png (each pattern's logo, seqlet count and best three
matches), motifs.tsv and logos/ (estimator_pipeline/analysis/motifs_report.py). Bad
input, or TF-MoDISco finding no seqlets, prints one line and exits with 2, writing
nothing.
"""

import estimator_pipeline  # noqa: F401  (applies the TF 2.15 compatibility fixes)
from estimator_pipeline.core import console

console.quiet_imports()

# pylint: disable=g-import-not-at-top,wrong-import-position
import os
import shutil
import tempfile

from absl import app
from absl import flags as absl_flags

import flags
from estimator_pipeline.analysis import motifs
from estimator_pipeline.analysis import motifs_report
from estimator_pipeline.core.errors import UserError
from estimator_pipeline.core.errors import run_main
from flags import common

for _name, _help in (
    ('attributions', 'The --output_dir of export.attribution: ohe.npz and '
     'hypothetical.npz, N x 4 x L.'),
    ('output_dir', 'Folder to write modisco_results.h5, motifs.tsv, report.html, '
     'report.png and logos/ into (created if needed).'),
    ('motif_db', 'A MEME motif file to match the patterns against; empty uses JASPAR '
     '2024 CORE vertebrates, shipped with the pyjaspar package.')):
  common.define_own(absl_flags.DEFINE_string, _name, '', _help)
for _name, _default, _help in (
    ('max_seqlets', 2000, 'Most seqlets per sign TF-MoDISco clusters.'),
    ('window', 21, 'Width of the sliding window TF-MoDISco finds seqlets with.'),
    ('leiden_runs', 8, 'Leiden clusterings TF-MoDISco runs per round (its own '
     'default is 50: more is steadier, and slower).')):
  common.define_own(absl_flags.DEFINE_integer, _name, _default, _help)


def main(argv):
  f = common.command_flags(argv)
  if not f.attributions or not f.output_dir:
    raise UserError('--attributions and --output_dir are required, e.g. '
                    '--attributions=attr/ --output_dir=motifs/')
  for name in ('max_seqlets', 'window', 'leiden_runs'):
    if f[name].value <= 0:
      raise UserError('--%s=%d must be positive.' % (name, f[name].value))
  onehot, hyp = motifs.load_attributions(f.attributions)
  db = motifs.read_motif_db(f.motif_db)
  db_name = os.path.basename(f.motif_db) if f.motif_db else motifs.DEFAULT_DB
  pos, neg = motifs.run_modisco(onehot, hyp, f.max_seqlets, f.window, f.leiden_runs)
  found = ([motifs.trimmed(p, 'pos_patterns.pattern_%d' % i)
            for i, p in enumerate(pos)] +
           [motifs.trimmed(p, 'neg_patterns.pattern_%d' % i)
            for i, p in enumerate(neg)])
  motifs.match(found, db)
  scratch = tempfile.mkdtemp(prefix='modisco-')
  try:
    from modiscolite import io as modisco_io
    results = os.path.join(scratch, motifs_report.RESULTS_FILE)
    modisco_io.save_hdf5(results, pos, neg, f.window)
    motifs_report.write_report(f.output_dir, found, results, db_name, len(onehot))
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  for m in found:
    console.line('%s: %d seqlets, %s; best match %s' % (
        m.name, m.seqlets, motifs_report.consensus(m.ppm),
        motifs_report.match_text(m.matches[0]) if m.matches else "none"))
  console.line('wrote %d motifs to %s' % (len(found), f.output_dir))


if __name__ == '__main__':
  app.run(lambda argv: run_main(main, argv), flags_parser=flags.parse_or_exit)
