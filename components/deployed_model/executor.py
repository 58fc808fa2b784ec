"""Executor of DeployedModel: newest version under the push destination.

Replaces the MLMD Resolver (LatestBlessedModelStrategy), which open-source
Kubeflow Pipelines cannot run: it asks the serving folder itself, so it
behaves the same under the local runner and Kubeflow and always compares with
what TF Serving actually serves. The SavedModel is copied into the output
artifact (`<uri>/Format-Serving`), so the evaluation keeps its baseline even
if the served folder changes later.
"""
import os
from typing import Optional, Tuple

from absl import logging
import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from contract import layout

PUSH_DESTINATION_KEY = 'push_destination'
MODEL_KEY = 'model'


def newest_version(base_directory: str) -> Optional[Tuple[str, str]]:
  """(version, path) of the highest numeric version with a SavedModel, as TF
  Serving would serve it; None when nothing is deployed."""
  if not tf.io.gfile.isdir(base_directory):
    return None
  versions = []
  for name in tf.io.gfile.listdir(base_directory):
    name = name.rstrip('/')
    path = os.path.join(base_directory, name)
    if name.isascii() and name.isdigit() and tf.io.gfile.exists(
        os.path.join(path, layout.SAVED_MODEL_FILE)):
      versions.append((int(name), name, path))
  if not versions:
    return None
  _, name, path = max(versions)
  return name, path


def is_found(model_artifact) -> bool:
  return bool(model_artifact.get_int_custom_property(layout.DEPLOYED_FOUND))


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
    base = exec_properties[PUSH_DESTINATION_KEY]
    found = newest_version(base)
    if found is None:
      model.set_int_custom_property(layout.DEPLOYED_FOUND, 0)
      logging.info('No model is deployed under %s: the candidate will be '
                   'judged on value thresholds alone.', base)
      return
    version, path = found
    io_utils.copy_dir(path, path_utils.serving_model_path(model.uri))
    model.set_int_custom_property(layout.DEPLOYED_FOUND, 1)
    model.set_string_custom_property(layout.DEPLOYED_VERSION, version)
    model.set_string_custom_property(layout.DEPLOYED_PATH, path)
    logging.info('Baseline: deployed version %s (%s).', version, path)
