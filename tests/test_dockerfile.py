"""Static checks of the Dockerfile against requirements.lock and our code.

No Docker engine runs in the test environment, so the image is checked as
text: the TFX base tag equals the locked tfx, every pip requirement is pinned
to the lock's version, every third-party package our code imports is either
part of TFX's own dependency set (so in the base image) or installed, and our
code lands in /pipeline, on PYTHONPATH.

`image_code_paths()` and `module_in_image()` are for other tests, e.g. to
check that every `--executor_class_path` / run_fn module a compiled pipeline
names is copied into the image.
"""
import ast
import fnmatch
import functools
import importlib.metadata
import json
import os
import pathlib
import posixpath
import re
import shlex
import sys
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

import pytest

from contract import settings as config

REPO = pathlib.Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / 'Dockerfile'
DOCKERIGNORE = REPO / '.dockerignore'
LOCK = REPO / 'requirements.lock'
IMAGE_CODE_DIR = '/pipeline'
BASE_IMAGE = 'tensorflow/tfx'

# What our code imports that TFX 1.16 (tfx[kfp] and its dependencies, all in
# the tensorflow/tfx image) does not bring; the Dockerfile installs these.
EXTRA_IMAGE_PACKAGES = ('albumentations', 'opencv-python-headless', 'kaggle',
                        'matplotlib', 'pydicom')
# Not imported by us but by pydicom, to decode compressed DICOM pixel data.
PIXEL_DATA_HANDLERS = ('pylibjpeg', 'pylibjpeg-libjpeg', 'pylibjpeg-openjpeg')
# Must stay out of the build context (and so out of the image).
MUST_IGNORE = ('.venv', 'output', 'data', '.git', '__pycache__',
               '.pytest_cache', 'testing')


class Image(NamedTuple):
  """What the Dockerfile does, as far as these tests care."""
  base: str
  copies: List[Tuple[str, str]]  # (repo path, absolute path in the image)
  pip_installs: List[Tuple[List[str], str]]  # (args after install, workdir)
  env: Dict[str, str]
  workdir: str
  instructions: List[Tuple[str, str]]  # (INSTRUCTION, arguments)


def normalize(name: str) -> str:
  """PEP 503 project name normalisation."""
  return re.sub(r'[-_.]+', '-', name).lower()


def dockerfile_instructions(path=DOCKERFILE) -> List[Tuple[str, str]]:
  """(INSTRUCTION, arguments) pairs, continuation lines joined."""
  instructions, pending = [], ''
  for line in pathlib.Path(path).read_text().splitlines():
    stripped = line.strip()
    if not pending and (not stripped or stripped.startswith('#')):
      continue
    if pending and stripped.startswith('#'):  # comment inside a continuation
      continue
    if stripped.endswith('\\'):
      pending += stripped[:-1] + ' '
      continue
    full = pending + stripped
    pending = ''
    if full.strip():
      keyword, _, args = full.strip().partition(' ')
      instructions.append((keyword.upper(), args.strip()))
  assert not pending, f'{path} ends inside a line continuation'
  return instructions


def parse_image(path=DOCKERFILE) -> Image:
  """Follows the Dockerfile's instructions (single stage) in order."""
  instructions = dockerfile_instructions(path)
  base, workdir, env, copies, pip_installs = None, '/', {}, [], []
  for keyword, args in instructions:
    if keyword == 'FROM':
      assert base is None, 'one build stage expected'
      base = args.split()[0]
    elif keyword == 'WORKDIR':
      workdir = posixpath.normpath(posixpath.join(workdir, args))
    elif keyword == 'ENV':
      if '=' in args.split()[0]:
        for item in shlex.split(args):
          key, _, value = item.partition('=')
          env[key] = value
      else:
        key, _, value = args.partition(' ')
        env[key] = value.strip()
    elif keyword in ('COPY', 'ADD'):
      copies.extend(_copy_targets(args, workdir))
    elif keyword == 'RUN':
      for command in re.split(r'&&|;|\|\|', args):
        tokens = shlex.split(command)
        for i in range(len(tokens) - 1):
          if tokens[i] in ('pip', 'pip3') or tokens[i].endswith('/pip'):
            if tokens[i + 1] == 'install':
              pip_installs.append((tokens[i + 2:], workdir))
            break
  return Image(base, copies, pip_installs, env, workdir, instructions)


