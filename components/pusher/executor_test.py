"""Tests of the Pusher: blessed models only, a new version each time, atomic.

`publish` is tried on hand-made model folders (it copies files and checks
for saved_model.pb); the Executor pushes a tiny real SavedModel.
"""
import hashlib
import logging
import os
import pathlib

import keras
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from components.pusher import executor
from contract import layout
from contract import names as constants
from trainer import models
from trainer import signatures


def _model_folder(root: pathlib.Path, tag: str,
                  saved_model: bool = True) -> pathlib.Path:
  folder = root / f'model-{tag}'
  (folder / 'variables').mkdir(parents=True)
  (folder / 'variables' / 'variables.data-00000-of-00001').write_bytes(
      tag.encode() * 100)
  (folder / 'assets.extra').mkdir()
  (folder / 'assets.extra' / 'model_info.json').write_text(
      f'{{"tag": "{tag}"}}')
  if saved_model:
    (folder / 'saved_model.pb').write_bytes(f'graph {tag}'.encode())
  return folder


def _digests(folder: pathlib.Path) -> dict:
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob('*')) if p.is_file()}


def _entries(base: pathlib.Path) -> list:
  return sorted(p.name for p in base.iterdir())


def _versions(base: pathlib.Path) -> list:
  return sorted((p.name for p in base.iterdir() if p.name.isdigit()), key=int)


# --- publish ------------------------------------------------------------------

def test_publish_creates_a_new_version_with_the_model_files(tmp_path):
  model = _model_folder(tmp_path, 'a')
  base = tmp_path / 'serving_model'
  target = executor.publish(str(model), str(base))
  assert pathlib.Path(target).parent == base
  assert _entries(base) == [pathlib.Path(target).name]
  assert pathlib.Path(target).name.isdigit()
  assert _digests(pathlib.Path(target)) == _digests(model)


def test_publish_never_touches_or_overwrites_earlier_versions(tmp_path):
  base = tmp_path / 'serving_model'
  pushed = [pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                          str(base)))]
  before = {p.name: _digests(p) for p in pushed}
  for tag in ('b', 'c'):
    pushed.append(pathlib.Path(executor.publish(
        str(_model_folder(tmp_path, tag)), str(base))))
  names = [p.name for p in pushed]
  assert len(set(names)) == 3
  assert [int(n) for n in names] == sorted(int(n) for n in names)
  assert _versions(base) == names and _entries(base) == sorted(names)
  assert {p.name: _digests(p) for p in pushed[:1]} == before
  for path, tag in zip(pushed, 'abc'):
    assert _digests(path) == _digests(tmp_path / f'model-{tag}')


def test_two_pushes_in_the_same_second_get_increasing_versions(
    tmp_path, monkeypatch):
  monkeypatch.setattr(executor.time, 'time', lambda: 1_800_000_000.25)
  base = tmp_path / 'serving_model'
  first = executor.publish(str(_model_folder(tmp_path, 'a')), str(base))
  second = executor.publish(str(_model_folder(tmp_path, 'b')), str(base))
  assert pathlib.Path(first).name == '1800000000'
  assert pathlib.Path(second).name == '1800000001'
  assert _digests(pathlib.Path(first)) == _digests(tmp_path / 'model-a')
  assert _digests(pathlib.Path(second)) == _digests(tmp_path / 'model-b')


def test_a_version_from_the_future_is_exceeded_not_replaced(tmp_path):
  base = tmp_path / 'serving_model'
  base.mkdir()
  _model_folder(tmp_path, 'future').rename(base / '9999999999')
  before = _digests(base / '9999999999')
  target = executor.publish(str(_model_folder(tmp_path, 'new')), str(base))
  assert pathlib.Path(target).name == '10000000000'
  assert _digests(base / '9999999999') == before
  assert _entries(base) == ['10000000000', '9999999999']


def test_failure_without_saved_model_leaves_nothing(tmp_path):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))
  before = _digests(old)
  broken = _model_folder(tmp_path, 'broken', saved_model=False)
  with pytest.raises(FileNotFoundError, match='saved_model.pb'):
    executor.publish(str(broken), str(base))
  assert _entries(base) == [old.name]  # no new version, no staging folder
  assert _digests(old) == before


