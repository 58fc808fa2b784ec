"""Pusher executor: blessed models only, a new version each time, atomically.

TFX's filesystem Pusher copies straight into `<base>/<unix time>/` and skips
the push if that folder exists. Here the model is copied into a hidden
staging folder beside the versions (TF Serving ignores non-numeric names),
checked, and renamed to its version in one step: TF Serving never sees a
half-written version, earlier versions are never touched, and an existing
version is never overwritten. The version is the Unix time, or one more than
the highest numeric entry if the clock says otherwise: every entry counts,
broken or not, since TF Serving serves the highest number and would
otherwise keep trying a broken folder above the new push. Staging folders
left by a push killed mid-copy are removed at the next push once stale. A
model that is not blessed leaves the served folder untouched.

Each pushed version carries its model card (components/model_card) in
assets.extra/, written into the staging folder once the version is chosen
and before the rename: a served version never changes after it appears.
The card is built before the copy from what the Pusher is given (the
evaluation, the Examples, an external cohort's Examples), read with the run
report's reader; a card that cannot be built fails the push. Beside it
goes the train split's statistics (`layout.TRAINING_STATISTICS_FILE`), the
baseline the next run's drift check compares its new data with.
"""
import os
import time
import uuid
from typing import Callable, List, Optional

from absl import logging
import tensorflow as tf
from tfx.components.pusher import executor as tfx_pusher
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

from components.deployed_model import versions
from components.model_card import card as model_card
from components.model_card import render as card_files
from components.run_report import reading
from components.run_report import run as run_lib
from contract import layout
from contract import names

# Inputs beyond TFX's, named as the run report names them.
EVALUATION_KEY = reading.EVALUATION_KEY
EXAMPLES_KEY = reading.EXAMPLES_KEY
EXTERNAL_EXAMPLES_KEY = reading.EXTERNAL_EXAMPLES_KEY
STATISTICS_KEY = specs.STATISTICS_KEY  # the main data's StatisticsGen
# Called with (the folder becoming the version, its version) before the
# folder is published: what must be inside the version from the start.
BeforePublish = Callable[[str, str], None]


class VersionExistsError(RuntimeError):
  """The chosen version folder appeared while pushing."""


# A staging folder in which nothing changed for this long belongs to a dead
# push: a live one is written without pause until its rename (a resnet50
# copies in seconds; each copied file gets a fresh mtime), so an hour leaves a wide margin for a slow disk while a
# concurrent push's folder is never taken. Not "older than this run": a
# concurrent run that started earlier would lose its live staging folder.
STALE_STAGING_SECONDS = 3600


def next_version(base_directory: str) -> str:
  """Above every numeric entry, folder or file, broken or not."""
  highest = versions.highest_number(base_directory)
  version = int(time.time())
  if highest is not None and highest >= version:
    version = highest + 1
  return str(version)


def _last_change(folder: str) -> float:
  """The newest modification time of the folder and of anything inside."""
  newest = os.lstat(folder).st_mtime
  for root, dirs, files in os.walk(folder):
    for name in dirs + files:
      try:
        newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
      except FileNotFoundError:  # removed meanwhile: it was being changed
        return time.time()
  return newest


def remove_stale_staging(base_directory: str) -> List[str]:
  """Removes the staging folders of dead pushes; returns their paths."""
  removed = []
  now = time.time()
  for name in sorted(os.listdir(base_directory)):
    path = os.path.join(base_directory, name)
    if not name.startswith(layout.STAGING_PREFIX) or os.path.islink(path):
      continue
    try:
      idle = now - _last_change(path)
    except FileNotFoundError:  # renamed or removed by its own push
      continue
    if idle < STALE_STAGING_SECONDS:
      continue
    if os.path.isdir(path):
      tf.io.gfile.rmtree(path)
    else:
      os.remove(path)
    logging.warning('Removed %s, the staging folder of a push that stopped '
                    '%.0f minutes ago without finishing.', path, idle / 60)
    removed.append(path)
  return removed