def _copy_targets(args: str, workdir: str) -> List[Tuple[str, str]]:
  """(repo path, image path) of each source of a COPY from the context."""
  words = [w for w in shlex.split(args) if not w.startswith('--')] if (
      not args.startswith('[')) else json.loads(args)
  if any(w.startswith('--from') for w in shlex.split(args)):
    return []
  *sources, dest = words
  dest_abs = posixpath.normpath(posixpath.join(workdir, dest))
  targets = []
  for source in sources:
    source = posixpath.normpath(source.rstrip('/'))
    if (REPO / source).is_dir():  # a directory's contents go into dest
      targets.append((source, dest_abs))
    elif dest.endswith('/') or len(sources) > 1:
      targets.append((source, posixpath.join(dest_abs,
                                             posixpath.basename(source))))
    else:
      targets.append((source, dest_abs))
  return targets


def image_code_paths(path=DOCKERFILE) -> Set[str]:
  """Repository paths copied to the same relative place under /pipeline.

  E.g. {'components', 'pipeline', 'trainer', 'schemas', 'setup.py', ...}:
  with PYTHONPATH=/pipeline, a module `a.b` is importable in the image when
  `a` is one of these.
  """
  return {source for source, target in parse_image(path).copies
          if target == posixpath.join(IMAGE_CODE_DIR, source)}


def module_in_image(module: str, path=DOCKERFILE) -> bool:
  """Whether dotted `module` (e.g. 'trainer.run') is a file the image gets."""
  relative = module.replace('.', '/')
  candidates = [relative + '.py', relative + '/__init__.py']
  copied = image_code_paths(path)
  return any((REPO / c).is_file() and (
      c in copied or any(c.startswith(p + '/') for p in copied))
             for c in candidates)


@functools.lru_cache(maxsize=None)
def locked() -> Dict[str, Tuple[str, frozenset]]:
  """requirements.lock: normalized name -> (version, names it comes via)."""
  packages, current = {}, None
  for line in LOCK.read_text().splitlines():
    match = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)', line)
    if match:
      current = normalize(match.group(1))
      packages[current] = (match.group(2), set())
      continue
    via = re.match(r'^\s+#\s+(?:via\s+)?(\S.*)$', line)
    if current and via and via.group(1) != 'via':
      packages[current][1].add(via.group(1).strip())
  return {name: (version, frozenset(normalize(v) if not v.startswith('-r')
                                    else v for v in vias))
          for name, (version, vias) in packages.items()}


def tfx_dependency_set() -> Set[str]:
  """tfx and everything the lock installs because of it (transitively)."""
  lock = locked()
  closure, grew = {'tfx'}, True
  while grew:
    grew = False
    for name, (_, vias) in lock.items():
      if name not in closure and vias & closure:
        closure.add(name)
        grew = True
  return closure


@functools.lru_cache(maxsize=None)
def _module_owners() -> Dict[str, Set[str]]:
  """Top-level import name -> installed distributions providing it."""
  owners = {}
  for dist in importlib.metadata.distributions():
    name = normalize(dist.metadata['Name'])
    for file in dist.files or ():
      top = file.parts[0]
      if top.endswith(('.dist-info', '.egg-info', '.pth')) or top in (
          '..', '__pycache__', 'bin'):
        continue
      if len(file.parts) == 1:
        if not top.endswith(('.py', '.so')):
          continue
        top = top.split('.')[0]
      owners.setdefault(top, set()).add(name)
  return owners


