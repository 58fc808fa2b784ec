"""Tests of DeployedModel: it finds what TF Serving would serve and copies it.

Version folders are laid out by hand: `newest_version` only looks at names
and at saved_model.pb, and the executor copies files, whatever they hold.
"""
import hashlib
import pathlib

import pytest
from tfx.types import standard_artifacts

from components.deployed_model import executor
from contract import layout


def _version(base: pathlib.Path, name: str, model: bool = True,
             payload: str = '') -> pathlib.Path:
  """A version folder; with `model`, a saved_model.pb and a variables file."""
  folder = base / name
  (folder / 'variables').mkdir(parents=True)
  (folder / 'variables' / 'variables.index').write_text(f'index {name}')
  if model:
    (folder / 'saved_model.pb').write_text(f'graph {name} {payload}')
  return folder


def _digests(folder: pathlib.Path) -> dict:
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob('*')) if p.is_file()}


def _run(base, tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'DeployedModel' / '7')
  executor.Executor().Do({}, {executor.MODEL_KEY: [model]},
                         {executor.PUSH_DESTINATION_KEY: str(base)})
  return model


def test_newest_version_is_the_highest_numeric_with_a_saved_model(tmp_path):
  base = tmp_path / 'serving_model'
  for name in ('9', '10', '100'):
    _version(base, name)
  _version(base, '2000', model=False)  # half-written: no saved_model.pb
  _version(base, '.staging-5000')
  _version(base, 'tmp')
  _version(base, '3000x')
  (base / '4000').write_text('a file, not a folder')
  # Numeric order, not text order ('9' > '100' as text).
  assert executor.newest_version(str(base)) == ('100', str(base / '100'))


def test_newest_version_of_a_single_version(tmp_path):
  _version(tmp_path, '1')
  assert executor.newest_version(str(tmp_path)) == ('1', str(tmp_path / '1'))


@pytest.mark.parametrize('layout', ['missing', 'empty', 'no_saved_model',
                                    'only_other_names'])
def test_newest_version_none_when_nothing_is_deployed(tmp_path, layout):
  base = tmp_path / 'serving_model'
  if layout != 'missing':
    base.mkdir()
  if layout == 'no_saved_model':
    _version(base, '5', model=False)
  if layout == 'only_other_names':
    _version(base, '.staging-abc')
    _version(base, 'latest')
    (base / '6').write_text('file')
  assert executor.newest_version(str(base)) is None


def test_executor_copies_the_newest_version(tmp_path):
  base = tmp_path / 'serving_model'
  _version(base, '5', payload='old')
  newest = _version(base, '12', payload='new')
  _version(base, '13', model=False)
  before = _digests(base)

  model = _run(base, tmp_path)

  copy = pathlib.Path(model.uri) / 'Format-Serving'
  assert _digests(copy) == _digests(newest)
  assert 'new' in (copy / 'saved_model.pb').read_text()
  assert model.get_int_custom_property(layout.DEPLOYED_FOUND) == 1
  assert executor.is_found(model)
  assert model.get_string_custom_property(layout.DEPLOYED_VERSION) == '12'
  assert model.get_string_custom_property(layout.DEPLOYED_PATH) == str(newest)
  assert _digests(base) == before  # the served folder is only read


@pytest.mark.parametrize('create_base', [False, True])
def test_executor_with_nothing_deployed(tmp_path, create_base):
  base = tmp_path / 'serving_model'
  if create_base:
    _version(base, '3', model=False)
  model = _run(base, tmp_path)
  assert model.get_int_custom_property(layout.DEPLOYED_FOUND) == 0
  assert not executor.is_found(model)
  assert model.get_string_custom_property(layout.DEPLOYED_VERSION) == ''
  uri = pathlib.Path(model.uri)
  assert not (uri / 'Format-Serving').exists()
  assert not uri.exists() or not any(uri.iterdir())


def test_newest_version_ignores_non_ascii_digit_names(tmp_path):
  _version(tmp_path, '5')
  _version(tmp_path, '²')
  _version(tmp_path, '١٢')
  assert executor.newest_version(str(tmp_path)) == ('5', str(tmp_path / '5'))
