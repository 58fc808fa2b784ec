"""Makes sure DATA_DIR holds the chest X-ray images, fetching them from Kaggle.

``ensure_dataset(data_dir)`` does nothing when DATA_DIR already has images.
Otherwise it downloads ``config.KAGGLE_DATASET`` with the ``kaggle`` package
into a hidden folder inside DATA_DIR, checks every archive member, extracts into
a hidden staging folder and moves the tree into place only once it is complete.
An interrupted run therefore never leaves a partial tree that counts as images;
the next run wipes the staging folder and starts the extraction again.

Every failure the user can fix (no credentials, download rejected, hostile or
corrupt archive, no room on the disk) is a ``DataSourceError`` whose str() is
the whole message. A bad archive is deleted with whatever was extracted; a
good one that does not fit is kept for the next run. The Kaggle API key is
never printed, logged or put into a message.

Credentials and redaction live in ``runners.kaggle_credentials``, the member
checks and extraction in ``runners.kaggle_archive``; this module decides where
things go inside DATA_DIR and when the tree counts as images.

CLI: ``python -m runners.kaggle_data --data-dir DIR`` (exit code 2 on a
``DataSourceError``).
"""
import argparse
import logging
import os
import shutil
import sys
from typing import Any, Callable, List, Optional

from components.image_example_gen import walk
from contract import settings as config
from contract import names as constants
from runners import kaggle_archive
from runners import kaggle_credentials

# Hidden folders inside DATA_DIR; has_images() never looks into hidden folders.
DOWNLOAD_DIR_NAME = '.kaggle_download'
STAGING_DIR_NAME = '.kaggle_staging'
# Log extraction progress every this many archive members.
PROGRESS_EVERY = 1000
# Callers catch kaggle_data.DataSourceError; it is defined with the
# credentials, the lowest of the Kaggle modules, so all of them raise it.
DataSourceError = kaggle_credentials.DataSourceError
_USE_EXISTING_COPY = kaggle_credentials.USE_EXISTING_COPY
_describe = kaggle_credentials.describe


# --- finding images -----------------------------------------------------------


def has_images(data_dir: str) -> bool:
  """Whether ingestion would find at least one image to ingest in data_dir.

  Asks ingestion's own walk (``walk.walk_tree``), so the answer cannot drift
  from what ImageExampleGen reads: an image file (one of
  ``constants.IMAGE_EXTENSIONS``, any case, not hidden) below a folder named
  NORMAL or PNEUMONIA. Images elsewhere do not count, as ingestion ignores
  them; nor do hidden folders (including the download and staging folders of
  ``ensure_dataset``) or ``__*`` folders, so a half-finished extraction is
  never taken for a dataset.

  Args:
    data_dir: folder to search; a missing folder has no images.

  Returns:
    True if at least one such image file was found.
  """
  return any(entry.kind == walk.CANDIDATE
             for entry in walk.walk_tree(data_dir))


def _count_images(data_dir: str) -> int:
  """How many images ingestion would take from data_dir (the same walk)."""
  return sum(1 for entry in walk.walk_tree(data_dir)
             if entry.kind == walk.CANDIDATE)


# --- installing the archive ---------------------------------------------------


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
  """Extracts zip_path into a staging folder, then moves it into data_dir.

  Raises:
    kaggle_archive.BadArchiveError: the archive is hostile, corrupt or holds
      no images (the caller deletes it).
    kaggle_archive.NoRoomError: its declared size does not fit on the disk
      (the download is kept).
  """
  staging_dir = os.path.join(data_dir, STAGING_DIR_NAME)
  _remove(staging_dir)  # leftovers of an interrupted run
  os.makedirs(staging_dir)
  try:
    kaggle_archive.extract_safely(zip_path, staging_dir, data_dir, log,
                                  PROGRESS_EVERY)
    if not has_images(staging_dir):
      raise kaggle_archive.BadArchiveError(
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
    kaggle_credentials.check_credentials(data_dir)


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
    DataSourceError: no credentials, the download failed, the archive is
      corrupt or hostile, or the disk cannot hold it; the message says what
      to do.
  """
  if os.path.exists(data_dir) and not os.path.isdir(data_dir):
    raise DataSourceError(f'DATA_DIR {data_dir!r} is not a directory.')
  count = _count_images(data_dir)
  if count:
    log(f'Using the existing copy of the dataset in {data_dir} '
        f'({count} images found); nothing downloaded.')
    return data_dir

  if api_factory is None:
    api = kaggle_credentials.default_api_factory(data_dir)
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
  except kaggle_archive.BadArchiveError:
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