def test_failure_into_an_empty_destination_leaves_no_version(tmp_path):
  base = tmp_path / 'serving_model'
  with pytest.raises(FileNotFoundError):
    executor.publish(str(_model_folder(tmp_path, 'x', saved_model=False)),
                     str(base))
  assert _entries(base) == []


def test_an_existing_version_is_never_overwritten(tmp_path, monkeypatch):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))
  before = _digests(old)
  # The version appears between choosing and renaming (another pusher).
  monkeypatch.setattr(executor, 'next_version', lambda _: old.name)
  with pytest.raises(executor.VersionExistsError):
    executor.publish(str(_model_folder(tmp_path, 'b')), str(base))
  assert _entries(base) == [old.name]
  assert _digests(old) == before


def test_a_failed_rename_leaves_no_staging_folder(tmp_path, monkeypatch):
  base = tmp_path / 'serving_model'

  def fail(*args, **kwargs):
    raise tf.errors.UnavailableError(None, None, 'disk went away')

  monkeypatch.setattr(executor.tf.io.gfile, 'rename', fail)
  with pytest.raises(tf.errors.UnavailableError):
    executor.publish(str(_model_folder(tmp_path, 'a')), str(base))
  assert _entries(base) == []


# --- the Executor ---------------------------------------------------------------

SIZE = 32


@pytest.fixture(scope='module')
def model_artifact(tmp_path_factory):
  """A Model artifact holding a tiny real SavedModel in Format-Serving/."""
  keras.utils.set_random_seed(0)
  uri = tmp_path_factory.mktemp('Trainer') / 'model' / '3'
  signatures.export(models.build_model('baseline_cnn', SIZE, 10),
                    str(uri / 'Format-Serving'), SIZE, 0.3,
                    info={'architecture': 'baseline_cnn'})
  artifact = tfx.types.standard_artifacts.Model()
  artifact.uri = str(uri)
  return artifact


def _run_executor(model_artifact, blessed, base, tmp_path, statistics=None):
  blessing = tfx.types.standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'Evaluator' / 'blessing' / '4')
  blessing.set_int_custom_property('blessed', blessed)
  pushed = tfx.types.standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / 'Pusher' / 'pushed_model' / '5')
  destination = tfx.proto.PushDestination(
      filesystem=tfx.proto.PushDestination.Filesystem(
          base_directory=str(base)))
  inputs = {'model': [model_artifact], 'model_blessing': [blessing]}
  if statistics is not None:
    inputs['statistics'] = [statistics]
  executor.Executor().Do(
      inputs,
      {'pushed_model': [pushed]},
      {'push_destination': proto_utils.proto_to_json(destination)})
  return pushed


def test_executor_pushes_nothing_unblessed(model_artifact, tmp_path):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))
  before = _digests(base)
  pushed = _run_executor(model_artifact, 0, base, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 0
  assert pushed.get_string_custom_property('pushed_version') == ''
  assert _entries(base) == [old.name]
  assert _digests(base) == before


def test_executor_pushes_a_blessed_model(model_artifact, tmp_path):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))
  before = _digests(old)
  pushed = _run_executor(model_artifact, 1, base, tmp_path)
  assert pushed.get_int_custom_property('pushed') == 1
  version = pushed.get_string_custom_property('pushed_version')
  destination = pushed.get_string_custom_property('pushed_destination')
  assert destination == str(base / version)
  assert int(version) > int(old.name)
  assert _entries(base) == sorted([old.name, version])
  assert _digests(old) == before
  source = pathlib.Path(model_artifact.uri) / 'Format-Serving'
  pushed_files = _digests(base / version)
  cards = {os.path.join('assets.extra', f'model_card.{ext}')
           for ext in ('md', 'html')}
  assert cards <= set(pushed_files)  # the model card, beside model_info
  assert {k: v for k, v in pushed_files.items() if k not in cards} == (
      _digests(source))
  card = (base / version / 'assets.extra' / 'model_card.md').read_text()
  assert f'version {version}' in card and 'baseline_cnn' in card
  # Given no evaluation, the card says so rather than inventing numbers.
  assert 'Missing from this run' in card and 'blessing_decision.json' in card
  # What TF Serving will load: the model with its contract.
  loaded = tf.saved_model.load(destination)
  outputs = loaded.signatures[constants.SERVING_SIGNATURE](
      **{constants.SERVING_INPUT: tf.constant([tf.io.encode_png(
          tf.zeros([8, 8, 1], tf.uint8)).numpy()])})
  assert outputs[constants.PROBABILITY_OUTPUT].shape == (1,)
  assert float(loaded.threshold.numpy()) == pytest.approx(0.3)
  # Given no statistics, the version holds none (the next drift check says
  # it cannot compare).
  assert layout.TRAINING_STATISTICS_FILE not in pushed_files