def publish(model_path: str, base_directory: str,
            before_publish: Optional[BeforePublish] = None) -> str:
  """Copies model_path to base_directory/<new version>; returns the path.
  `before_publish(folder, version)` adds files to the copy before it
  becomes the version."""
  if '://' in base_directory:
    # Object stores cannot rename folders atomically; copy in place with
    # saved_model.pb last, as TFX does (TF Serving waits for that file).
    version = next_version(base_directory)
    target = os.path.join(base_directory, version)
    if tf.io.gfile.exists(target):
      raise VersionExistsError(f'{target} exists; not overwriting it')
    io_utils.copy_dir(model_path, target,
                      deny_regex_patterns=[r'saved_model\.pb'])
    if before_publish:
      before_publish(target, version)
    io_utils.copy_file(os.path.join(model_path, layout.SAVED_MODEL_FILE),
                       os.path.join(target, layout.SAVED_MODEL_FILE))
    return target
  tf.io.gfile.makedirs(base_directory)
  remove_stale_staging(base_directory)
  staging = os.path.join(base_directory,
                         layout.STAGING_PREFIX + uuid.uuid4().hex)
  try:
    io_utils.copy_dir(model_path, staging)
    if not tf.io.gfile.exists(os.path.join(staging, layout.SAVED_MODEL_FILE)):
      raise FileNotFoundError(f'{model_path} holds no saved_model.pb')
    version = next_version(base_directory)
    target = os.path.join(base_directory, version)
    if before_publish:
      before_publish(staging, version)
    if tf.io.gfile.exists(target):
      raise VersionExistsError(f'{target} exists; not overwriting it')
    tf.io.gfile.rename(staging, target, overwrite=False)
    return target
  finally:
    if tf.io.gfile.exists(staging):
      tf.io.gfile.rmtree(staging)


def read_run(executor_context, input_dict) -> run_lib.Run:
  """The run as the card sees it: the Pusher's inputs, read by the run
  report's reader (TFX's `model_blessing` is its `blessing`)."""
  keys = {reading.MODEL_KEY: specs.MODEL_KEY,
          reading.BLESSING_KEY: specs.MODEL_BLESSING_KEY,
          reading.EVALUATION_KEY: EVALUATION_KEY,
          reading.EXAMPLES_KEY: EXAMPLES_KEY,
          reading.EXTERNAL_EXAMPLES_KEY: EXTERNAL_EXAMPLES_KEY}
  info = executor_context and executor_context.pipeline_info
  return reading.read_run(
      {ours: input_dict.get(theirs) or [] for ours, theirs in keys.items()},
      pipeline_name=info.id if info else '',
      run_id=(executor_context and executor_context.pipeline_run_id) or '')


def card_writer(run: run_lib.Run, base_directory: str) -> BeforePublish:
  """Builds the card now (the costly part); writes it, with its version,
  into assets.extra/ of the folder being published."""
  built = model_card.build(run)

  def write(folder: str, version: str) -> None:
    card = model_card.with_version(built, version,
                                   os.path.join(base_directory, version))
    card_files.write(card, os.path.join(folder, layout.MODEL_CARD_DIR))
  return write


def statistics_writer(statistics) -> BeforePublish:
  """Writes the train split's statistics into the version; nothing when
  the Pusher was given no statistics."""
  if statistics is None:
    return lambda folder, version: None
  data = stats_artifact_utils.load_statistics(
      statistics, names.TRAIN_SPLIT).proto().SerializeToString()

  def write(folder: str, version: str) -> None:
    del version  # the same statistics whatever the version
    path = os.path.join(folder, layout.TRAINING_STATISTICS_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, 'wb') as f:
      f.write(data)
  return write


def both(first: BeforePublish, second: BeforePublish) -> BeforePublish:
  def write(folder: str, version: str) -> None:
    first(folder, version)
    second(folder, version)
  return write


class Executor(tfx_pusher.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    self._log_startup(input_dict, output_dict, exec_properties)
    pushed = artifact_utils.get_single_instance(
        output_dict[specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(pushed)
      logging.info('Model not blessed: nothing pushed; the served versions '
                   'are unchanged.')
      return
    destination = pusher_pb2.PushDestination()
    proto_utils.json_to_proto(exec_properties[specs.PUSH_DESTINATION_KEY],
                              destination)
    if destination.WhichOneof('destination') != 'filesystem':
      raise NotImplementedError('only filesystem push destinations')
    base = destination.filesystem.base_directory
    statistics = input_dict.get(STATISTICS_KEY)
    target = publish(self.GetModelPath(input_dict), base, both(
        card_writer(read_run(self._context, input_dict), base),
        statistics_writer(artifact_utils.get_single_instance(statistics)
                          if statistics else None)))
    self._MarkPushed(pushed, pushed_destination=target,
                     pushed_version=os.path.basename(target))
    logging.info('Pushed version %s to %s.', os.path.basename(target), target)
