"""Executor of DriftCheck: compare, write `drift_report.json`, stop or warn.

Not compared (and never stopping the run): nothing deployed yet (the first
run), or a deployed version pushed before the Pusher kept its training
statistics. The report says which, so silence is never taken for "no drift".
"""
import json
import os
from typing import Any, Dict

from absl import logging
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import io_utils
from tfx.utils import path_utils

from components.deployed_model import executor as deployed
from components.drift_check import comparison
from contract import layout
from contract import names
from contract import options

ON_DRIFT_KEY = 'on_drift'
BASELINE_MODEL_KEY = 'baseline_model'
DRIFT_KEY = 'drift'
# The new data the next model would learn from.
COMPARED_SPLIT = names.TRAIN_SPLIT


class DriftError(RuntimeError):
  """The new data drifted from the deployed model's and on_drift is stop."""


def baseline_statistics_path(baseline_model) -> str:
  """Where a DeployedModel artifact's copy holds its training statistics."""
  return os.path.join(path_utils.serving_model_path(baseline_model.uri),
                      layout.TRAINING_STATISTICS_FILE)


def read_schema(schema_artifact):
  return io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
      artifact_utils.get_single_uri([schema_artifact])))


def check(statistics, schema, baseline_model, on_drift: str) -> Dict[str, Any]:
  """The drift report of one run (artifacts in, a JSON-ready dict out)."""
  report = {'compared_split': COMPARED_SPLIT, 'on_drift': on_drift,
            'baseline_version': None, 'features': [], 'drifted': []}
  if not deployed.is_found(baseline_model):
    return dict(report, status=layout.DRIFT_NO_BASELINE)
  report['baseline_version'] = baseline_model.get_string_custom_property(
      layout.DEPLOYED_VERSION)
  path = baseline_statistics_path(baseline_model)
  if not tf.io.gfile.exists(path):
    return dict(report, status=layout.DRIFT_BASELINE_WITHOUT_STATISTICS)
  baseline = tfdv.load_stats_binary(path)
  current = stats_artifact_utils.load_statistics(statistics,
                                                 COMPARED_SPLIT).proto()
  rows = comparison.compare(current, baseline, schema)
  drifted = [row['feature'] for row in rows if row['drifted']]
  return dict(report, features=rows, drifted=drifted,
              status=layout.DRIFT_FOUND if drifted else layout.DRIFT_NONE)


def read_report(drift_artifact) -> Dict[str, Any]:
  with tf.io.gfile.GFile(os.path.join(drift_artifact.uri,
                                      layout.DRIFT_REPORT_FILE)) as f:
    return json.load(f)


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    on_drift = exec_properties[ON_DRIFT_KEY]
    output = artifact_utils.get_single_instance(output_dict[DRIFT_KEY])
    output.split_names = artifact_utils.encode_split_names([COMPARED_SPLIT])
    report = check(
        artifact_utils.get_single_instance(input_dict[specs.STATISTICS_KEY]),
        read_schema(artifact_utils.get_single_instance(
            input_dict[specs.SCHEMA_KEY])),
        artifact_utils.get_single_instance(input_dict[BASELINE_MODEL_KEY]),
        on_drift)
    tf.io.gfile.makedirs(output.uri)
    with tf.io.gfile.GFile(os.path.join(output.uri,
                                        layout.DRIFT_REPORT_FILE), 'w') as f:
      json.dump(report, f, indent=2)
    lines = comparison.describe(report['features'])
    if report['status'] != layout.DRIFT_FOUND:
      logging.info('Drift check against deployed version %s: %s.',
                   report['baseline_version'], report['status'])
      return
    message = (f"The {COMPARED_SPLIT} data drifted from the data deployed "
               f"version {report['baseline_version']} was trained on "
               f"(thresholds: schemas/schema.pbtxt drift_comparator):\n  " +
               '\n  '.join(lines))
    if on_drift == options.ON_DRIFT_STOP:
      raise DriftError(message + '\nThe run stops before training '
                       '(--on-drift stop). Look at the data, or run with '
                       '--on-drift warn to train on it anyway.')
    logging.warning('%s\nTraining goes on (--on-drift warn).', message)
