"""Executor of AnomalyGate: fail with the anomalies named, or pass.

TFDV does not validate a split without examples: its Anomalies then hold no
anomaly, only ``data_missing``. So an external cohort's artifact says
whether the cohort was given at all (`layout.COHORT_PRESENT`): absent, the
gate passes and says so; present, an empty split of it is a problem too (all
its images rejected or already in the main data).
"""
import os
from typing import Dict, List

from absl import logging
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as validator_executor
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.types import standard_component_specs

from components import cohort
from contract import layout


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


def describe_empty(per_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
  """One line per split that TFDV did not validate for lack of examples."""
  return [f'[{split}] dataset: no examples -- the cohort was given but none '
          f'of its images is usable (see {layout.INGESTION_REPORT_FILE})'
          for split, anomalies in sorted(per_split.items())
          if anomalies.data_missing]


class Executor(base_executor.BaseExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    examples = input_dict.get(standard_component_specs.EXAMPLES_KEY)
    present = (cohort.cohort_present(
        artifact_utils.get_single_instance(examples)) if examples else None)
    if present is False:
      logging.info('The external cohort is absent on this run (%s = 0): '
                   'nothing to validate, the gate passes.',
                   layout.COHORT_PRESENT)
      return
    anomalies_artifact = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.ANOMALIES_KEY])
    per_split = read_anomalies(anomalies_artifact)
    problems = describe(per_split)
    if present:
      problems += describe_empty(per_split)
    if problems:
      raise DataValidationError(
          f'Data validation found {len(problems)} anomal'
          f"{'y' if len(problems) == 1 else 'ies'} against "
          'schemas/schema.pbtxt; the run stops here:\n  ' +
          '\n  '.join(problems))
    logging.info('Data validation passed: no anomalies in any split.')
