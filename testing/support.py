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


def read_only_store(metadata_path):
  """The local runner's MLMD store (SQLite), opened read-only."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(metadata_path)
  config.sqlite.connection_mode = 1  # READONLY
  return metadata_store.MetadataStore(config)


def each_node_execution(store):
  """(node id, execution) of every execution of every node in `store`."""
  for context in store.get_contexts_by_type('node'):
    node = context.name.rsplit('.', 1)[-1]  # '<pipeline>.<node id>'
    for execution in store.get_executions_by_context(context.id):
      yield node, execution


def executions(metadata_path) -> list:
  """(node id, state) of every execution in an MLMD store, oldest first;
  state is e.g. 'COMPLETE', 'CACHED' or 'FAILED'."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  store = read_only_store(metadata_path)
  node_of = {execution.id: node
             for node, execution in each_node_execution(store)}
  return [(node_of.get(execution.id, execution.type.rsplit('.', 1)[-1]),
           metadata_store_pb2.Execution.State.Name(execution.last_known_state))
          for execution in sorted(store.get_executions(), key=lambda e: e.id)]


def node_executions(metadata_path, node) -> list:
  """Every execution of one pipeline node in an MLMD store, oldest first:
  {'state', 'properties' (execution parameters, as stored), 'inputs' and
  'outputs' ({channel key: [artifact uri]})}."""
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  store = read_only_store(metadata_path)
  ids = sorted({e.id for name, e in each_node_execution(store)
                if name == node})
  sides = {metadata_store_pb2.Event.INPUT: 'inputs',
           metadata_store_pb2.Event.OUTPUT: 'outputs'}
  found = []
  for execution in store.get_executions_by_id(ids):
    record = {'state': metadata_store_pb2.Execution.State.Name(
        execution.last_known_state), 'inputs': {}, 'outputs': {},
              'properties': {
                  key: getattr(value, value.WhichOneof('value'))
                  for key, value in execution.custom_properties.items()
                  if value.WhichOneof('value')}}
    events = store.get_events_by_execution_ids([execution.id])
    uris = {a.id: a.uri for a in store.get_artifacts_by_id(
        [e.artifact_id for e in events])}
    for event in events:
      if event.type in sides and event.path.steps:
        record[sides[event.type]].setdefault(
            event.path.steps[0].key, []).append(uris[event.artifact_id])
    found.append(record)
  return found


def split_records(examples_uri, split) -> list:
  """The serialized tf.Examples of one split of an Examples artifact, in
  file order (TFX writes a split under Split-<name>, gzipped)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = sorted(tf.io.gfile.glob(os.path.join(
      str(examples_uri), f'Split-{split}', '*')))
  assert files, f'no files of split {split!r} in {examples_uri}'
  return [record.numpy() for record in tf.data.TFRecordDataset(
      files, compression_type='GZIP')]
