"""The shape of the tree holds: imports point down the layers, no cycles, small files.

  .venv/bin/python -m pytest -q tests/test_structure.py

Read with Python's ast, never imported. The layers, bottom up (BUILD.md,
"Architecture"): core, config, records, data, models, serving, train, analysis
under estimator_pipeline/, then the programs (train.py, export/, bench/, every __main__.py
and the `python -m` modules named in PROGRAMS). flags/ may read any layer for defaults
and choices, and only programs import it. Every import counts, a function's own
included.
"""

import ast
import os

import pytest

from conftest import REPO

LAYERS = ('core', 'config', 'records', 'data', 'models', 'serving', 'train',
          'analysis')
PROGRAM_LAYER = len(LAYERS)
# `python -m` modules inside estimator_pipeline/ that are programs, not library.
PROGRAMS = ('estimator_pipeline/demo.py', 'estimator_pipeline/demo_seq.py',
            'estimator_pipeline/launch_local.py')
CODE = ('estimator_pipeline', 'export', 'flags', 'bench', 'train.py')
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
# The domains: the modules of estimator_pipeline/ that know one record layout, by path
# under it (a prefix: a folder, a file, or the start of a file's name). Every other
# module there is the engine, which never imports a domain's modules and never asks
# for a layout by name: it reaches a domain through the registries (record formats,
# models, serving inputs, tasks) and what they hand out (the task of a layout, a
# ModelSpec). A domain's modules may import the engine and their own domain.
DOMAINS = {
    'image': ('records/image_format.py', 'records/image_files.py', 'records/images.py',
              'data/image_ops.py', 'data/image_parse.py', 'models/image/',
              'serving/image.py', 'train/tasks/image.py',
              'analysis/image_predictions.py', 'analysis/rest_client.py'),
    'sequence': ('records/sequence_format.py', 'records/sequence_output.py',
                 'records/sequences.py', 'records/dna.py', 'records/genome_',
                 'records/fasta_index.py', 'records/tracks.py',
                 'records/targets_table.py', 'records/vcf.py',
                 'records/synthetic_genome.py', 'records/interval_store.py',
                 'config/params.py', 'config/params_blocks.py',
                 'data/sequence_ops.py', 'data/sequence_parse.py', 'models/seqnn/',
                 'serving/sequence.py', 'train/tasks/sequence.py',
                 'analysis/attribution', 'analysis/gtf.py', 'analysis/motifs',
                 'analysis/readout.py',
                 'analysis/model_source.py', 'analysis/mutagenesis',
                 'analysis/plots.py', 'analysis/regions.py', 'analysis/saliency.py',
                 'analysis/sequence_evaluation.py', 'analysis/sequence_model.py',
                 'analysis/strands.py', 'analysis/targets.py',
                 'analysis/variant', 'analysis/windows.py', 'analysis/gtf.py'),
}


def python_files(root, tops):
  found = []
  for top in tops:
    path = os.path.join(root, top)
    if path.endswith('.py'):
      found.extend([top] if os.path.isfile(path) else [])
      continue
    for folder, dirs, names in os.walk(path):
      dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '__pycache__')))
      found.extend(os.path.relpath(os.path.join(folder, n), root)
                   for n in sorted(names) if n.endswith('.py'))
  return found


def module_file(root, dotted):
  """The project file a dotted module name is, or None (third-party)."""
  base = os.path.join(root, *dotted.split('.'))
  for candidate in (base + '.py', os.path.join(base, '__init__.py')):
    if os.path.isfile(candidate):
      return os.path.relpath(candidate, root)
  return None


