"""Each command's --help opens with what it answers and lists the command's own flags,
wherever in flags/ they are defined.

  .venv/bin/python -m pytest -q tests/test_help.py
"""

import concurrent.futures

import pytest

from conftest import run_cli

# (command, flags its --help must list). The analysis commands' first line is the
# question they answer.
COMMANDS = {
    'train.py': ['--model_dir', '--train_record_path', '--learning_rate', '--gelu'],
    '-m export.variants': ['--vcf', '--fasta', '--stats', '--saved_model',
                           '--params_file', '--ensemble_rc', '--format',
                           '--indel_stitch', '--cluster_pct', '--untransform_old'],
    '-m export.gene_variants': ['--gtf', '--vcf', '--fasta', '--span', '--stats',
                                '--indel_stitch', '--cluster_pct', '--saved_model'],
    '-m export.mutagenesis': ['--bed', '--mutate_length', '--checkpoint', '--head'],
    '-m export.evaluate': ['--records', '--model_dir', '--output_dir'],
    '-m export.predict': ['--saved_model', '--bed', '--bigwig_dir'],
    '-m export.saliency': ['--saved_model', '--fasta', '--target_index',
                           '--params_file', '--checkpoint', '--head', '--gelu'],
    '-m export.attribution': ['--method', '--bed', '--gtf', '--gene', '--targets',
                              '--bins', '--transform', '--steps', '--references',
                              '--bigwig_dir', '--params_file', '--saved_model'],
    '-m export.motifs': ['--attributions', '--motif_db', '--output_dir'],
    '-m estimator_pipeline.records sequences': ['--fasta', '--targets_file',
                                                '--stride'],
}
QUESTIONS = ('export.variants', 'export.gene_variants', 'export.mutagenesis',
             'export.evaluate', 'export.predict', 'export.saliency',
             'export.attribution', 'export.motifs')


@pytest.fixture(scope='module')
def helps():
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    futures = {c: pool.submit(run_cli, c.split() + ['--help']) for c in COMMANDS}
    return {c: f.result() for c, f in futures.items()}


@pytest.mark.parametrize('command', sorted(COMMANDS))
def test_help_lists_the_commands_own_flags(helps, command):
  proc = helps[command]
  text = proc.stdout
  # absl's --help ends with status 1 after printing the usage (absl/app.py HelpFlag).
  assert proc.returncode in (0, 1) and 'Try --helpfull' in text, proc.stderr[-2000:]
  listed = {line.split(':')[0].strip().replace('[no]', '')
            for line in text.splitlines() if line.startswith('  --')}
  missing = [f for f in COMMANDS[command] if f not in listed]
  assert not missing, (missing, text[-3000:])
  first = text.strip().splitlines()[0]
  if command.split()[-1] in QUESTIONS:
    assert first.split('?')[0] and '?' in first, first
