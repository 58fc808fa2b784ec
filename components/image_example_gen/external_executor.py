"""Executor of ExternalImageExampleGen: an external cohort, ingested apart.

The same walk, checks, dedup and sink as the main data (executor.py), into
one split, EXTERNAL_SPLIT, also dropping every image its `reference_examples`
(the main data) hold. An empty input_base means the cohort is absent: an
empty split, `layout.COHORT_PRESENT` 0 on the artifact. With threshold_from
'external' a present cohort is split by a hash of patient_id into two
halves, CALIBRATION_SPLIT (the operating threshold is chosen there) and
EXTERNAL_SPLIT (evaluated), and ingestion fails when the calibration half
has too few PNEUMONIA images to choose a threshold on.
"""
import os
from typing import Any, Dict, List, Tuple

from absl import logging
from tfx import types
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.image_example_gen import executor
from components.image_example_gen import ingestion_report
from contract import layout
from contract import names as constants

# The external cohort's input: the main data's Examples, to drop its images.
REFERENCE_EXAMPLES_KEY = 'reference_examples'
# The external cohort's input_base when there is none (Kubeflow compiles the
# branch in; an empty runtime value of its data root means "no cohort").
NO_COHORT = ''
# The external cohort's execution parameter: where the operating threshold
# is chosen (contract.options TrainingSettings.threshold_from).
THRESHOLD_FROM_KEY = 'threshold_from'


def external_split_config() -> example_gen_pb2.Output:
  """One split, EXTERNAL_SPLIT, holding the whole external cohort."""
  return example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(splits=[
          example_gen_pb2.SplitConfig.Split(name=constants.EXTERNAL_SPLIT,
                                            hash_buckets=1)]))


def calibration_split_config() -> example_gen_pb2.Output:
  """Two halves of the cohort by hash of patient_id (TFX's partitioning:
  whole patients per half, the same halves on every run):
  CALIBRATION_SPLIT chooses the threshold, EXTERNAL_SPLIT is evaluated."""
  return example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(
          splits=[example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=1)
                  for name in (constants.CALIBRATION_SPLIT,
                               constants.EXTERNAL_SPLIT)],
          partition_feature_name=constants.PATIENT_ID_KEY))


def threshold_from(exec_properties: Dict[str, Any]) -> str:
  """The resolved threshold_from; unset or empty is 'eval'."""
  value = (exec_properties.get(THRESHOLD_FROM_KEY)
           or constants.THRESHOLD_FROM_EVAL)
  if value not in constants.THRESHOLD_SOURCES:
    raise ValueError(f'unknown {THRESHOLD_FROM_KEY} {value!r}; choose from '
                     f'{", ".join(constants.THRESHOLD_SOURCES)}')
  return value


def _split_names(exec_properties: Dict[str, Any]) -> Tuple[str, ...]:
  config = proto_utils.json_to_proto(
      exec_properties[specs.OUTPUT_CONFIG_KEY], example_gen_pb2.Output())
  return tuple(split.name for split in config.split_config.splits)


def main_data_patterns(reference: types.Artifact) -> List[str]:
  """A file pattern per split of the main data's Examples artifact."""
  return [os.path.join(artifact_utils.get_split_uri([reference], split), '*')
          for split in artifact_utils.decode_split_names(
              reference.split_names)]


class ExternalExecutor(executor.Executor):
  """Ingests an external cohort: one split, no image the main data holds.

  An input_base of NO_COHORT is a cohort that is absent on this run: the
  split is written empty and the artifact says so (`layout.COHORT_PRESENT`
  0), so downstream gates can tell "no cohort" from "a cohort with no
  usable image".
  """

  def _run(self, input_dict, examples,
           exec_properties) -> executor.IngestionRun:
    run = super()._run(None, examples, exec_properties)
    reference = artifact_utils.get_single_instance(
        input_dict[REFERENCE_EXAMPLES_KEY])
    run.main_data_patterns = main_data_patterns(reference)
    run.present = run.input_base != NO_COHORT
    run.split_names = _split_names(exec_properties)
    run.threshold_from = threshold_from(exec_properties)
    return run

  def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]):
    """With threshold_from 'external', a present cohort in two halves;
    then the calibration half must hold enough PNEUMONIA images.

    The check runs after the report is written (it counts the halves), so
    the failed execution still leaves the report to read; the Trainer waits
    for the external validation, so the run stops before training.
    """
    source = threshold_from(exec_properties)
    present = exec_properties[specs.INPUT_BASE_KEY] != NO_COHORT
    halves = source == constants.THRESHOLD_FROM_EXTERNAL and present
    if halves:
      exec_properties = dict(exec_properties, **{
          specs.OUTPUT_CONFIG_KEY: proto_utils.proto_to_json(
              calibration_split_config())})
    elif source == constants.THRESHOLD_FROM_EXTERNAL:
      logging.warning('threshold_from is external but no external cohort '
                      'was given: the threshold stays the one chosen on the '
                      'eval split.')
    super().Do(input_dict, output_dict, exec_properties)
    artifact = artifact_utils.get_single_instance(
        output_dict[specs.EXAMPLES_KEY])
    artifact.set_string_custom_property(layout.THRESHOLD_FROM, source)
    if halves:
      problem = ingestion_report.calibration_shortfall(
          ingestion_report.read_report(
              ingestion_report.report_path(artifact.uri)))
      if problem:
        raise ValueError(problem)
