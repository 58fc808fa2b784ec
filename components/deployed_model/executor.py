"""Executor of DeployedModel: newest loadable version under the push
destination.

Replaces the MLMD Resolver (LatestBlessedModelStrategy), which open-source
Kubeflow Pipelines cannot run: it asks the serving folder itself, so it
behaves the same under the local runner and Kubeflow and always compares with
what TF Serving actually serves. A version that does not load (a folder left
half-written, variables deleted) is skipped and named, not taken as the
baseline: otherwise the Evaluator would fail on it in every later run. The
SavedModel is copied into the output artifact (`<uri>/Format-Serving`), so
the evaluation keeps its baseline even if the served folder changes later.
"""
import dataclasses
import json

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils
from tfx.utils import path_utils

from components.deployed_model import versions
from contract import layout

PUSH_DESTINATION_KEY = 'push_destination'
MODEL_KEY = 'model'


def is_found(model_artifact) -> bool:
  return bool(model_artifact.get_int_custom_property(layout.DEPLOYED_FOUND))


def skipped(model_artifact) -> list:
  """[{'version', 'path', 'reason'}] of the broken versions passed over."""
  text = model_artifact.get_string_custom_property(layout.DEPLOYED_SKIPPED)
  return json.loads(text) if text else []


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    model = artifact_utils.get_single_instance(output_dict[MODEL_KEY])
    base = exec_properties[PUSH_DESTINATION_KEY]
    found = versions.newest_loadable(base)
    for entry in found.skipped:
      logging.warning('Serving folder entry %s is not a usable model (%s); '
                      'skipped as the baseline. TF Serving serves the highest '
                      'number: the next push will be numbered above it.',
                      entry.path, entry.reason)
    model.set_string_custom_property(layout.DEPLOYED_SKIPPED, json.dumps(
        [dataclasses.asdict(entry) for entry in found.skipped]))
    if found.version is None:
      model.set_int_custom_property(layout.DEPLOYED_FOUND, 0)
      logging.info('No loadable model is deployed under %s: the candidate '
                   'will be judged on value thresholds alone.', base)
      return
    io_utils.copy_dir(found.path, path_utils.serving_model_path(model.uri))
    model.set_int_custom_property(layout.DEPLOYED_FOUND, 1)
    model.set_string_custom_property(layout.DEPLOYED_VERSION, found.version)
    model.set_string_custom_property(layout.DEPLOYED_PATH, found.path)
    logging.info('Baseline: deployed version %s (%s).', found.version,
                 found.path)
