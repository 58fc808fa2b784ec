"""Tests of DeployedModel: it finds what TF Serving would serve, skipping and
naming versions that do not load, and copies it.

Version folders hold tiny real SavedModels (testing/serving_folders), some
broken on purpose; which one a copy came from shows in its `value` file.
"""
import json
import logging
import pathlib

import pytest
from tfx.types import standard_artifacts

from components.deployed_model import executor
from contract import layout
from testing import serving_folders


def _version(base: pathlib.Path, name: str, how: str = '') -> pathlib.Path:
  """A good version folder (marked with its name), or one broken as `how`."""
  if how:
    return serving_folders.break_version(base / name, how)
  folder = serving_folders.tiny_saved_model(base / name)
  (folder / 'assets.extra').mkdir()
  (folder / 'assets.extra' / 'value').write_text(name)
  return folder


def _run(base, tmp_path):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / 'DeployedModel' / '7')
  executor.Executor().Do({}, {executor.MODEL_KEY: [model]},
                         {executor.PUSH_DESTINATION_KEY: str(base)})
  return model


def test_executor_copies_the_newest_version(tmp_path):
  base = tmp_path / 'serving_model'
  for name in ('5', '9'):
    _version(base, name)
  newest = _version(base, '10')  # numeric order, not text order ('9' > '10')
  before = serving_folders.digests(base)

  model = _run(base, tmp_path)

  copy = pathlib.Path(model.uri) / 'Format-Serving'
  assert serving_folders.digests(copy) == serving_folders.digests(newest)
  assert (copy / 'assets.extra' / 'value').read_text() == '10'
  assert executor.is_found(model)
  assert model.get_string_custom_property(layout.DEPLOYED_VERSION) == '10'
  assert model.get_string_custom_property(layout.DEPLOYED_PATH) == str(newest)
  assert executor.skipped(model) == []
  assert serving_folders.digests(base) == before  # the served folder is only read


def test_a_broken_newest_version_is_skipped_and_named(tmp_path, caplog):
  """Issue 11 §2: saved_model.pb without variables used to be the baseline,
  and the Evaluator then failed on it in every later run."""
  base = tmp_path / 'serving_model'
  good = _version(base, '1796000000')
  _version(base, '1796999990', 'no_graph')  # variables/ only: a cut copy
  _version(base, '1797000000', 'no_variables')
  before = serving_folders.digests(base)

  with caplog.at_level(logging.WARNING):
    model = _run(base, tmp_path)

  assert executor.is_found(model)
  assert model.get_string_custom_property(
      layout.DEPLOYED_VERSION) == '1796000000'
  copy = pathlib.Path(model.uri) / 'Format-Serving'
  assert serving_folders.digests(copy) == serving_folders.digests(good)
  assert executor.skipped(model) == [
      {'version': '1797000000', 'path': str(base / '1797000000'),
       'reason': 'its variables are missing (no variables/variables.index)'},
      {'version': '1796999990', 'path': str(base / '1796999990'),
       'reason': 'no saved_model.pb'}]
  logged = [r.getMessage() for r in caplog.records]
  for name in ('1797000000', '1796999990'):
    assert any(str(base / name) in line and 'skipped' in line
               for line in logged), logged
  assert serving_folders.digests(base) == before  # nothing deleted or fixed
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'DeployedModel', 'serving_model']  # nothing written elsewhere


@pytest.mark.parametrize('create_base', [False, True])
def test_executor_with_nothing_deployed(tmp_path, create_base):
  base = tmp_path / 'serving_model'
  if create_base:
    base.mkdir()
    (base / '.staging-abc').mkdir()
    (base / 'latest').mkdir()
  model = _run(base, tmp_path)
  assert model.get_int_custom_property(layout.DEPLOYED_FOUND) == 0
  assert not executor.is_found(model)
  assert model.get_string_custom_property(layout.DEPLOYED_VERSION) == ''
  assert executor.skipped(model) == []
  uri = pathlib.Path(model.uri)
  assert not (uri / 'Format-Serving').exists()
  assert not uri.exists() or not any(uri.iterdir())


def test_only_broken_versions_means_nothing_deployed(tmp_path):
  base = tmp_path / 'serving_model'
  _version(base, '3', 'garbage_graph')
  _version(base, '4', 'a_file')
  model = _run(base, tmp_path)
  assert not executor.is_found(model)
  assert [(s['version'], s['reason']) for s in executor.skipped(model)] == [
      ('4', 'not a folder'),
      ('3', 'saved_model.pb does not parse as a SavedModel')]
  assert json.loads(model.get_string_custom_property(
      layout.DEPLOYED_SKIPPED))[0]['path'] == str(base / '4')
  assert not (pathlib.Path(model.uri) / 'Format-Serving').exists()