def third_party_imports(path=DOCKERFILE) -> Dict[str, Set[str]]:
  """Top-level third-party modules the image's code imports -> files.

  Test modules (*_test.py, conftest.py) are skipped: they do not run in the
  image.
  """
  copied = image_code_paths(path)
  files = []
  for entry in sorted(copied):
    target = REPO / entry
    files.extend(target.rglob('*.py') if target.is_dir() else
                 [target] if entry.endswith('.py') else [])
  local = {p.split('/')[0].rsplit('.py', 1)[0] for p in copied}
  found = {}
  for file in files:
    if file.name.endswith('_test.py') or file.name == 'conftest.py':
      continue
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
      if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom) and not node.level:
        names = [node.module]
      else:
        continue
      for name in names:
        top = name.split('.')[0]
        if top not in sys.stdlib_module_names and top not in local:
          found.setdefault(top, set()).add(str(file.relative_to(REPO)))
  return found


def _pip_requirements(image: Image) -> List[str]:
  """Requirement arguments of every `pip install`, options left out."""
  takes_value = {'-c', '--constraint', '-r', '--requirement', '-i',
                 '--index-url', '--extra-index-url', '-f', '--find-links',
                 '-t', '--target', '--prefix', '--root'}
  requirements = []
  for args, _ in image.pip_installs:
    skip = False
    for arg in args:
      if skip:
        skip = False
      elif arg in takes_value:
        skip = True
      elif not arg.startswith('-'):
        requirements.append(arg)
  return requirements


def _option_values(args: List[str], *names: str) -> List[str]:
  values = []
  for i, arg in enumerate(args):
    if arg in names and i + 1 < len(args):
      values.append(args[i + 1])
    for name in names:
      if name.startswith('--') and arg.startswith(name + '='):
        values.append(arg.split('=', 1)[1])
  return values


# --- tests -------------------------------------------------------------------


@pytest.fixture(scope='module')
def image() -> Image:
  return parse_image()


def test_base_image_is_the_locked_tfx_version(image):
  name, _, tag = image.base.partition(':')
  assert name == BASE_IMAGE
  assert tag == locked()['tfx'][0] == '1.16.0'


def test_pip_installs_are_pinned_to_the_lock(image):
  lock = locked()
  requirements = _pip_requirements(image)
  assert requirements, 'the Dockerfile installs nothing with pip'
  for args, _ in image.pip_installs:
    assert '--no-cache-dir' in args, args
    assert not _option_values(args, '-r', '--requirement'), (
        'requirements files escape this check; list pins in the Dockerfile')
  for requirement in requirements:
    match = re.fullmatch(r'([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)',
                         requirement)
    assert match, f'{requirement!r} is not pinned with =='
    name, version = normalize(match.group(1)), match.group(3)
    assert name in lock, f'{name} is not in requirements.lock'
    assert version == lock[name][0], (
        f'{name}=={version} but requirements.lock has {lock[name][0]}')


def test_pip_constraints_are_the_lock(image):
  copied_to = {target: source for source, target in image.copies}
  for args, workdir in image.pip_installs:
    for value in _option_values(args, '-c', '--constraint'):
      target = posixpath.normpath(posixpath.join(workdir, value))
      assert copied_to.get(target) == 'requirements.lock', (
          f'constraint file {value} is not requirements.lock')


def test_extra_packages_are_installed_and_locked(image):
  installed = {normalize(re.split(r'[\[=]', r)[0])
               for r in _pip_requirements(image)}
  lock = locked()
  for package in EXTRA_IMAGE_PACKAGES + PIXEL_DATA_HANDLERS:
    assert package in lock, f'{package} is not in requirements.lock'
    assert package in installed, f'the Dockerfile does not install {package}'


