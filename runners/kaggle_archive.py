"""Checks every member of the downloaded zip, then extracts it into a folder.

The archive comes from the network, so nothing is written until every member
is known to be a plain file or folder that lands inside the target; links,
devices and paths that climb out are refused as a whole. Where the target is
(the staging folder) and when its tree moves into DATA_DIR is decided by
``runners.kaggle_data``.
"""
import os
import re
import shutil
import stat
import zipfile
from typing import Any, Callable, List, Optional

from runners import kaggle_credentials

# Archive folders that are never extracted (macOS resource forks).
_JUNK_FOLDERS = ('__MACOSX',)
_DRIVE = re.compile(r'^[A-Za-z]:')


class BadArchiveError(kaggle_credentials.DataSourceError):
  """The downloaded archive itself is unusable (it is deleted)."""


def _member_parts(name: str) -> List[str]:
  """The path components of an archive member name, without '' and '.'."""
  return [p for p in name.split('/') if p not in ('', '.')]


def _unsafe_reason(info: zipfile.ZipInfo, target: str) -> Optional[str]:
  """Why a member must not be extracted into target, or None if it is safe."""
  name = info.filename
  mode = info.external_attr >> 16
  if stat.S_ISLNK(mode):
    return 'symbolic link'
  if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
    return 'special file (device, pipe or socket)'
  if '\\' in name:
    return 'backslash in path'
  if name.startswith('/'):
    return 'absolute path'
  if _DRIVE.match(name):
    return 'drive letter'
  if '..' in name.split('/'):
    return "'..' component"
  parts = _member_parts(name)
  if not parts:
    return 'empty path'
  base = os.path.abspath(target)
  dest = os.path.normpath(os.path.join(base, *parts))
  if not dest.startswith(base + os.sep):
    return 'lands outside the target folder'
  return None


def _is_junk(name: str) -> bool:
  return any(part in _JUNK_FOLDERS for part in _member_parts(name))


def extract_safely(zip_path: str, target: str, data_dir: str,
                   log: Callable[[str], Any], progress_every: int) -> None:
  """Checks every member of zip_path, then extracts them into target.

  Args:
    zip_path: the downloaded archive.
    target: the (empty) folder to extract into.
    data_dir: named in the refusal message, as the folder the user knows.
    log: called with one line of progress at a time.
    progress_every: log progress every this many members.

  Raises:
    BadArchiveError: not a zip, corrupt, or a member that is a link or whose
      path would land outside target (then nothing is extracted).
  """
  use_existing_copy = kaggle_credentials.USE_EXISTING_COPY
  describe = kaggle_credentials.describe
  try:
    archive = zipfile.ZipFile(zip_path)
  except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
    raise BadArchiveError(
        f'The download {zip_path} is not a valid zip archive ({describe(e)}).'
        ' It has been deleted; run again to download it afresh, or '
        f'{use_existing_copy}.') from None
  with archive:
    infos = archive.infolist()
    unsafe = [(i.filename, r) for i in infos
              if (r := _unsafe_reason(i, target)) is not None]
    if unsafe:
      listing = '\n'.join(f'  {name!r}: {reason}' for name, reason in unsafe)
      raise BadArchiveError(
          f'Refusing to extract {zip_path}: {len(unsafe)} member(s) are links '
          f'or would be written outside {data_dir}:\n{listing}\n'
          'Nothing was extracted and the download has been deleted. Use a '
          f'copy of the dataset you trust instead: {use_existing_copy}.')
    members = [i for i in infos if not _is_junk(i.filename)]
    total = len(members)
    log(f'Extracting {total} archive members into {target} '
        f'({len(infos) - total} __MACOSX entries skipped).')
    try:
      for count, info in enumerate(members, 1):
        dest = os.path.join(target, *_member_parts(info.filename))
        if info.is_dir():
          os.makedirs(dest, exist_ok=True)
        else:
          os.makedirs(os.path.dirname(dest), exist_ok=True)
          with archive.open(info) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        if count % progress_every == 0 or count == total:
          log(f'Extracted {count}/{total} archive members.')
    except (zipfile.BadZipFile, EOFError, RuntimeError,
            NotImplementedError) as e:
      raise BadArchiveError(
          f'The download {zip_path} is corrupt or unsupported ({describe(e)}).'
          ' It has been deleted; run again to download it afresh, or '
          f'{use_existing_copy}.') from None
