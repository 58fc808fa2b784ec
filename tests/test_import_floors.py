"""The import floors: every repository module imports only lower floors.

Read with `ast` (imports inside functions count too), so nothing is
imported or run. The floor table below is the only copy; ARCHITECTURE.md
describes it.
"""
import ast
import pathlib
import subprocess
from typing import Dict, Iterable, List, Optional, Set, Tuple

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent

# Top-level package or script -> floor, lowest first (ARCHITECTURE.md).
#   0 ground: contract and settings; imports nothing of this repository
#   1 components and user code (components, trainer): never each other
#   2 composition: create_pipeline and compilation helpers
#   3 runner tools: CLI options, Kaggle download, KFP client
#   4 entry scripts and everything outside product code; every unit test
#     file (`*_test.py`, `test_*.py`) is here wherever it sits
FLOORS = {
    'contract': 0,
    'components': 1,
    'trainer': 1,
    'pipeline': 2,
    'runners': 3,
    'local_runner': 4,
    'kubeflow_runner': 4,
    'predict': 4,
    'setup': 4,
    'conftest': 4,
    'bench': 4,
    'testing': 4,
    'tests': 4,
}
TOP = max(FLOORS.values())
# Copied into the image, which has no testing/ (.dockerignore): like product
# code they never import it.
ENTRY_SCRIPTS = frozenset({'local_runner', 'kubeflow_runner', 'predict',
                           'setup'})
TEST_HELPERS = 'testing'


def module_name(path: str) -> str:
  """'components/x/__init__.py' -> 'components.x'; 'a/b.py' -> 'a.b'."""
  parts = list(pathlib.PurePosixPath(path).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)


def is_test_module(module: str) -> bool:
  """test_*.py, *_test.py, or anything in tests/ (which holds only tests)."""
  last = module.rsplit('.', 1)[-1]
  return (last.startswith('test_') or last.endswith('_test')
          or module.split('.')[0] == 'tests')


def floor_of(module: str) -> Optional[int]:
  """The module's floor; None when its top level is not in FLOORS."""
  last = module.rsplit('.', 1)[-1]
  if last.startswith('test_') or last.endswith('_test'):
    return TOP
  return FLOORS.get(module.split('.')[0])


def _imports(path: str, tree: ast.AST,
             modules: Set[str]) -> Iterable[Tuple[int, str]]:
  """(line, repository module) of every import in `tree`, wherever it is."""
  tops = {m.split('.')[0] for m in modules}
  own = module_name(path)
  package = own if path.endswith('__init__.py') else own.rpartition('.')[0]
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package.split('.') if package else []
        base = base[:len(base) - (node.level - 1)]
        base = '.'.join(base + ([node.module] if node.module else []))
      else:
        base = node.module
      # `from a import b`: b is the module a.b if there is one, else a name
      # inside a.
      names = [f'{base}.{alias.name}' if f'{base}.{alias.name}' in modules
               else base for alias in node.names]
    else:
      continue
    for name in names:
      if name and name.split('.')[0] in tops:
        yield node.lineno, name


def find_violations(files: Iterable[Tuple[str, str]],
                    modules: Set[str]) -> List[str]:
  """'importer -> imported (floor a -> floor b): why' for every import that
  breaks the floors. `files` are (repository path, source text)."""
  found = []
  for path, source in files:
    importer = module_name(path)
    floor = floor_of(importer)
    if floor is None:
      found.append(f'{path}: {importer.split(".")[0]} has no floor in FLOORS')
      continue
    try:
      tree = ast.parse(source, filename=path)
    except SyntaxError as e:
      found.append(f'{path}: cannot be parsed ({e})')
      continue
    for line, imported in _imports(path, tree, modules):
      target = floor_of(imported)
      top, imported_top = importer.split('.')[0], imported.split('.')[0]
      if is_test_module(imported):
        why = 'imports a test module'
      elif imported_top == TEST_HELPERS and (floor < TOP or
                                             top in ENTRY_SCRIPTS):
        why = 'code the image ships imports testing/'
      elif floor == TOP or top == imported_top:
        continue  # the top floor uses any non-test module; a package itself
      elif target is None:
        why = f'{imported_top} has no floor in FLOORS'
      elif target < floor:
        continue
      elif target == floor:
        why = 'same floor, another package'
      else:
        why = 'imports a higher floor'
      found.append(f'{path}:{line} -> {imported} '
                   f'(floor {floor} -> floor {target}): {why}')
  return found


