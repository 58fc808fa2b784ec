"""Finds the Kaggle credentials and keeps the API key out of every message.

The lowest floor of the Kaggle download: it defines ``DataSourceError`` (the
one error the user sees) and ``describe``, the only way a foreign exception's
text enters such a message, so the archive and download code cannot leak the
key by quoting an error. The ``kaggle`` package is imported here only, after
the credentials were checked, since its import authenticates.
"""
import json
import os
import sys
from typing import Any, List

from contract import settings as config

# Longest excerpt of a foreign exception message put into a DataSourceError.
_MAX_DETAIL_CHARS = 500
USE_EXISTING_COPY = (
    'point DATA_DIR at an existing copy of the dataset: '
    '`make run DATA_DIR=/path/to/chest_xray` '
    '(or `--data-dir /path/to/chest_xray`)')


class DataSourceError(Exception):
  """The dataset cannot be made available; str() is the user-facing message."""


def kaggle_json_path() -> str:
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
      f'  3. or {USE_EXISTING_COPY}.')


def check_credentials(data_dir: str) -> None:
  """Raises DataSourceError unless kaggle would find a username and key.

  Mirrors ``KaggleApi.authenticate``: both KAGGLE_USERNAME and KAGGLE_KEY in
  the environment, or else a kaggle.json holding ``username`` and ``key``.
  Nothing from the file is ever put into a message.
  """
  if os.environ.get('KAGGLE_USERNAME') and os.environ.get('KAGGLE_KEY'):
    return
  path = kaggle_json_path()
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
    with open(kaggle_json_path(), encoding='utf-8') as f:
      values = json.load(f)
    if isinstance(values, dict):
      found.append(values.get('key'))
  except (OSError, ValueError):
    pass
  return [s for s in found if isinstance(s, str) and s]


def describe(error: BaseException) -> str:
  """``Type: message`` of a foreign exception, shortened, secrets removed."""
  text = f'{type(error).__name__}: {error}'
  for secret in _secrets():
    text = text.replace(secret, '<redacted>')
  if len(text) > _MAX_DETAIL_CHARS:
    text = text[:_MAX_DETAIL_CHARS] + '...'
  return text


def default_api_factory(data_dir: str) -> Any:
  """The authenticated ``kaggle.api``; the only place kaggle is imported.

  ``import kaggle`` authenticates at import time and raises without
  credentials, so they are checked first and any import failure is turned
  into a DataSourceError.
  """
  check_credentials(data_dir)
  try:
    import kaggle  # pylint: disable=import-outside-toplevel
    return kaggle.api
  except Exception as e:  # pylint: disable=broad-except
    raise DataSourceError(
        'Could not set up the Kaggle API client to download '
        f'{config.KAGGLE_DATASET} ({describe(e)}). Check that your Kaggle '
        f'credentials ({kaggle_json_path()}, or KAGGLE_USERNAME and '
        f'KAGGLE_KEY) are valid; or {USE_EXISTING_COPY}.') from None
