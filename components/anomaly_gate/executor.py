"""Executor of AnomalyGate: fail with the anomalies named, or pass."""
import os
from typing import Dict, List

from absl import logging
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as validator_executor
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs


class DataValidationError(RuntimeError):
  """The data does not match the curated schema."""


def read_anomalies(anomalies_artifact) -> Dict[str, anomalies_pb2.Anomalies]:
  """Anomalies proto of each split of an ExampleAnomalies artifact."""
  result = {}
  for split in artifact_utils.decode_split_names(
      anomalies_artifact.split_names):
    path = os.path.join(
        artifact_utils.get_split_uri([anomalies_artifact], split),
        validator_executor.DEFAULT_FILE_NAME)
    anomalies = anomalies_pb2.Anomalies()
    with tf.io.gfile.GFile(path, 'rb') as f:
      anomalies.ParseFromString(f.read())
    result[split] = anomalies
  return result


def describe(per_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
  """One line per anomaly: split, feature, short and long description."""
  lines = []
  for split, anomalies in sorted(per_split.items()):
    for feature, info in sorted(anomalies.anomaly_info.items()):
      lines.append(f'[{split}] feature {feature!r}: {info.short_description}'
                   f' -- {info.description}')
    if anomalies.HasField('dataset_anomaly_info'):
      info = anomalies.dataset_anomaly_info
      lines.append(f'[{split}] dataset: {info.short_description} -- '
                   f'{info.description}')
  return lines


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    anomalies_artifact = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.ANOMALIES_KEY])
    problems = describe(read_anomalies(anomalies_artifact))
    if problems:
      raise DataValidationError(
          f'Data validation found {len(problems)} anomal'
          f"{'y' if len(problems) == 1 else 'ies'} against "
          'schemas/schema.pbtxt; the run stops here:\n  ' +
          '\n  '.join(problems))
    logging.info('Data validation passed: no anomalies in any split.')
