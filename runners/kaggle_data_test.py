"""Tests for runners.kaggle_data with a stand-in for the Kaggle API.

No test touches the network or the real ``kaggle`` package: an import tripwire
fails any test that imports it, and HOME and the KAGGLE_* variables point at
empty temporary folders so the user's own credentials are never read.
"""
import ast
import importlib.machinery
import inspect
import io
import os
import stat
import subprocess
import sys
import traceback
import types
import zipfile

import pytest

from contract import settings as config
from runners import kaggle_data
from runners.kaggle_data import DataSourceError

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ZIP_NAME = config.KAGGLE_DATASET.split('/')[-1] + '.zip'
_SECRET = 'SECRET-kaggle-key-0f3c9a7e51d2'

_NORMAL = 'chest_xray/train/NORMAL/IM-0001-0001.jpeg'
_VIRUS = 'chest_xray/test/PNEUMONIA/person1_virus_6.jpeg'
_MACOSX = '__MACOSX/chest_xray/train/NORMAL/._IM-0001-0001.jpeg'
_GOOD_FILES = {
    _NORMAL: b'\xff\xd8\xff\xe0normal\xff\xd9',
    _VIRUS: b'\xff\xd8\xff\xe0virus\xff\xd9',
    _MACOSX: b'\x00\x05\x16\x07appledouble',
}
_GOOD_DIRS = ('chest_xray/', 'chest_xray/train/', '__MACOSX/')