def repository_files() -> List[str]:
  """Every .py file git knows of or would add (tracked or new, not ignored),
  so files moved but not yet committed are checked too."""
  listed = subprocess.run(
      ['git', 'ls-files', '--cached', '--others', '--exclude-standard',
       '*.py'], cwd=REPO, capture_output=True, text=True, check=True).stdout
  return sorted({p for p in listed.splitlines() if (REPO / p).is_file()})


def _read(paths: Iterable[str]) -> List[Tuple[str, str]]:
  return [(p, (REPO / p).read_text(encoding='utf-8')) for p in paths]


def test_no_module_imports_a_higher_floor():
  paths = repository_files()
  assert 'contract/settings.py' in paths and len(paths) > 50, paths
  modules = {module_name(p) for p in paths}
  violations = find_violations(_read(paths), modules)
  for violation in violations:
    print(violation)
  assert not violations, (f'{len(violations)} imports break the floors:\n'
                          + '\n'.join(violations))


# The checker itself, on synthetic sources, so the test above cannot pass
# by finding nothing.
_MODULES = {'contract', 'contract.x', 'components', 'components.x',
            'components.x.y', 'components.x.y_test', 'trainer', 'trainer.a',
            'pipeline', 'pipeline.pipeline', 'runners', 'runners.cli',
            'testing', 'testing.support', 'tests', 'tests.test_z', 'predict'}


@pytest.mark.parametrize('path, source, expected', [
    ('contract/x.py', 'from pipeline import pipeline\n',
     'contract/x.py:1 -> pipeline.pipeline (floor 0 -> floor 2)'),
    ('components/x/y.py', 'def f():\n  import trainer.a\n',
     'components/x/y.py:2 -> trainer.a (floor 1 -> floor 1)'),
    ('runners/cli.py', 'from testing import support\n',
     'runners/cli.py:1 -> testing.support (floor 3 -> floor 4)'),
    ('predict.py', 'from testing.support import REPO\n',
     'predict.py:1 -> testing.support (floor 4 -> floor 4)'),
    ('components/x/z_test.py', 'from . import y_test\n',
     'components/x/z_test.py:1 -> components.x.y_test (floor 4 -> floor 4)'),
    ('bench/b.py', 'import tests.test_z\n',
     'bench/b.py:1 -> tests.test_z (floor 4 -> floor 4)'),
])
def test_the_checker_reports_a_violation(path, source, expected):
  found = find_violations([(path, source)], _MODULES)
  assert len(found) == 1 and found[0].startswith(expected + ':'), found


@pytest.mark.parametrize('path, source', [
    ('pipeline/pipeline.py', 'from contract import x\nimport trainer.a\n'),
    ('components/x/y.py', 'from components.x import z\nfrom .. import x\n'),
    ('tests/test_z.py', 'from testing.support import REPO\nimport predict\n'),
    ('components/x/y_test.py', 'from testing import support\nimport os\n'),
])
def test_the_checker_allows_lower_floors_and_own_package(path, source):
  assert not find_violations([(path, source)], _MODULES)


def tfx_v1_imports(path: str, source: str) -> List[int]:
  """Lines of `path` that import the `tfx.v1` API."""
  lines = []
  for node in ast.walk(ast.parse(source, filename=path)):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level:
      names = [node.module or ''] + [f'{node.module}.{alias.name}'
                                     for alias in node.names]
    else:
      continue
    if any(name == 'tfx.v1' or name.startswith('tfx.v1.') for name in names):
      lines.append(node.lineno)
  return lines


def test_code_that_runs_the_pipeline_does_not_import_tfx_v1():
  """`tfx.v1` also imports TFX's Google Cloud extensions (aiplatform, ~11 s
  per process start, bench/stages): product code imports TFX's modules."""
  found = [f'{path}:{line}' for path, source in _read(repository_files())
           if not is_test_module(module_name(path))
           and floor_of(module_name(path)) is not None
           and module_name(path).split('.')[0] not in ('bench', 'testing')
           for line in tfx_v1_imports(path, source)]
  assert not found, found
  assert tfx_v1_imports('x.py', 'from tfx import v1 as tfx') == [1]
  assert tfx_v1_imports('x.py', 'import tfx.v1.dsl') == [1]
  assert tfx_v1_imports('x.py', 'from tfx.v1 import dsl') == [1]
  assert tfx_v1_imports('x.py', 'from tfx.components import Pusher') == []
