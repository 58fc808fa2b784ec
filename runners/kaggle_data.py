"""Makes sure DATA_DIR holds the chest X-ray images, fetching them from Kaggle.

``ensure_dataset(data_dir)`` does nothing when DATA_DIR already has images.
Otherwise it downloads ``config.KAGGLE_DATASET`` with the ``kaggle`` package
into a hidden folder inside DATA_DIR, checks every archive member, extracts into
a hidden staging folder and moves the tree into place only once it is complete.
An interrupted run therefore never leaves a partial tree that counts as images;
the next run wipes the staging folder and starts the extraction again.

Every failure the user can fix (no credentials, download rejected, hostile or
corrupt archive) is a ``DataSourceError`` whose str() is the whole message. The
Kaggle API key is never printed, logged or put into a message.

CLI: ``python -m runners.kaggle_data --data-dir DIR`` (exit code 2 on a
``DataSourceError``).
"""
import argparse
import json
import logging
import os
import re
import shutil
import stat
import sys
import zipfile
from typing import Any, Callable, Iterator, List, Optional

from components.image_example_gen import naming
from contract import settings as config
from contract import names as constants

# Hidden folders inside DATA_DIR; has_images() never looks into hidden folders.
DOWNLOAD_DIR_NAME = '.kaggle_download'
STAGING_DIR_NAME = '.kaggle_staging'
# Log extraction progress every this many archive members.
PROGRESS_EVERY = 1000
# Archive folders that are never extracted (macOS resource forks).
_JUNK_FOLDERS = ('__MACOSX',)
# Longest excerpt of a foreign exception message put into a DataSourceError.
_MAX_DETAIL_CHARS = 500
_DRIVE = re.compile(r'^[A-Za-z]:')
_USE_EXISTING_COPY = (
    'point DATA_DIR at an existing copy of the dataset: '
    '`make run DATA_DIR=/path/to/chest_xray` '
    '(or `--data-dir /path/to/chest_xray`)')


class DataSourceError(Exception):
  """The dataset cannot be made available; str() is the user-facing message."""


class _BadArchiveError(DataSourceError):
  """The downloaded archive itself is unusable (it is deleted)."""


# --- finding images -----------------------------------------------------------


def _iter_images(data_dir: str) -> Iterator[str]:
  """Paths of image files under data_dir, as ingestion would see them.

  Hidden folders (our download and staging folders among them), folders
  starting with ``__`` (archive junk such as __MACOSX) and hidden files (such
  as AppleDouble ``._x.jpeg``) are skipped. Symlinked folders are followed, each
  real folder once.
  """
  seen = set()
  for root, dirs, files in os.walk(data_dir, followlinks=True):
    real = os.path.realpath(root)
    if real in seen:
      dirs[:] = []
      continue
    seen.add(real)
    dirs[:] = [d for d in dirs if not naming.is_ignored_folder(d)]
    for name in files:
      if naming.is_image_name(name):
        yield os.path.join(root, name)


def has_images(data_dir: str) -> bool:
  """Whether any image file exists at any depth under data_dir.

  Image files are those ending in one of ``constants.IMAGE_EXTENSIONS``, in
  any case. Hidden folders (including the download and staging folders of
  ``ensure_dataset``), ``__*`` folders and hidden files do not count, so a
  half-finished extraction is never taken for a dataset.

  Args:
    data_dir: folder to search; a missing folder has no images.

  Returns:
    True if at least one image file was found.
  """
  return next(_iter_images(data_dir), None) is not None


def _count_images(data_dir: str) -> int:
  return sum(1 for _ in _iter_images(data_dir))


# --- credentials --------------------------------------------------------------


def _kaggle_json_path() -> str:
  """The kaggle.json path the installed kaggle package reads (1.7.x logic)."""
  config_dir = os.environ.get('KAGGLE_CONFIG_DIR')
  if not config_dir:
    config_dir = os.path.join(os.path.expanduser('~'), '.kaggle')
    # kaggle keeps ~/.kaggle if it exists, else follows XDG on Linux.
    if sys.platform.startswith('linux') and not os.path.exists(config_dir):
      config_dir = os.path.join(
          os.environ.get('XDG_CONFIG_HOME') or
          os.path.join(os.path.expanduser('~'), '.config'), 'kaggle')
  return os.path.join(config_dir, 'kaggle.json')