def _statistics_artifact(folder: pathlib.Path):
  """StatisticsGen's layout: one FeatureStats.pb per split, the train
  split's distinguishable from the others."""
  artifact = tfx.types.standard_artifacts.ExampleStatistics()
  artifact.uri = str(folder)
  artifact.split_names = artifact_utils.encode_split_names(
      list(constants.SPLIT_NAMES))
  for split in constants.SPLIT_NAMES:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.datasets.add(name=split, num_examples=len(split))
    path = pathlib.Path(artifact_utils.get_split_uri([artifact], split))
    path.mkdir(parents=True)
    (path / 'FeatureStats.pb').write_bytes(stats.SerializeToString())
  return artifact


def test_executor_keeps_the_train_statistics_in_the_version(model_artifact,
                                                             tmp_path):
  base = tmp_path / 'serving_model'
  pushed = _run_executor(model_artifact, 1, base, tmp_path,
                         _statistics_artifact(tmp_path / 'StatisticsGen'))
  version = pushed.get_string_custom_property('pushed_version')
  kept = statistics_pb2.DatasetFeatureStatisticsList()
  kept.ParseFromString(
      (base / version / layout.TRAINING_STATISTICS_FILE).read_bytes())
  assert [d.name for d in kept.datasets] == [constants.TRAIN_SPLIT]


# --- leftovers in the serving folder (issue 11 §2) ----------------------------

def _age(path: pathlib.Path, seconds: float):
  """Sets the modification time of path and of everything below it."""
  stamp = executor.time.time() - seconds
  for entry in [path, *path.rglob('*')]:
    os.utime(entry, (stamp, stamp), follow_symlinks=False)


def test_a_new_version_exceeds_every_numeric_entry(tmp_path, monkeypatch):
  """TF Serving serves the highest number: a push numbered below a broken
  folder would never be served."""
  monkeypatch.setattr(executor.time, 'time', lambda: 1_700_000_000.5)
  base = tmp_path / 'serving_model'
  (base / '1796999990' / 'variables').mkdir(parents=True)  # no saved_model.pb
  (base / '1796999990' / 'variables' / 'variables.index').write_bytes(b'i')
  (base / '1796999995').write_text('a file with a numeric name')
  (base / '99999999999x').mkdir()  # not numeric: does not count
  before = {name: _digests(base / name) if (base / name).is_dir()
            else (base / name).read_text() for name in _entries(base)}

  target = executor.publish(str(_model_folder(tmp_path, 'a')), str(base))

  assert pathlib.Path(target).name == '1796999996'
  assert _entries(base) == ['1796999990', '1796999995', '1796999996',
                            '99999999999x']
  assert {name: _digests(base / name) if (base / name).is_dir()
          else (base / name).read_text() for name in before} == before
  assert _digests(pathlib.Path(target)) == _digests(tmp_path / 'model-a')