def imports_of(root, path):
  """[(project file, line)] that path imports, anywhere in it (functions included)."""
  tree = ast.parse(open(os.path.join(root, path)).read(), path)
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from a.b import c` imports the module a.b.c when there is one, else a.b.
      names = [node.module + '.' + alias.name if module_file(
          root, node.module + '.' + alias.name) else node.module
               for alias in node.names]
    else:
      continue
    for name in names:
      target = module_file(root, name)
      if target and target != path:
        found.append((target, node.lineno))
  return found


def layer_of(path):
  """0.. for the layers of estimator_pipeline/, PROGRAM_LAYER for programs, None for
  flags/."""
  parts = path.split(os.sep)
  if parts[0] == 'flags':
    return None
  if (parts[0] != 'estimator_pipeline' or path in PROGRAMS or
      parts[-1] == '__main__.py'):
    return PROGRAM_LAYER
  if len(parts) == 2:  # estimator_pipeline/__init__.py: applies core's compat fixes.
    return 0
  return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _name(layer):
  return LAYERS[layer] if layer < PROGRAM_LAYER else 'programs'


def wrong_imports(root, tops=CODE):
  """Every import that climbs a layer, reads flags/ from the library, or reaches a
  program from estimator_pipeline/."""
  wrong = []
  for path in python_files(root, tops):
    mine = layer_of(path)
    for target, line in imports_of(root, path):
      theirs = layer_of(target)
      if target.split(os.sep)[0] == 'flags':
        if mine not in (None, PROGRAM_LAYER):
          wrong.append('%s:%d imports %s: only programs read flags' % (path, line, target))
      elif (path.startswith('estimator_pipeline') and
            target.split(os.sep)[0] in ('export', 'bench', 'train.py')):
        wrong.append('%s:%d imports %s: estimator_pipeline/ never imports the '
                     'programs on top' % (path, line, target))
      elif mine is not None and theirs is not None and theirs > mine:
        wrong.append('%s:%d (%s) imports %s (%s), a higher layer' % (
            path, line, _name(mine), target, _name(theirs)))
  return wrong


def domain_of(path):
  """The domain a module of estimator_pipeline/ belongs to, 'engine', or None for a
  program (programs may use any domain)."""
  if layer_of(path) in (None, PROGRAM_LAYER):
    return None
  inside = path.split(os.sep, 1)[1] if os.sep in path else path
  for domain, prefixes in DOMAINS.items():
    if inside.startswith(prefixes):
      return domain
  return 'engine'


def _layout_branches(path, source):
  """Lines of `x.layout == 'name'` (or !=, in) comparisons with a domain's name."""
  found = []
  for node in ast.walk(ast.parse(source, path)):
    if not isinstance(node, ast.Compare):
      continue
    sides = [node.left] + node.comparators
    names = [s.value for s in ast.walk(node) if isinstance(s, ast.Constant)
             and s.value in DOMAINS]
    if names and any(isinstance(s, ast.Attribute) and s.attr == 'layout'
                     for s in sides):
      found.append('%s:%d asks whether the layout is %r: ask the task (or the '
                   'ModelSpec) instead' % (path, node.lineno, names[0]))
  return found


def domain_leaks(root, tops=('estimator_pipeline',)):
  """Every engine module's import of a domain's module, every import across domains,
  and every engine branch on a layout's name."""
  leaks = []
  for path in python_files(root, tops):
    mine = domain_of(path)
    if mine is None:
      continue
    for target, line in imports_of(root, path):
      theirs = domain_of(target)
      if theirs in (None, 'engine', mine):
        continue
      leaks.append('%s:%d (%s) imports %s (the %s domain): %s' % (
          path, line, mine, target, theirs,
          'reach it through the task of its layout or a registry' if mine == 'engine'
          else 'a domain uses only the engine and itself'))
    if mine == 'engine':
      leaks.extend(_layout_branches(path, open(os.path.join(root, path)).read()))
  return leaks


def import_cycles(root, tops=CODE):
  graph = {path: sorted({t for t, _ in imports_of(root, path)})
           for path in python_files(root, tops)}
  state, stack, cycles = {}, [], []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in graph.get(node, ()):
      if state.get(nxt) == 'open':
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = 'done'

  for node in sorted(graph):
    if node not in state:
      visit(node)
  return cycles


def too_big(root, tops):
  big = []
  for path in python_files(root, tops):
    source = open(os.path.join(root, path)).read()
    lines = source.count('\n')
    if lines > MAX_FILE_LINES:
      big.append('%s has %d lines (at most %d): split it' % (path, lines,
                                                              MAX_FILE_LINES))
    for node in ast.walk(ast.parse(source, path)):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        length = node.end_lineno - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
          big.append('%s:%d %s() has %d lines (at most %d): split it' % (
              path, node.lineno, node.name, length, MAX_FUNCTION_LINES))
  return big


def test_every_module_lies_in_a_layer():
  for path in python_files(REPO, ('estimator_pipeline',)):
    parts = path.split(os.sep)
    assert (len(parts) == 2 or parts[1] in LAYERS or path in PROGRAMS), (
        '%s lies in no layer: move it into one of %s' % (path, ', '.join(LAYERS)))


def test_imports_point_down():
  wrong = wrong_imports(REPO)
  assert not wrong, '\n'.join(wrong)


def test_the_task_is_the_only_door_into_a_domain():
  leaks = domain_leaks(REPO)
  assert not leaks, '\n'.join(leaks)


def test_every_domain_prefix_names_a_module():
  # A prefix left behind by a rename would let a new module slip into a domain.
  modules = python_files(REPO, ('estimator_pipeline',))
  for domain, prefixes in DOMAINS.items():
    for prefix in prefixes:
      assert any(m.startswith(os.path.join('estimator_pipeline', prefix))
                 for m in modules), '%s: %s names no module' % (domain, prefix)


def test_no_import_cycles():
  cycles = import_cycles(REPO)
  assert not cycles, 'import cycles:\n' + '\n'.join(' -> '.join(c) for c in cycles)


@pytest.mark.parametrize('tops', [CODE, ('tests',)], ids=['code', 'tests'])
def test_files_and_functions_are_small(tops):
  big = too_big(REPO, tops)
  assert not big, '\n'.join(big)


def _write(root, path, text):
  full = os.path.join(str(root), path)
  os.makedirs(os.path.dirname(full), exist_ok=True)
  with open(full, 'w') as f:
    f.write(text)


def test_the_checks_find_what_they_look_for(tmp_path):
  """A small tree with one of each fault: each check names exactly it."""
  pkg = 'estimator_pipeline'
  _write(tmp_path, pkg + '/__init__.py', '')
  _write(tmp_path, pkg + '/core/__init__.py', '')
  _write(tmp_path, pkg + '/core/a.py', 'from estimator_pipeline.train import b\n')
  _write(tmp_path, pkg + '/train/__init__.py', '')
  _write(tmp_path, pkg + '/train/b.py', 'def f():\n  from estimator_pipeline.train '
         'import c\n')
  _write(tmp_path, pkg + '/train/c.py', 'import flags.common\nimport export.x\n'
         'from estimator_pipeline.train import b\n')
  _write(tmp_path, 'flags/__init__.py', '')
  _write(tmp_path, 'flags/common.py', 'from estimator_pipeline.core import d\n')
  _write(tmp_path, 'export/__init__.py', '')
  _write(tmp_path, 'export/x.py', 'def g():\n' + '  pass\n' * 80 + '\n' * 330)
  wrong = wrong_imports(str(tmp_path), (pkg, 'flags', 'export'))
  assert len(wrong) == 3, wrong
  assert 'core/a.py:1 (core) imports %s/train/b.py (train)' % pkg in wrong[0]
  assert 'only programs read flags' in wrong[1]
  assert 'never imports the programs' in wrong[2]
  cycles = import_cycles(str(tmp_path), (pkg, 'flags', 'export'))
  assert [sorted(set(c)) for c in cycles] == [[pkg + '/train/b.py',
                                               pkg + '/train/c.py']]
  big = too_big(str(tmp_path), ('export',))
  assert len(big) == 2 and 'export/x.py has 411 lines' in big[0]
  assert 'g() has 81 lines' in big[1]


def test_the_domain_check_finds_what_it_looks_for(tmp_path):
  """An engine module importing a domain's, a domain importing another's, and an
  engine branch on a layout's name: each named; a domain's own imports pass."""
  pkg = 'estimator_pipeline'
  for path in ('__init__.py', 'data/__init__.py', 'train/__init__.py',
               'train/tasks/__init__.py', 'models/__init__.py',
               'models/seqnn/__init__.py'):
    _write(tmp_path, '%s/%s' % (pkg, path), '')
  _write(tmp_path, pkg + '/data/image_ops.py', '')
  _write(tmp_path, pkg + '/data/sequence_ops.py',
         'from estimator_pipeline.data import image_ops\n')
  _write(tmp_path, pkg + '/models/seqnn/layers.py',
         'from estimator_pipeline.data import sequence_ops\n')
  _write(tmp_path, pkg + '/train/plan.py',
         'from estimator_pipeline.data import input_fn\n'
         'def f(spec):\n  from estimator_pipeline.models.seqnn import layers\n'
         '  return spec.layout != "sequence"\n')
  _write(tmp_path, pkg + '/data/input_fn.py', '')
  leaks = domain_leaks(str(tmp_path))
  assert len(leaks) == 3, leaks
  assert 'data/sequence_ops.py:1 (sequence) imports %s/data/image_ops.py (the image ' \
         'domain)' % pkg in leaks[0]
  assert 'train/plan.py:3 (engine) imports %s/models/seqnn/layers.py' % pkg in leaks[1]
  assert "plan.py:4 asks whether the layout is 'sequence'" in leaks[2]