def _how_to_provide_credentials(path: str) -> str:
  return (
      'Do one of the following, then run again:\n'
      f'  1. save your Kaggle API token (kaggle.com > Settings > API) as {path}'
      f' (creating its folder) and run `chmod 600 {path}`;\n'
      '  2. or set the environment variables KAGGLE_USERNAME and KAGGLE_KEY;\n'
      f'  3. or {_USE_EXISTING_COPY}.')


def _check_credentials(data_dir: str) -> None:
  """Raises DataSourceError unless kaggle would find a username and key.

  Mirrors ``KaggleApi.authenticate``: both KAGGLE_USERNAME and KAGGLE_KEY in
  the environment, or else a kaggle.json holding ``username`` and ``key``.
  Nothing from the file is ever put into a message.
  """
  if os.environ.get('KAGGLE_USERNAME') and os.environ.get('KAGGLE_KEY'):
    return
  path = _kaggle_json_path()
  if not os.path.exists(path):
    raise DataSourceError(
        f'Cannot download the Kaggle dataset {config.KAGGLE_DATASET}: no '
        'Kaggle API credentials found (neither the environment variables '
        f'KAGGLE_USERNAME and KAGGLE_KEY nor {path}), and DATA_DIR '
        f'{data_dir!r} has no images.\n' + _how_to_provide_credentials(path))
  try:
    with open(path, encoding='utf-8') as f:
      values = json.load(f)
  except (OSError, ValueError) as e:
    # Only the exception type: a JSON error message could quote the file.
    raise DataSourceError(
        f'Cannot download the Kaggle dataset {config.KAGGLE_DATASET}: the '
        f'Kaggle credentials file {path} could not be read as JSON '
        f'({type(e).__name__}).\n' + _how_to_provide_credentials(path)
    ) from None
  if (not isinstance(values, dict) or not values.get('username') or
      not values.get('key')):
    raise DataSourceError(
        f'Cannot download the Kaggle dataset {config.KAGGLE_DATASET}: the '
        f'Kaggle credentials file {path} does not hold both "username" and '
        '"key".\n' + _how_to_provide_credentials(path))


def _secrets() -> List[str]:
  """Credential values that must never appear in a message."""
  found = [os.environ.get(name) for name in ('KAGGLE_KEY', 'KAGGLE_API_TOKEN')]
  try:
    with open(_kaggle_json_path(), encoding='utf-8') as f:
      values = json.load(f)
    if isinstance(values, dict):
      found.append(values.get('key'))
  except (OSError, ValueError):
    pass
  return [s for s in found if isinstance(s, str) and s]


def _describe(error: BaseException) -> str:
  """``Type: message`` of a foreign exception, shortened, secrets removed."""
  text = f'{type(error).__name__}: {error}'
  for secret in _secrets():
    text = text.replace(secret, '<redacted>')
  if len(text) > _MAX_DETAIL_CHARS:
    text = text[:_MAX_DETAIL_CHARS] + '...'
  return text


def _default_api_factory(data_dir: str) -> Any:
  """The authenticated ``kaggle.api``; the only place kaggle is imported.

  ``import kaggle`` authenticates at import time and raises without
  credentials, so they are checked first and any import failure is turned
  into a DataSourceError.
  """
  _check_credentials(data_dir)
  try:
    import kaggle  # pylint: disable=import-outside-toplevel
    return kaggle.api
  except Exception as e:  # pylint: disable=broad-except
    raise DataSourceError(
        'Could not set up the Kaggle API client to download '
        f'{config.KAGGLE_DATASET} ({_describe(e)}). Check that your Kaggle '
        f'credentials ({_kaggle_json_path()}, or KAGGLE_USERNAME and '
        f'KAGGLE_KEY) are valid; or {_USE_EXISTING_COPY}.') from None


# --- archive ------------------------------------------------------------------


def _member_parts(name: str) -> List[str]:
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


