"""Tests of the serving folder's versions: which one loads, which are broken
and why, and the highest number a new push must exceed.

Each case is built here from a tiny real SavedModel (testing/serving_folders).
"""
import pytest

from components.deployed_model import versions
from testing import serving_folders

# The reason each breakage is named with.
REASONS = {
    'no_variables': 'its variables are missing (no variables/variables.index)',
    'no_index': 'its variables are missing (no variables/variables.index)',
    'no_data': 'its variables are missing (no variables/variables.data-*',
    'truncated_data': 'does not load (',
    'garbage_graph': 'saved_model.pb does not parse as a SavedModel',
    'empty_graph': 'saved_model.pb holds no graph',
    'no_graph': 'no saved_model.pb',
    'no_signature': 'lacks the serving_examples signature',
    'a_file': 'not a folder',
}


def test_a_good_version_loads_with_both_signatures(tmp_path):
  path = serving_folders.tiny_saved_model(tmp_path / '1')
  problem, loaded = versions.load_problem(str(path))
  assert problem is None
  assert set(versions.SIGNATURES) <= set(loaded.signatures)


@pytest.mark.parametrize('how', serving_folders.BREAKAGES)
def test_each_breakage_is_named(tmp_path, how):
  path = serving_folders.break_version(tmp_path / '7', how)
  problem, loaded = versions.load_problem(str(path))
  assert loaded is None
  assert problem.startswith(REASONS[how]), problem


@pytest.mark.parametrize('how', ['no_variables', 'no_index', 'no_data',
                                 'garbage_graph', 'empty_graph', 'no_graph',
                                 'a_file'])
def test_structural_breakages_are_found_without_loading(tmp_path, how,
                                                        monkeypatch):
  path = serving_folders.break_version(tmp_path / '7', how)

  def no_load(*_):
    raise AssertionError('loaded')

  monkeypatch.setattr(versions.tf.saved_model, 'load', no_load)
  assert versions.structural_problem(str(path)) == versions.load_problem(
      str(path))[0]


def test_a_missing_variables_shard_is_named(tmp_path):
  path = serving_folders.tiny_saved_model(tmp_path / '3')
  shard = next((path / 'variables').glob('variables.data-*'))
  shard.rename(shard.with_name('variables.data-00001-of-00002'))
  assert versions.structural_problem(str(path)) == (
      '1 of its 2 variables.data shards are missing')


def test_newest_loadable_falls_back_past_every_broken_version(tmp_path):
  base = tmp_path / 'serving_model'
  base.mkdir()
  serving_folders.tiny_saved_model(base / '5')
  good = serving_folders.tiny_saved_model(base / '12')
  broken = {'13': 'no_variables', '14': 'garbage_graph', '15': 'a_file',
            '1796999990': 'no_graph'}
  for name, how in broken.items():
    serving_folders.break_version(base / name, how)
  serving_folders.tiny_saved_model(base / '.staging-abc')  # not numeric
  before = serving_folders.digests(base)

  found = versions.newest_loadable(str(base))

  assert (found.version, found.path) == ('12', str(good))
  assert found.loaded is not None
  assert [s.version for s in found.skipped] == sorted(broken, key=int,
                                                      reverse=True)
  for entry in found.skipped:
    assert entry.path == str(base / entry.version)
    assert entry.reason.startswith(REASONS[broken[entry.version]])
  assert serving_folders.digests(base) == before  # only read


def test_nothing_loadable(tmp_path):
  serving_folders.break_version(tmp_path / '3', 'no_variables')
  found = versions.newest_loadable(str(tmp_path))
  assert found.version is None and found.path is None
  assert [s.version for s in found.skipped] == ['3']
  assert versions.newest_loadable(str(tmp_path / 'missing')) == (
      versions.Found(None, None))


def test_numeric_order_and_ascii_digits_only(tmp_path):
  for name in ('9', '100', '10'):
    serving_folders.tiny_saved_model(tmp_path / name)
  for name in ('²', '١٢', '3000x', 'latest'):
    (tmp_path / name).mkdir()
  assert versions.newest_loadable(str(tmp_path)).version == '100'
  assert [name for _, name, _ in versions.numeric_entries(str(tmp_path))] == [
      '100', '10', '9']


def test_highest_number_counts_every_numeric_entry(tmp_path):
  assert versions.highest_number(str(tmp_path / 'missing')) is None
  assert versions.highest_number(str(tmp_path)) is None
  serving_folders.tiny_saved_model(tmp_path / '5')
  (tmp_path / '1796999990' / 'variables').mkdir(parents=True)
  (tmp_path / '1796999999').write_text('a file')
  (tmp_path / '.staging-99999999999').mkdir()
  assert versions.highest_number(str(tmp_path)) == 1796999999

