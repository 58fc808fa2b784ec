"""Tests of the archive checks (issue 11 §3): zip bombs, lying sizes, a full
disk, duplicate and clashing member names.

Every archive is built here, in memory, in milliseconds: the bomb deflates a
stream of zeros (with the caps made smaller), and the default caps are
tried on sizes written into the zip's headers, never extracted.
"""
import collections
import io
import os
import struct
import warnings
import zipfile

import pytest

from contract import settings as config
from runners import kaggle_archive
from runners import kaggle_data

_ZIP_NAME = config.KAGGLE_DATASET.split('/')[-1] + '.zip'
_NORMAL = 'chest_xray/train/NORMAL/IM-0001-0001.jpeg'
_VIRUS = 'chest_xray/test/PNEUMONIA/person1_virus_6.jpeg'
_GOOD = {_NORMAL: b'\xff\xd8\xff\xe0normal\xff\xd9',
         _VIRUS: b'\xff\xd8\xff\xe0virus\xff\xd9'}
_Usage = collections.namedtuple('_Usage', 'total used free')


class _Api:
  """Writes `payload` where the kaggle API would write the download."""

  def __init__(self, payload: bytes):
    self.payload = payload

  def dataset_download_files(self, dataset, path=None, **_):
    del dataset
    with open(os.path.join(path, _ZIP_NAME), 'wb') as f:
      f.write(self.payload)


def _zip(members, zeros=()) -> bytes:
  """A deflated zip of (name, bytes) members, then (name, n) members of n
  zero bytes streamed in (a bomb costs its compressed size only)."""
  buf = io.BytesIO()
  with warnings.catch_warnings(), zipfile.ZipFile(
      buf, 'w', zipfile.ZIP_DEFLATED) as archive:
    warnings.simplefilter('ignore', UserWarning)  # duplicate names, on purpose
    for name, data in members:
      archive.writestr(name, data)
    for name, size in zeros:
      with archive.open(name, 'w') as f:
        chunk = bytes(1 << 20)
        for start in range(0, size, len(chunk)):
          f.write(chunk[:size - start])
  return buf.getvalue()


def _declare(payload: bytes, name: str, size: int) -> bytes:
  """The zip with member `name` declaring `size` uncompressed bytes (its
  local header and central directory entry both say so)."""
  data = bytearray(payload)
  encoded = name.encode()
  for signature, size_at, name_at in ((b'PK\x03\x04', 22, 30),
                                      (b'PK\x01\x02', 24, 46)):
    at = data.find(signature)
    while data[at + name_at:at + name_at + len(encoded)] != encoded:
      at = data.find(signature, at + 1)
      assert at >= 0, name
    data[at + size_at:at + size_at + 4] = struct.pack('<I', size)
  return bytes(data)


def _ensure(data_dir, payload, log=None):
  return kaggle_data.ensure_dataset(str(data_dir), api_factory=lambda: _Api(
      payload), log=log or (lambda _: None))


@pytest.fixture()
def no_extraction(monkeypatch):
  """Fails the test if any member is extracted."""
  def copy(*_):
    raise AssertionError('a member was extracted')
  monkeypatch.setattr(kaggle_archive.shutil, 'copyfileobj', copy)


def _assert_removed(tmp_path, data_dir):
  """Nothing extracted, the download and the staging folder removed, and
  nothing written beside DATA_DIR."""
  assert os.listdir(tmp_path) == ['data']
  assert os.listdir(data_dir) == []


# --- sizes ------------------------------------------------------------------

def test_a_zip_bomb_is_refused_before_extracting(tmp_path, monkeypatch,
                                                 no_extraction):
  monkeypatch.setattr(kaggle_archive, 'MAX_MEMBER_BYTES', 2**20)
  bomb = 'chest_xray/train/NORMAL/IM-9999-0001.jpeg'
  payload = _zip(_GOOD.items(), zeros=[(bomb, 8 * 2**20)])
  assert len(payload) < 20_000  # 8 MiB declared
  data_dir = tmp_path / 'data'

  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert (f"{bomb!r}: declares 8.0 MiB uncompressed, above the 1.0 MiB cap "
          'for one member') in message
  assert f'{bomb!r}: compression ratio ' in message
  assert 'above the 100:1 cap' in message
  assert _NORMAL not in message and _VIRUS not in message
  assert 'Nothing was extracted and the download has been deleted' in message
  _assert_removed(tmp_path, data_dir)


def test_default_caps_refuse_a_declared_2_3_gb_member(tmp_path, monkeypatch,
                                                      no_extraction):
  """The issue's case: 2.2 MB of zip declaring a 2.3 GB member."""
  bomb = 'chest_xray/train/NORMAL/big.jpeg'
  payload = _declare(_zip(list(_GOOD.items()) + [(bomb, bytes(2_300_000))]),
                     bomb, 2_300_000_000)
  monkeypatch.setattr(kaggle_archive.shutil, 'disk_usage', None)  # not reached
  data_dir = tmp_path / 'data'

  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert (f'{bomb!r}: declares 2.1 GiB uncompressed, above the 64.0 MiB cap'
          in message)
  assert f'{bomb!r}: compression ratio ' in message
  _assert_removed(tmp_path, data_dir)


def _info(name, size, packed):
  info = zipfile.ZipInfo(name)
  info.file_size, info.compress_size = size, packed
  return info


