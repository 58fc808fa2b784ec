"""Helpers shared by the test suite: real images in place, CLI runs, MLMD."""
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


def _find_shared_data() -> pathlib.Path:
  """$PNEUMONIA_SHARED_DATA, else the nearest shared/data above the
  repository (../shared/data in a normal checkout), else /work/shared/data."""
  if os.environ.get('PNEUMONIA_SHARED_DATA'):
    return pathlib.Path(os.environ['PNEUMONIA_SHARED_DATA'])
  for folder in REPO.parents:
    if (folder / 'shared' / 'data').is_dir():
      return folder / 'shared' / 'data'
  return pathlib.Path('/work/shared/data')


SHARED_DATA = _find_shared_data()


def require_shared_data(*parts: str) -> pathlib.Path:
  """Path of real images under ../shared/data; fails loudly in CI if absent.

  The images are never copied into the repository; tests read them in place.
  Outside CI a missing folder skips the test instead.
  """
  path = SHARED_DATA.joinpath(*parts)
  if not path.exists():
    message = (f'real test images not found at {path} (see '
               '../shared/data/README.md; set PNEUMONIA_SHARED_DATA to move it)')
    if os.environ.get('CI') == 'true':
      pytest.fail(message)
    pytest.skip(message)
  return path


def run_cli(args, env=None, timeout=1500) -> subprocess.CompletedProcess:
  """Runs a repository script as a user would, capturing its output."""
  full_env = dict(os.environ, PYTHONUNBUFFERED='1', TF_CPP_MIN_LOG_LEVEL='2')
  full_env.update(env or {})
  return subprocess.run([sys.executable, *map(str, args)], cwd=REPO,
                        env=full_env, capture_output=True, text=True,
                        timeout=timeout)


def executions(metadata_path) -> list:
  """(node id, state) of every execution in an MLMD store, oldest first;
  state is e.g. 'COMPLETE', 'CACHED' or 'FAILED'."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(metadata_path)
  config.sqlite.connection_mode = 1  # READONLY
  store = metadata_store.MetadataStore(config)
  node_of = {}
  for context in store.get_contexts_by_type('node'):
    node = context.name.rsplit('.', 1)[-1]  # '<pipeline>.<node id>'
    for execution in store.get_executions_by_context(context.id):
      node_of[execution.id] = node
  return [(node_of.get(execution.id, execution.type.rsplit('.', 1)[-1]),
           metadata_store_pb2.Execution.State.Name(execution.last_known_state))
          for execution in sorted(store.get_executions(), key=lambda e: e.id)]
