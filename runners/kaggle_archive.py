"""Checks every member of the downloaded zip, then extracts it into a folder.

The archive comes from the network, so nothing is written until every member
is known to be a plain file or folder that lands inside the target, written
by no other member, and of a sane declared size; links, devices, paths that
climb out, duplicate or clashing names and zip bombs are refused as a whole,
and the disk must have room for the declared total. While extracting, no
member may yield more bytes than it declared. Where the target is (the
staging folder) and when its tree moves into DATA_DIR is decided by
``runners.kaggle_data``.
"""
import collections
import os
import re
import shutil
import stat
import zipfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from contract import options
from runners import kaggle_credentials

# Archive folders that are never extracted (macOS resource forks).
_JUNK_FOLDERS = ('__MACOSX',)
_DRIVE = re.compile(r'^[A-Za-z]:')

# Sane bounds, on the sizes members declare. The real archive is ~1.2 GB of
# JPEGs (the largest original 2.3 MB) that deflate barely shrinks (~1.1:1).
# A member larger than ingestion reads (it rejects the file unread) is waste.
MAX_MEMBER_BYTES = options.ImageLimits().max_file_bytes
# Several times the real total, so a re-release still fits.
MAX_TOTAL_BYTES = 8 * 2**30
# Text shrinks ~10:1; deflate tops out near 1032:1, reached by runs of zeros
# (a 2.2 MB zip declaring 2.3 GB). Below RATIO_FROM_BYTES a member cannot
# fill a disk, whatever its ratio.
MAX_RATIO = 100
RATIO_FROM_BYTES = 2**20
# File system blocks each extracted file may round up to, for the free-space
# check.
_BLOCK_BYTES = 4096


class BadArchiveError(kaggle_credentials.DataSourceError):
  """The downloaded archive itself is unusable (it is deleted)."""


class NoRoomError(kaggle_credentials.DataSourceError):
  """The disk cannot hold the extracted archive (the download is kept)."""


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


def human(size: float) -> str:
  for unit, scale in (('GiB', 2**30), ('MiB', 2**20), ('KiB', 2**10)):
    if size >= scale:
      return f'{size / scale:.1f} {unit}'
  return f'{int(size)} bytes'


def name_problems(infos: Sequence[zipfile.ZipInfo]) -> List[Tuple[str, str]]:
  """(member, why) of files written twice, or where a folder must be."""
  files: Dict[tuple, List[str]] = collections.defaultdict(list)
  folders: Dict[tuple, str] = {}  # path -> the first member needing a folder
  for info in infos:
    parts = tuple(_member_parts(info.filename))
    if not info.is_dir():
      files[parts].append(info.filename)
    for depth in range(1, len(parts) + info.is_dir()):
      folders.setdefault(parts[:depth], info.filename)
  problems = []
  for parts, names in files.items():
    if len(names) > 1:
      spelled = ('' if len(set(names)) == 1 else
                 ' (' + ', '.join(map(repr, names[1:])) + ')')
      problems.append((names[0], f'written by {len(names)} members{spelled}: '
                       'each would overwrite the one before'))
    if parts in folders:
      problems.append((names[0], f'is a file, but {folders[parts]!r} needs '
                       'it to be a folder'))
  return problems


def size_problems(infos: Sequence[zipfile.ZipInfo]) -> List[Tuple[str, str]]:
  """(member, why) of declared sizes beyond the bounds above; the whole
  archive's total is named as '(all members)'."""
  problems = []
  for info in infos:
    size, packed = info.file_size, info.compress_size
    if size > MAX_MEMBER_BYTES:
      problems.append((info.filename, f'declares {human(size)} uncompressed, '
                       f'above the {human(MAX_MEMBER_BYTES)} cap for one '
                       'member'))
    if size >= RATIO_FROM_BYTES and size > MAX_RATIO * packed:
      ratio = f'{size / packed:.0f}:1' if packed else 'infinite'
      problems.append((info.filename, f'compression ratio {ratio} '
                       f'({human(size)} from {human(packed)}), above the '
                       f'{MAX_RATIO}:1 cap'))
  total = sum(info.file_size for info in infos)
  if total > MAX_TOTAL_BYTES:
    problems.append(('(all members)', f'declare {human(total)} in all, above '
                     f'the {human(MAX_TOTAL_BYTES)} cap'))
  return problems