def test_default_caps_fit_the_real_archive_and_stop_bombs():
  # The real archive's shape: ~5900 JPEGs up to 2.3 MB, ~1.1:1, ~1.2 GB.
  real = [_info(f'chest_xray/train/NORMAL/{i}.jpeg', 200_000 + i * 390,
                int((200_000 + i * 390) / 1.1)) for i in range(5900)]
  assert 1.1e9 < sum(i.file_size for i in real) < 8 * 2**30
  assert max(i.file_size for i in real) > 2.3e6
  assert kaggle_archive.size_problems(real) == []
  cap = kaggle_archive.MAX_MEMBER_BYTES
  assert kaggle_archive.size_problems([_info('edge', cap, cap)]) == []
  assert kaggle_archive.size_problems([_info('text', 900_000, 90)]) == []
  assert [name for name, _ in kaggle_archive.size_problems([
      _info('over', cap + 1, cap), _info('ratio', 2**21, 2**21 // 101),
      _info('stored-as-nothing', 2**21, 0)])] == [
          'over', 'ratio', 'stored-as-nothing']
  many = [_info(f'{i}', cap, cap) for i in range(129)]  # 8 GiB + 64 MiB
  assert kaggle_archive.size_problems(many) == [
      ('(all members)', 'declare 8.1 GiB in all, above the 8.0 GiB cap')]


def test_a_member_longer_than_it_declares_is_refused(tmp_path):
  liar = 'chest_xray/train/NORMAL/IM-0002-0001.jpeg'
  payload = _declare(_zip(list(_GOOD.items()) + [(liar, os.urandom(300_000))]),
                     liar, 1000)
  data_dir = tmp_path / 'data'
  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)
  assert repr(liar) in str(raised.value)
  _assert_removed(tmp_path, data_dir)


def test_the_bounded_writer_refuses_bytes_beyond_the_declared_size():
  out = io.BytesIO()
  bounded = kaggle_archive._Bounded(out, _info('a.jpeg', 5, 5))  # pylint: disable=protected-access
  bounded.write(b'abc')
  with pytest.raises(kaggle_archive.BadArchiveError,
                     match="'a.jpeg' yields more than the 5 bytes"):
    bounded.write(b'def')
  assert out.getvalue() == b'abc'


def test_no_room_on_the_disk_is_named_and_the_download_kept(tmp_path,
                                                            monkeypatch):
  data_dir = tmp_path / 'data'
  payload = _zip(_GOOD.items())
  real_usage = kaggle_archive.shutil.disk_usage
  monkeypatch.setattr(kaggle_archive.shutil, 'disk_usage',
                      lambda path: _Usage(10**9, 10**9 - 1000, 1000))

  with pytest.raises(kaggle_archive.NoRoomError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert 'needs 8.0 KiB for its 2 members, but only 1000 bytes are free' in (
      message)
  assert str(data_dir) in message and 'download is kept' in message
  assert os.listdir(data_dir) == [kaggle_data.DOWNLOAD_DIR_NAME]
  assert os.listdir(data_dir / kaggle_data.DOWNLOAD_DIR_NAME) == [_ZIP_NAME]
  monkeypatch.setattr(kaggle_archive.shutil, 'disk_usage', real_usage)
  _ensure(data_dir, payload)  # room again: the kept download is used
  assert (data_dir / _NORMAL).read_bytes() == _GOOD[_NORMAL]


# --- names ------------------------------------------------------------------

def test_duplicate_members_are_named_and_the_download_removed(tmp_path,
                                                              no_extraction):
  twice = 'chest_xray/train/NORMAL/IM-0003-0001.jpeg'
  payload = _zip(list(_GOOD.items()) + [
      (twice, b'first'), (twice, b'second'), ('./' + _VIRUS, b'other')])
  data_dir = tmp_path / 'data'

  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert (f'{twice!r}: written by 2 members: each would overwrite the one '
          'before') in message
  assert f"{_VIRUS!r}: written by 2 members ('./{_VIRUS}')" in message
  assert repr(_NORMAL) not in message
  assert 'disk space' not in message
  _assert_removed(tmp_path, data_dir)


def test_a_file_where_a_folder_must_be_is_named(tmp_path, no_extraction):
  clash = 'chest_xray/train/NORMAL'
  payload = _zip([(clash, b'a file'), (_NORMAL, _GOOD[_NORMAL]),
                  (_VIRUS, _GOOD[_VIRUS])])
  data_dir = tmp_path / 'data'

  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert (f'{clash!r}: is a file, but {_NORMAL!r} needs it to be a folder'
          in message)
  assert 'disk space' not in message
  _assert_removed(tmp_path, data_dir)


def test_a_clash_met_while_extracting_is_named_not_blamed_on_the_disk(
    tmp_path, monkeypatch):
  # As if the checks let one through (e.g. names differing only in case on
  # a case-insensitive disk): the extraction names the member.
  monkeypatch.setattr(kaggle_archive, 'name_problems', lambda infos: [])
  clash = 'chest_xray/train/NORMAL'
  payload = _zip([(_VIRUS, _GOOD[_VIRUS]), (clash, b'a file'),
                  (_NORMAL, _GOOD[_NORMAL])])
  data_dir = tmp_path / 'data'

  with pytest.raises(kaggle_archive.BadArchiveError) as raised:
    _ensure(data_dir, payload)

  message = str(raised.value)
  assert f'member {_NORMAL!r} clashes with an earlier one' in message
  assert 'disk space' not in message and 'has been deleted' in message
  _assert_removed(tmp_path, data_dir)