def test_stale_staging_folders_are_removed_live_ones_kept(tmp_path, caplog):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))
  served = _digests(old)
  dead = base / (executor.layout.STAGING_PREFIX + 'dead')
  (dead / 'variables').mkdir(parents=True)
  (dead / 'variables' / 'variables.data-00000-of-00001').write_bytes(b'x' * 10)
  _age(dead, 2 * executor.STALE_STAGING_SECONDS)
  # Another push copying now: an old folder, but a file written just now.
  live = base / (executor.layout.STAGING_PREFIX + 'live')
  (live / 'variables').mkdir(parents=True)
  _age(live, 2 * executor.STALE_STAGING_SECONDS)
  (live / 'variables' / 'variables.index').write_bytes(b'being written')
  stray = base / '.not-staging'
  stray.mkdir()
  _age(stray, 2 * executor.STALE_STAGING_SECONDS)

  with caplog.at_level(logging.WARNING):
    target = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'b')),
                                           str(base)))

  assert _entries(base) == sorted([live.name, stray.name, old.name,
                                   target.name])
  assert any(str(dead) in r.getMessage() and 'Removed' in r.getMessage()
             for r in caplog.records), [r.getMessage() for r in caplog.records]
  assert (live / 'variables' / 'variables.index').read_bytes() == (
      b'being written')
  assert _digests(old) == served
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'model-a', 'model-b', 'serving_model']  # nothing written elsewhere


def test_remove_stale_staging_rule(tmp_path, monkeypatch):
  fresh = tmp_path / (executor.layout.STAGING_PREFIX + 'fresh')
  fresh.mkdir()
  _age(fresh, executor.STALE_STAGING_SECONDS - 60)
  stale = tmp_path / (executor.layout.STAGING_PREFIX + 'stale')
  stale.mkdir()
  _age(stale, executor.STALE_STAGING_SECONDS + 60)
  assert executor.remove_stale_staging(str(tmp_path)) == [str(stale)]
  assert _entries(tmp_path) == [fresh.name]


def test_executor_pushes_above_a_broken_folder_and_cleans_staging(
    model_artifact, tmp_path):
  base = tmp_path / 'serving_model'
  future = int(executor.time.time()) + 10_000
  (base / str(future) / 'variables').mkdir(parents=True)
  dead = base / (executor.layout.STAGING_PREFIX + 'killed-mid-copy')
  (dead / 'variables').mkdir(parents=True)
  _age(dead, 2 * executor.STALE_STAGING_SECONDS)

  pushed = _run_executor(model_artifact, 1, base, tmp_path)

  version = pushed.get_string_custom_property('pushed_version')
  assert int(version) == future + 1
  assert _entries(base) == sorted([str(future), version])
  assert tf.saved_model.load(str(base / version)).signatures[
      constants.SERVING_SIGNATURE] is not None


# --- the model card inside the version (issue 12 §2) --------------------------

def test_the_card_is_in_the_version_before_it_appears(tmp_path, monkeypatch):
  base = tmp_path / 'serving_model'
  rename = executor.tf.io.gfile.rename
  seen = []

  def watching_rename(source, target, overwrite=False):
    seen.append(sorted(os.listdir(os.path.join(source, 'assets.extra'))))
    return rename(source, target, overwrite=overwrite)

  monkeypatch.setattr(executor.tf.io.gfile, 'rename', watching_rename)
  written = []
  target = executor.publish(
      str(_model_folder(tmp_path, 'a')), str(base),
      lambda folder, version: written.append((folder, version)) or (
          pathlib.Path(folder, 'assets.extra', 'model_card.md').write_text(
              version)))
  (folder, version), = written
  assert os.path.basename(folder).startswith(executor.layout.STAGING_PREFIX)
  assert version == pathlib.Path(target).name
  assert seen == [['model_card.md', 'model_info.json']]
  assert (pathlib.Path(target) / 'assets.extra' / 'model_card.md'
          ).read_text() == version


def test_a_card_that_fails_pushes_nothing(model_artifact, tmp_path,
                                          monkeypatch):
  base = tmp_path / 'serving_model'
  old = pathlib.Path(executor.publish(str(_model_folder(tmp_path, 'a')),
                                      str(base)))

  def fail(*args):
    raise executor.card_files.MissingSectionError('no "Data" section')

  monkeypatch.setattr(executor.card_files, 'write', fail)
  with pytest.raises(executor.card_files.MissingSectionError):
    _run_executor(model_artifact, 1, base, tmp_path)
  assert _entries(base) == [old.name]  # no version, no staging folder