def _zip_bytes(files, dirs=(), symlinks=()):
  """A zip holding dirs, then files {name: bytes}, then (name, target) links."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w') as archive:
    for name in dirs:
      archive.writestr(name, b'')
    for name, data in files.items():
      archive.writestr(name, data)
    for name, target in symlinks:
      info = zipfile.ZipInfo(name)
      info.create_system = 3  # Unix, so the mode bits are meaningful
      info.external_attr = (stat.S_IFLNK | 0o777) << 16
      archive.writestr(info, target)
  return buf.getvalue()


def _good_zip():
  return _zip_bytes(_GOOD_FILES, dirs=_GOOD_DIRS)


class FakeKaggleApi:
  """Stand-in for ``kaggle.api``; writes a prepared zip like the real one.

  The signature is the installed kaggle's (checked by a test below), so a
  call the real API would reject fails here too.
  """

  def __init__(self, payload=b'', error=None):
    self.payload = payload
    self.error = error
    self.calls = []

  def dataset_download_files(self, dataset, path=None, force=False, quiet=True,
                             unzip=False, licenses=()):
    self.calls.append({'dataset': dataset, 'path': path, 'force': force,
                       'quiet': quiet, 'unzip': unzip, 'licenses': licenses})
    if self.error is not None:
      raise self.error
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, _ZIP_NAME), 'wb') as f:
      f.write(self.payload)


class _Factory:
  """api_factory that counts its calls."""

  def __init__(self, api):
    self.api = api
    self.calls = 0

  def __call__(self):
    self.calls += 1
    return self.api


class _ImportTripwire:
  """Meta-path finder that records and refuses any import of the real kaggle.

  It raises OSError, as the real ``import kaggle`` does without credentials.
  """

  def __init__(self):
    self.imports = []

  def find_spec(self, name, path=None, target=None):  # pylint: disable=unused-argument
    if name == 'kaggle' or name.startswith('kaggle.'):
      self.imports.append(name)
      raise OSError('tripwire: the real kaggle package was imported')
    return None


@pytest.fixture(autouse=True)
def tripwire(monkeypatch):
  wire = _ImportTripwire()
  for name in [n for n in sys.modules if n == 'kaggle' or
               n.startswith('kaggle.')]:
    monkeypatch.delitem(sys.modules, name)
  monkeypatch.setattr(sys, 'meta_path', [wire] + sys.meta_path)
  return wire


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path_factory):
  """An empty HOME and no KAGGLE_* or XDG_CONFIG_HOME variables."""
  home_dir = str(tmp_path_factory.mktemp('home'))
  for name in list(os.environ):
    if name.startswith('KAGGLE_'):
      monkeypatch.delenv(name)
  monkeypatch.delenv('XDG_CONFIG_HOME', raising=False)
  monkeypatch.setenv('HOME', home_dir)
  return home_dir


def _fake_kaggle_module(monkeypatch, api):
  """Makes ``import kaggle`` return a module whose ``api`` is the fake."""
  module = types.ModuleType('kaggle')
  module.api = api
  monkeypatch.setitem(sys.modules, 'kaggle', module)


def _files_under(root):
  return sorted(os.path.relpath(os.path.join(d, f), root)
                for d, _, files in os.walk(root) for f in files)


def _read(path):
  with open(path, 'rb') as f:
    return f.read()


# --- the fake matches the installed kaggle ------------------------------------


def test_fake_has_the_installed_kaggle_signature():
  # Located without importing kaggle (its import authenticates).
  spec = importlib.machinery.PathFinder.find_spec('kaggle')
  assert spec is not None, 'kaggle is not installed in this environment'
  source_path = os.path.join(spec.submodule_search_locations[0], 'api',
                             'kaggle_api_extended.py')
  with open(source_path, encoding='utf-8') as f:
    tree = ast.parse(f.read())
  real = [node for node in ast.walk(tree)
          if isinstance(node, ast.FunctionDef) and
          node.name == 'dataset_download_files']
  assert len(real) == 1
  real_args = [a.arg for a in real[0].args.args]
  fake_args = list(inspect.signature(
      FakeKaggleApi.dataset_download_files).parameters)
  assert fake_args == real_args


# --- has_images ---------------------------------------------------------------


@pytest.mark.parametrize('name, expected', [
    # Outside a NORMAL/PNEUMONIA folder: ingestion ignores them (issue 9).
    ('x.jpeg', False),
    ('a/b/c/d/x.jpeg', False),
    ('a/b/PNEUMONIA/c/d/x.jpeg', True),
    ('chest_xray/train/NORMAL/X.JPG', True),
    ('deep/y.Png', False),
    ('deep/normal/y.Png', True),
    ('notes.txt', False),
    ('x.jpeg.zip', False),
    ('.kaggle_staging/chest_xray/train/NORMAL/x.jpeg', False),
    ('.kaggle_download/x.jpeg', False),
    ('__MACOSX/chest_xray/x.jpeg', False),
    ('chest_xray/._x.jpeg', False),
])
def test_has_images(tmp_path, name, expected):
  path = tmp_path / 'data' / name
  path.parent.mkdir(parents=True)
  path.write_bytes(b'x')
  assert kaggle_data.has_images(str(tmp_path / 'data')) is expected


def test_has_images_missing_and_empty_folders(tmp_path):
  assert not kaggle_data.has_images(str(tmp_path / 'missing'))
  (tmp_path / 'empty' / 'chest_xray' / 'train').mkdir(parents=True)
  assert not kaggle_data.has_images(str(tmp_path / 'empty'))


def test_has_images_follows_a_symlinked_folder(tmp_path):
  (tmp_path / 'real' / 'NORMAL').mkdir(parents=True)
  (tmp_path / 'real' / 'NORMAL' / 'IM-1-1.jpeg').write_bytes(b'x')
  (tmp_path / 'data').mkdir()
  os.symlink(tmp_path / 'real', tmp_path / 'data' / 'chest_xray')
  os.symlink(tmp_path / 'data', tmp_path / 'data' / 'loop')  # no endless walk
  assert kaggle_data.has_images(str(tmp_path / 'data'))


# --- downloads ----------------------------------------------------------------


def test_download_extracts_the_tree_and_removes_the_zip(tmp_path):
  data_dir = tmp_path / 'data'
  api = FakeKaggleApi(_good_zip())
  logs = []

  result = kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: api,
                                      log=logs.append)

  assert result == str(data_dir)
  assert len(api.calls) == 1
  call = api.calls[0]
  assert call['dataset'] == config.KAGGLE_DATASET
  assert call['unzip'] is False
  assert os.path.commonpath([call['path'], str(data_dir)]) == str(data_dir)
  assert _read(data_dir / _NORMAL) == _GOOD_FILES[_NORMAL]
  assert _read(data_dir / _VIRUS) == _GOOD_FILES[_VIRUS]
  # No __MACOSX junk, no zip, no download or staging folder left.
  assert sorted(os.listdir(data_dir)) == ['chest_xray']
  assert _files_under(data_dir) == sorted(
      os.path.relpath(os.path.join(data_dir, n), data_dir)
      for n in (_NORMAL, _VIRUS))
  assert os.listdir(tmp_path) == ['data']
  assert kaggle_data.has_images(str(data_dir))
  assert any('2 images' in line for line in logs)


def test_second_call_downloads_nothing(tmp_path):
  data_dir = str(tmp_path / 'data')
  factory = _Factory(FakeKaggleApi(_good_zip()))
  kaggle_data.ensure_dataset(data_dir, api_factory=factory, log=lambda _: None)
  logs = []

  assert kaggle_data.ensure_dataset(data_dir, api_factory=factory,
                                    log=logs.append) == data_dir

  assert factory.calls == 1
  assert len(factory.api.calls) == 1
  assert len(logs) == 1
  assert 'existing copy' in logs[0] and '2' in logs[0]


def test_existing_images_are_used_without_download(tmp_path):
  data_dir = tmp_path / 'mine'
  for name in ('train/NORMAL/IM-0001-0001.jpeg', 'val/PNEUMONIA/a.PNG',
               'test/PNEUMONIA/deep/er/b.JPG'):
    (data_dir / name).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / name).write_bytes(b'x')
  before = _files_under(data_dir)
  factory = _Factory(FakeKaggleApi(_good_zip()))
  logs = []

  assert kaggle_data.ensure_dataset(str(data_dir), api_factory=factory,
                                    log=logs.append) == str(data_dir)

  assert factory.calls == 0
  assert _files_under(data_dir) == before
  assert len(logs) == 1
  assert 'existing copy' in logs[0] and '3' in logs[0]
  assert str(data_dir) in logs[0]


def test_extraction_logs_progress(tmp_path, monkeypatch):
  monkeypatch.setattr(kaggle_data, 'PROGRESS_EVERY', 2)
  files = {f'chest_xray/train/NORMAL/IM-{i:04d}-0001.jpeg': b'x'
           for i in range(5)}
  logs = []
  kaggle_data.ensure_dataset(str(tmp_path / 'data'),
                             api_factory=lambda: FakeKaggleApi(
                                 _zip_bytes(files)),
                             log=logs.append)
  progress = [line for line in logs if line.startswith('Extracted ')]
  assert progress == ['Extracted 2/5 archive members.',
                      'Extracted 4/5 archive members.',
                      'Extracted 5/5 archive members.']


def test_leftover_staging_of_a_killed_run_does_not_count(tmp_path):
  data_dir = tmp_path / 'data'
  stale = data_dir / kaggle_data.STAGING_DIR_NAME / 'chest_xray' / 'half.jpeg'
  stale.parent.mkdir(parents=True)
  stale.write_bytes(b'partial')
  assert not kaggle_data.has_images(str(data_dir))
  api = FakeKaggleApi(_good_zip())

  kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: api,
                             log=lambda _: None)

  assert len(api.calls) == 1
  assert sorted(os.listdir(data_dir)) == ['chest_xray']
  assert not (data_dir / 'chest_xray' / 'half.jpeg').exists()


@pytest.mark.parametrize('failure', [OSError(28, 'No space left on device'),
                                     KeyboardInterrupt()])
def test_interrupted_extraction_leaves_no_images(tmp_path, monkeypatch,
                                                 failure):
  data_dir = tmp_path / 'data'
  real_copy = kaggle_data.shutil.copyfileobj
  copies = []

  def copy_then_fail(src, dst, *args):
    copies.append(1)
    if len(copies) == 2:
      raise failure
    real_copy(src, dst, *args)

  monkeypatch.setattr(kaggle_data.shutil, 'copyfileobj', copy_then_fail)
  api = FakeKaggleApi(_good_zip())
  expected = (KeyboardInterrupt if isinstance(failure, KeyboardInterrupt)
              else DataSourceError)
  with pytest.raises(expected) as raised:
    kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: api,
                               log=lambda _: None)

  assert len(copies) == 2  # the first image had been extracted
  assert not kaggle_data.has_images(str(data_dir))
  assert not (data_dir / kaggle_data.STAGING_DIR_NAME).exists()
  assert not (data_dir / 'chest_xray').exists()
  if expected is DataSourceError:
    assert 'No space left on device' in str(raised.value)
    # The download is kept for the next run, which completes the job.
    assert (data_dir / kaggle_data.DOWNLOAD_DIR_NAME / _ZIP_NAME).is_file()
  monkeypatch.setattr(kaggle_data.shutil, 'copyfileobj', real_copy)
  kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: api,
                             log=lambda _: None)
  assert _read(data_dir / _VIRUS) == _GOOD_FILES[_VIRUS]
  assert sorted(os.listdir(data_dir)) == ['chest_xray']


def test_an_empty_folder_in_the_way_is_replaced(tmp_path):
  data_dir = tmp_path / 'data'
  (data_dir / 'chest_xray').mkdir(parents=True)
  kaggle_data.ensure_dataset(str(data_dir),
                             api_factory=lambda: FakeKaggleApi(_good_zip()),
                             log=lambda _: None)
  assert (data_dir / _NORMAL).is_file()


def test_a_non_empty_folder_in_the_way_is_left_alone(tmp_path):
  data_dir = tmp_path / 'data'
  (data_dir / 'chest_xray').mkdir(parents=True)
  (data_dir / 'chest_xray' / 'notes.txt').write_text('mine')
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir),
                               api_factory=lambda: FakeKaggleApi(_good_zip()),
                               log=lambda _: None)
  assert str(data_dir / 'chest_xray') in str(raised.value)
  assert 'already exist' in str(raised.value)
  assert _files_under(data_dir / 'chest_xray') == ['notes.txt']
  assert not (data_dir / kaggle_data.STAGING_DIR_NAME).exists()
  assert (data_dir / kaggle_data.DOWNLOAD_DIR_NAME / _ZIP_NAME).is_file()


def test_data_dir_that_is_a_file_is_refused(tmp_path):
  (tmp_path / 'data').write_text('not a folder')
  with pytest.raises(DataSourceError, match='not a directory'):
    kaggle_data.ensure_dataset(str(tmp_path / 'data'),
                               api_factory=lambda: FakeKaggleApi(_good_zip()))


def test_failed_download_is_a_data_source_error(tmp_path):
  data_dir = tmp_path / 'data'
  api = FakeKaggleApi(error=ConnectionError('Name or service not known'))
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: api,
                               log=lambda _: None)
  message = str(raised.value)
  assert 'ConnectionError: Name or service not known' in message
  assert 'network' in message and 'DATA_DIR' in message
  assert os.listdir(data_dir) == []  # no empty download folder left


# --- hostile and broken archives ----------------------------------------------

_HOSTILE_FILES = ('../evil.jpeg', '/abs/evil.jpeg',
                  'chest_xray/../../evil2.jpeg', '..\\evil3.jpeg',
                  'C:/evil4.jpeg', 'C:evil5.jpeg')
_HOSTILE_LINK = ('chest_xray/train/NORMAL/link.jpeg', '/etc/passwd')


def _assert_nothing_extracted(tmp_path, data_dir):
  assert not kaggle_data.has_images(str(data_dir))
  assert os.listdir(tmp_path) == ['data']
  assert os.listdir(data_dir) == []  # download and staging removed too
  assert not os.path.exists('/abs/evil.jpeg')
  found = [os.path.join(d, f) for d, _, files in os.walk(tmp_path.parent)
           for f in files if 'evil' in f]
  assert found == []


def test_hostile_members_are_all_named_and_nothing_is_extracted(tmp_path):
  data_dir = tmp_path / 'data'
  # The hostile members come after good ones: nothing may be extracted at all.
  files = dict(_GOOD_FILES)
  files.update({name: b'evil' for name in _HOSTILE_FILES})
  payload = _zip_bytes(files, dirs=_GOOD_DIRS, symlinks=[_HOSTILE_LINK])
  with zipfile.ZipFile(io.BytesIO(payload)) as archive:  # names kept verbatim
    assert set(_HOSTILE_FILES) | {_HOSTILE_LINK[0]} <= set(archive.namelist())

  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir),
                               api_factory=lambda: FakeKaggleApi(payload),
                               log=lambda _: None)

  message = str(raised.value)
  for name in _HOSTILE_FILES + (_HOSTILE_LINK[0],):
    assert repr(name) in message
  for name in _GOOD_FILES:
    assert name not in message
  _assert_nothing_extracted(tmp_path, data_dir)


@pytest.mark.parametrize('name', _HOSTILE_FILES)
def test_each_hostile_path_is_refused_alone(tmp_path, name):
  data_dir = tmp_path / 'data'
  files = dict(_GOOD_FILES)
  files[name] = b'evil'
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(
        str(data_dir), api_factory=lambda: FakeKaggleApi(_zip_bytes(files)),
        log=lambda _: None)
  assert repr(name) in str(raised.value)
  _assert_nothing_extracted(tmp_path, data_dir)


def test_a_symlink_member_is_refused_alone(tmp_path):
  data_dir = tmp_path / 'data'
  payload = _zip_bytes(_GOOD_FILES, symlinks=[_HOSTILE_LINK])
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir),
                               api_factory=lambda: FakeKaggleApi(payload),
                               log=lambda _: None)
  assert repr(_HOSTILE_LINK[0]) in str(raised.value)
  assert 'symbolic link' in str(raised.value)
  _assert_nothing_extracted(tmp_path, data_dir)


@pytest.mark.parametrize('payload', [
    b'<html>429 Too Many Requests</html>',
    b'',
    _zip_bytes(_GOOD_FILES)[:-40],  # truncated: no end of central directory
], ids=['html', 'empty', 'truncated'])
def test_not_a_zip_is_refused(tmp_path, payload):
  data_dir = tmp_path / 'data'
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir),
                               api_factory=lambda: FakeKaggleApi(payload),
                               log=lambda _: None)
  assert 'not a valid zip' in str(raised.value)
  assert 'DATA_DIR' in str(raised.value)
  _assert_nothing_extracted(tmp_path, data_dir)


def test_archive_without_images_is_refused(tmp_path):
  data_dir = tmp_path / 'data'
  payload = _zip_bytes({'chest_xray/README.txt': b'hi', _MACOSX: b'x'})
  with pytest.raises(DataSourceError, match='no image files'):
    kaggle_data.ensure_dataset(str(data_dir),
                               api_factory=lambda: FakeKaggleApi(payload),
                               log=lambda _: None)
  assert os.listdir(data_dir) == []


def test_download_that_writes_no_zip_is_reported(tmp_path):

  class SilentApi(FakeKaggleApi):

    def dataset_download_files(self, dataset, path=None, force=False,
                               quiet=True, unzip=False, licenses=()):
      self.calls.append(dataset)

  with pytest.raises(DataSourceError, match='does not exist'):
    kaggle_data.ensure_dataset(str(tmp_path / 'data'),
                               api_factory=SilentApi, log=lambda _: None)


# --- credentials --------------------------------------------------------------


def _no_credentials_cases():
  """setup(home, tmp_path, monkeypatch) -> expected kaggle.json, per layout."""

  def config_dir(home, tmp_path, monkeypatch):
    (tmp_path / 'cfg').mkdir()
    monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path / 'cfg'))
    return str(tmp_path / 'cfg' / 'kaggle.json')

  def dot_kaggle_exists(home, tmp_path, monkeypatch):
    os.mkdir(os.path.join(home, '.kaggle'))
    return os.path.join(home, '.kaggle', 'kaggle.json')

  def xdg_default(home, tmp_path, monkeypatch):
    return os.path.join(home, '.config', 'kaggle', 'kaggle.json')

  def xdg_config_home(home, tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'xdg'))
    return str(tmp_path / 'xdg' / 'kaggle' / 'kaggle.json')

  def username_only(home, tmp_path, monkeypatch):
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice')
    return os.path.join(home, '.config', 'kaggle', 'kaggle.json')

  return [config_dir, dot_kaggle_exists, xdg_default, xdg_config_home,
          username_only]


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='kaggle uses the XDG layout on Linux only')
@pytest.mark.parametrize('setup', _no_credentials_cases(),
                         ids=lambda f: f.__name__)
def test_no_credentials_fails_before_importing_kaggle(tmp_path, monkeypatch,
                                                      home, tripwire, setup):
  expected_path = setup(home, tmp_path, monkeypatch)
  data_dir = tmp_path / 'data'

  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(data_dir), log=lambda _: None)

  message = str(raised.value)
  assert tripwire.imports == []
  assert 'tripwire' not in message
  assert f'chmod 600 {expected_path}' in message
  assert 'KAGGLE_USERNAME' in message and 'KAGGLE_KEY' in message
  assert 'make run DATA_DIR=/path/to/chest_xray' in message
  assert '--data-dir' in message
  assert not data_dir.exists()  # nothing created when nothing can be fetched


@pytest.mark.parametrize('content', [
    f'{{"username": "alice", "key": "{_SECRET}"'.encode(),  # broken JSON
    b'{"username": "alice"}',
    b'["alice"]',
])
def test_unusable_kaggle_json_is_reported(tmp_path, monkeypatch, tripwire,
                                          content):
  monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path))
  (tmp_path / 'kaggle.json').write_bytes(content)
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(tmp_path / 'data'), log=lambda _: None)
  message = str(raised.value)
  assert str(tmp_path / 'kaggle.json') in message
  assert 'KAGGLE_USERNAME' in message and 'DATA_DIR' in message
  assert _SECRET not in message
  assert tripwire.imports == []


@pytest.mark.parametrize('source', ['env', 'file'])
def test_default_factory_uses_kaggle_api_when_credentials_exist(
    tmp_path, monkeypatch, source):
  if source == 'env':
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice')
    monkeypatch.setenv('KAGGLE_KEY', _SECRET)
  else:
    monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path))
    (tmp_path / 'kaggle.json').write_text(
        f'{{"username": "alice", "key": "{_SECRET}"}}')
  api = FakeKaggleApi(_good_zip())
  _fake_kaggle_module(monkeypatch, api)

  kaggle_data.ensure_dataset(str(tmp_path / 'data'), log=lambda _: None)

  assert len(api.calls) == 1
  assert (tmp_path / 'data' / _NORMAL).is_file()


def test_failed_kaggle_import_is_a_data_source_error(tmp_path, monkeypatch,
                                                     tripwire):
  monkeypatch.setenv('KAGGLE_USERNAME', 'alice')
  monkeypatch.setenv('KAGGLE_KEY', _SECRET)
  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(tmp_path / 'data'), log=lambda _: None)
  assert tripwire.imports == ['kaggle']
  assert 'OSError: tripwire' in str(raised.value)
  assert 'DATA_DIR' in str(raised.value)
  assert _SECRET not in str(raised.value)


@pytest.mark.parametrize('source', ['env', 'file'])
def test_api_key_never_leaks(tmp_path, monkeypatch, capsys, caplog, source):
  caplog.set_level('DEBUG')
  if source == 'env':
    monkeypatch.setenv('KAGGLE_USERNAME', 'alice')
    monkeypatch.setenv('KAGGLE_KEY', _SECRET)
  else:
    monkeypatch.setenv('KAGGLE_CONFIG_DIR', str(tmp_path))
    (tmp_path / 'kaggle.json').write_text(
        f'{{"username": "alice", "key": "{_SECRET}"}}')
  # A failure whose own message carries the key, as a careless HTTP error can.
  error = RuntimeError('401 Client Error: Unauthorized for url: '
                       f'https://alice:{_SECRET}@www.kaggle.com/api/v1/x')
  _fake_kaggle_module(monkeypatch, FakeKaggleApi(error=error))

  with pytest.raises(DataSourceError) as raised:
    kaggle_data.ensure_dataset(str(tmp_path / 'data'))  # default log
  exc = raised.value
  printed = ''.join(traceback.format_exception(type(exc), exc,
                                               exc.__traceback__))
  out, err = capsys.readouterr()

  assert 'RuntimeError: 401 Client Error' in str(exc)  # the cause is reported
  assert '<redacted>' in str(exc)
  for text in (str(exc), repr(exc), printed, caplog.text, out, err):
    assert _SECRET not in text
  assert caplog.records  # logging did happen and was captured


# --- CLI ----------------------------------------------------------------------


def test_cli_without_credentials_exits_2_with_the_message(tmp_path, home):
  env = {k: v for k, v in os.environ.items() if not k.startswith('KAGGLE_')}
  env.update(HOME=home, KAGGLE_CONFIG_DIR=str(tmp_path / 'cfg'),
             PYTHONPATH=_REPO_ROOT)
  (tmp_path / 'cfg').mkdir()
  result = subprocess.run(
      [sys.executable, '-m', 'runners.kaggle_data', '--data-dir',
       str(tmp_path / 'data')],
      cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
      check=False)
  assert result.returncode == 2, result.stderr
  assert f'chmod 600 {tmp_path / "cfg" / "kaggle.json"}' in result.stderr
  assert 'KAGGLE_USERNAME' in result.stderr and 'KAGGLE_KEY' in result.stderr
  assert 'make run DATA_DIR=' in result.stderr
  assert 'Traceback' not in result.stderr + result.stdout
  assert not (tmp_path / 'data').exists()


def test_cli_with_existing_images_exits_0(tmp_path):
  (tmp_path / 'NORMAL').mkdir()
  (tmp_path / 'NORMAL' / 'IM-0001-0001.jpeg').write_bytes(b'x')
  assert kaggle_data.main(['--data-dir', str(tmp_path)]) == 0