class _Bounded:
  """A file that refuses more bytes than its member declared."""

  def __init__(self, file, info: zipfile.ZipInfo):
    self.file, self.info, self.written = file, info, 0

  def write(self, data) -> int:
    self.written += len(data)
    if self.written > self.info.file_size:
      raise BadArchiveError(
          f'member {self.info.filename!r} yields more than the '
          f'{human(self.info.file_size)} it declares')
    return self.file.write(data)


def _check_room(zip_path: str, target: str, data_dir: str,
                members: Sequence[zipfile.ZipInfo]) -> None:
  need = sum(i.file_size + _BLOCK_BYTES for i in members if not i.is_dir())
  free = shutil.disk_usage(target).free
  if need > free:
    raise NoRoomError(
        f'Extracting {zip_path} needs {human(need)} for its {len(members)} '
        f'members, but only {human(free)} are free on the disk of '
        f'{data_dir}. Nothing was extracted and the download is kept: free '
        'some space and run again, or '
        f'{kaggle_credentials.USE_EXISTING_COPY}.')


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
    BadArchiveError: not a zip, corrupt, or a member that is a link, whose
      path would land outside target, that another member overwrites or
      needs as a folder, or whose declared size is beyond sane bounds (then
      nothing is extracted); or a member yielding more than it declared.
    NoRoomError: the declared total does not fit on the disk (nothing is
      extracted).
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
    members = [i for i in infos if not _is_junk(i.filename)]
    problems = unsafe or name_problems(members) + size_problems(members)
    if problems:
      listing = '\n'.join(f'  {name!r}: {reason}' if name != '(all members)'
                          else f'  {name}: {reason}'
                          for name, reason in problems)
      raise BadArchiveError(
          f'Refusing to extract {zip_path}: {len(problems)} problem(s) with '
          'its members (links, paths outside '
          f'{data_dir}, names written twice or clashing, sizes beyond sane '
          f'bounds):\n{listing}\n'
          'Nothing was extracted and the download has been deleted. Use a '
          f'copy of the dataset you trust instead: {use_existing_copy}.')
    _check_room(zip_path, target, data_dir, members)
    total = len(members)
    log(f'Extracting {total} archive members into {target} '
        f'({len(infos) - total} __MACOSX entries skipped).')
    info = None
    try:
      for count, info in enumerate(members, 1):
        dest = os.path.join(target, *_member_parts(info.filename))
        if info.is_dir():
          os.makedirs(dest, exist_ok=True)
        else:
          os.makedirs(os.path.dirname(dest), exist_ok=True)
          with archive.open(info) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, _Bounded(dst, info), 1 << 20)
        if count % progress_every == 0 or count == total:
          log(f'Extracted {count}/{total} archive members.')
    except (IsADirectoryError, NotADirectoryError, FileExistsError) as e:
      # Names the checks above let through (e.g. on a case-insensitive disk).
      raise BadArchiveError(
          f'The download {zip_path} cannot be extracted: member '
          f'{info.filename!r} clashes with an earlier one ({describe(e)}). '
          f'It has been deleted; {use_existing_copy}.') from None
    except (zipfile.BadZipFile, EOFError, RuntimeError,
            NotImplementedError) as e:
      raise BadArchiveError(
          f'The download {zip_path} is corrupt or unsupported at member '
          f'{info.filename!r} ({describe(e)}). It has been deleted; run again '
          f'to download it afresh, or {use_existing_copy}.') from None