def test_every_third_party_import_is_in_the_image(image):
  owners = _module_owners()
  provided = tfx_dependency_set()
  installed = {normalize(re.split(r'[\[=]', r)[0])
               for r in _pip_requirements(image)}
  needed = {}
  for module, files in sorted(third_party_imports().items()):
    dists = owners.get(module)
    assert dists, f'{module} (imported by {sorted(files)}) is not installed'
    assert dists & set(locked()), f'{module} ({dists}) is not locked'
    if not dists & provided:
      needed.update({dist: (module, files) for dist in dists})
  missing = {d: m for d, m in needed.items() if d not in installed}
  assert not missing, f'imported but not in the image: {missing}'
  # The explicit list is exactly what our code needs beyond TFX.
  assert set(needed) == set(EXTRA_IMAGE_PACKAGES), needed


def test_tfx_dependency_set_is_read_from_the_lock():
  provided = tfx_dependency_set()
  assert {'tensorflow', 'apache-beam', 'numpy', 'kfp', 'keras',
          'tensorflow-model-analysis', 'absl-py'} <= provided
  assert not set(EXTRA_IMAGE_PACKAGES) & provided
  assert 'pytest' not in provided and 'uv' not in provided


def test_our_code_is_copied_into_pipeline_on_the_python_path(image):
  copied = image_code_paths()
  assert {'components', 'pipeline', 'trainer', 'schemas', 'setup.py',
          'local_runner.py', 'kubeflow_runner.py', 'predict.py'} <= copied
  for source, _ in image.copies:
    assert (REPO / source).exists(), f'COPY source {source} does not exist'
  assert image.workdir == IMAGE_CODE_DIR
  assert IMAGE_CODE_DIR in image.env.get('PYTHONPATH', '').split(':')


def test_module_in_image():
  assert module_in_image('trainer.run')
  assert module_in_image('components.evaluator.executor')
  assert module_in_image('pipeline')  # a package's __init__.py
  assert not module_in_image('trainer.no_such_module')
  assert not module_in_image('tests.support')  # not copied
  assert not module_in_image('bench.ingest')


def test_files_the_code_reads_at_run_time_are_in_the_image():
  for path in (config.SCHEMA_PATH, config.SETUP_FILE):
    relative = os.path.relpath(path, config.REPO_ROOT)
    assert any(relative == p or relative.startswith(p + '/')
               for p in image_code_paths()), relative
    assert os.path.isfile(path)


def test_executor_and_run_fn_modules_are_in_the_image():
  modules = [config.TRAINER_RUN_FN.rsplit('.', 1)[0]]
  modules += [f'components.{p.parent.name}.executor'
              for p in (REPO / 'components').glob('*/executor.py')]
  assert len(modules) > 3
  for module in modules:
    assert module_in_image(module), module


def test_the_tfx_entrypoint_is_kept(image):
  keywords = [keyword for keyword, _ in image.instructions]
  assert 'ENTRYPOINT' not in keywords and 'CMD' not in keywords


def _ignored(path: str, patterns: List[str]) -> Optional[str]:
  """The .dockerignore pattern excluding `path` (or a parent), if any."""
  parts = path.split('/')
  prefixes = ['/'.join(parts[:i]) for i in range(1, len(parts) + 1)]
  for pattern in patterns:
    options = [pattern]
    if pattern.startswith('**/'):
      options.append(pattern[3:])
    for prefix in prefixes:
      if any(fnmatch.fnmatchcase(prefix, option) for option in options):
        return pattern
  return None


def test_dockerignore_keeps_junk_out_and_code_in(image):
  patterns = [line.strip().lstrip('/') for line in
              DOCKERIGNORE.read_text().splitlines()
              if line.strip() and not line.startswith('#')]
  assert not [p for p in patterns if p.startswith('!')], (
      'exceptions are not handled by this test')
  for junk in MUST_IGNORE:
    assert _ignored(junk, patterns), f'{junk} is not in .dockerignore'
  assert _ignored('trainer/__pycache__', patterns)
  for source, _ in image.copies:
    assert not _ignored(source, patterns), f'.dockerignore drops {source}'
    root = REPO / source
    for file in (root.rglob('*.py') if root.is_dir() else [root]):
      relative = str(file.relative_to(REPO))
      if '__pycache__' not in relative:
        assert not _ignored(relative, patterns), relative