def _extract_safely(zip_path: str, target: str, data_dir: str,
                    log: Callable[[str], Any]) -> None:
  """Checks every member of zip_path, then extracts them into target.

  Raises:
    _BadArchiveError: not a zip, corrupt, or a member that is a link or whose
      path would land outside target (then nothing is extracted).
  """
  try:
    archive = zipfile.ZipFile(zip_path)
  except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
    raise _BadArchiveError(
        f'The download {zip_path} is not a valid zip archive ({_describe(e)}).'
        ' It has been deleted; run again to download it afresh, or '
        f'{_USE_EXISTING_COPY}.') from None
  with archive:
    infos = archive.infolist()
    unsafe = [(i.filename, r) for i in infos
              if (r := _unsafe_reason(i, target)) is not None]
    if unsafe:
      listing = '\n'.join(f'  {name!r}: {reason}' for name, reason in unsafe)
      raise _BadArchiveError(
          f'Refusing to extract {zip_path}: {len(unsafe)} member(s) are links '
          f'or would be written outside {data_dir}:\n{listing}\n'
          'Nothing was extracted and the download has been deleted. Use a '
          f'copy of the dataset you trust instead: {_USE_EXISTING_COPY}.')
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
        if count % PROGRESS_EVERY == 0 or count == total:
          log(f'Extracted {count}/{total} archive members.')
    except (zipfile.BadZipFile, EOFError, RuntimeError,
            NotImplementedError) as e:
      raise _BadArchiveError(
          f'The download {zip_path} is corrupt or unsupported ({_describe(e)}).'
          ' It has been deleted; run again to download it afresh, or '
          f'{_USE_EXISTING_COPY}.') from None


def _move_into_place(staging_dir: str, data_dir: str) -> None:
  """Moves every top-level entry of staging_dir into data_dir.

  Entries without images move first, so the tree only counts as images once
  the image folders arrive (for the Kaggle archive: one rename of chest_xray).
  """
  names = sorted(os.listdir(staging_dir))
  conflicts = []
  for name in names:
    dest = os.path.join(data_dir, name)
    if os.path.lexists(dest) and not (
        os.path.isdir(dest) and not os.path.islink(dest) and
        not os.listdir(dest)):
      conflicts.append(dest)
  if conflicts:
    raise DataSourceError(
        'Cannot move the extracted dataset into place; these paths already '
        'exist (without images): ' + ', '.join(conflicts) + '. Move them away '
        f'and run again (the download is kept), or {_USE_EXISTING_COPY}.')

  def holds_images(name):
    path = os.path.join(staging_dir, name)
    if os.path.isdir(path):
      return has_images(path)
    return name.lower().endswith(constants.IMAGE_EXTENSIONS)

  for name in sorted(names, key=lambda n: (holds_images(n), n)):
    dest = os.path.join(data_dir, name)
    if os.path.isdir(dest) and not os.path.islink(dest):
      os.rmdir(dest)  # empty, checked above
    os.rename(os.path.join(staging_dir, name), dest)


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path)
  elif os.path.lexists(path):
    os.remove(path)


def _install_archive(zip_path: str, data_dir: str,
                     log: Callable[[str], Any]) -> None:
  """Extracts zip_path into a staging folder, then moves it into data_dir."""
  staging_dir = os.path.join(data_dir, STAGING_DIR_NAME)
  _remove(staging_dir)  # leftovers of an interrupted run
  os.makedirs(staging_dir)
  try:
    _extract_safely(zip_path, staging_dir, data_dir, log)
    if not has_images(staging_dir):
      raise _BadArchiveError(
          f'The download {zip_path} holds no image files '
          f'({", ".join(constants.IMAGE_EXTENSIONS)}). It has been deleted; '
          f'{_USE_EXISTING_COPY}.')
    _move_into_place(staging_dir, data_dir)
  finally:
    _remove(staging_dir)


# --- entry point --------------------------------------------------------------


def check_source(data_dir: str) -> None:
  """Raises DataSourceError now if data_dir has no images and no Kaggle
  credentials could fetch them (the runner's preflight; no download)."""
  if not has_images(data_dir):
    _check_credentials(data_dir)


def ensure_dataset(data_dir: str,
                   api_factory: Optional[Callable[[], Any]] = None,
                   log: Callable[[str], Any] = logging.info) -> str:
  """Makes sure data_dir holds the dataset's images, downloading if needed.

  If data_dir already has images nothing is downloaded. Otherwise
  ``config.KAGGLE_DATASET`` is downloaded into ``data_dir/.kaggle_download``,
  every archive member is checked, the archive is extracted into
  ``data_dir/.kaggle_staging``, the tree is moved into data_dir and the
  download is removed. Nothing is written outside data_dir.

  Args:
    data_dir: the folder the pipeline reads images from (created if missing).
    api_factory: returns an object with the kaggle API's
      ``dataset_download_files``; by default the authenticated ``kaggle.api``
      (credentials are checked before kaggle is imported).
    log: called with one line of progress at a time.

  Returns:
    data_dir.

  Raises:
    DataSourceError: no credentials, the download failed, or the archive is
      corrupt or hostile; the message says what to do.
  """
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise DataSourceError(f'DATA_DIR {data_dir!r} is not a directory.')
  count = _count_images(data_dir)
  if count:
    log(f'Using the existing copy of the dataset in {data_dir} '
        f'({count} images found); nothing downloaded.')
    return data_dir

  if api_factory is None:
    api = _default_api_factory(data_dir)
  else:
    try:
      api = api_factory()
    except DataSourceError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise DataSourceError(
          f'Could not set up the Kaggle API client ({_describe(e)}); '
          f'{_USE_EXISTING_COPY}.') from None

  download_dir = os.path.join(data_dir, DOWNLOAD_DIR_NAME)
  try:
    os.makedirs(download_dir, exist_ok=True)
  except OSError as e:
    raise DataSourceError(
        f'Cannot create {download_dir} to download the dataset into '
        f'({_describe(e)}).') from None
  log(f'No images in {data_dir}; downloading the Kaggle dataset '
      f'{config.KAGGLE_DATASET} into {download_dir}.')
  try:
    api.dataset_download_files(
        config.KAGGLE_DATASET, path=download_dir, unzip=False, quiet=False)
  except Exception as e:  # pylint: disable=broad-except
    if os.path.isdir(download_dir) and not os.listdir(download_dir):
      # Only an empty folder; a partial zip is kept for a rerun.
      os.rmdir(download_dir)
    raise DataSourceError(
        f'Downloading the Kaggle dataset {config.KAGGLE_DATASET} failed '
        f'({_describe(e)}). Check your network connection and that your '
        'Kaggle credentials (kaggle.json, or KAGGLE_USERNAME and KAGGLE_KEY) '
        f'are valid, then run again; or {_USE_EXISTING_COPY}.') from None

  slug = config.KAGGLE_DATASET.split('/')[-1]
  zip_path = os.path.join(download_dir, slug + '.zip')
  if not os.path.isfile(zip_path):
    raise DataSourceError(
        f'The Kaggle download finished but {zip_path} does not exist; run '
        f'again, or {_USE_EXISTING_COPY}.')
  try:
    _install_archive(zip_path, data_dir, log)
  except _BadArchiveError:
    _remove(download_dir)
    raise
  except OSError as e:
    raise DataSourceError(
        f'Extracting {zip_path} into {data_dir} failed ({_describe(e)}), e.g. '
        'for lack of disk space or permissions. Nothing was moved into place '
        f'and the download is kept; fix the cause and run again, or '
        f'{_USE_EXISTING_COPY}.') from None
  _remove(download_dir)
  log(f'Dataset ready in {data_dir} ({_count_images(data_dir)} images).')
  return data_dir


def main(argv: Optional[List[str]] = None) -> int:
  """CLI: ensure DATA_DIR holds the dataset; exit code 2 on DataSourceError."""
  parser = argparse.ArgumentParser(
      prog='python -m runners.kaggle_data',
      description='Download the chest X-ray dataset from Kaggle into '
      'DATA_DIR unless it already holds images.')
  parser.add_argument('--data-dir', default=config.DEFAULT_DATA_DIR,
                      help='folder of the images (default: %(default)s)')
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format='%(message)s')
  try:
    ensure_dataset(args.data_dir)
  except DataSourceError as e:
    print(e, file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
