"""ImageExampleGen: a FileBasedExampleGen for NORMAL/PNEUMONIA image trees.

ExternalImageExampleGen ingests an external cohort (another site or period)
by the same rules into one split of its own, for evaluation only; with
threshold_from 'external', into two halves by patient (CALIBRATION_SPLIT,
where the operating threshold is chosen, and EXTERNAL_SPLIT, where it is
evaluated).
"""
import os
from typing import List, Optional, Union

from tfx import types
from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import proto_utils

from components.image_example_gen import driver
from components.image_example_gen import executor
from components.image_example_gen import external_executor
from contract import names as constants

# Re-exported for the pipeline and tests.
REFERENCE_EXAMPLES_KEY = external_executor.REFERENCE_EXAMPLES_KEY
NO_COHORT = external_executor.NO_COHORT
THRESHOLD_FROM_KEY = external_executor.THRESHOLD_FROM_KEY


def image_tree_input_config() -> example_gen_pb2.Input:
  """One input "split": the whole tree (the executor walks it itself)."""
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name='images', pattern='*')])


def patient_split_config() -> example_gen_pb2.Output:
  """70/20/10 train/eval/test by hash of patient_id: no patient in two splits."""
  return example_gen_pb2.Output(
      split_config=example_gen_pb2.SplitConfig(
          splits=[example_gen_pb2.SplitConfig.Split(name=name,
                                                    hash_buckets=buckets)
                  for name, buckets in constants.SPLITS],
          partition_feature_name=constants.PATIENT_ID_KEY))


def external_split_config() -> example_gen_pb2.Output:
  """One split, EXTERNAL_SPLIT, holding the whole external cohort."""
  return external_executor.external_split_config()


def calibration_split_config() -> example_gen_pb2.Output:
  """Two halves by hash of patient_id: CALIBRATION_SPLIT, EXTERNAL_SPLIT."""
  return external_executor.calibration_split_config()


class ImageExampleGen(FileBasedExampleGen):
  """Reads JPEG/PNG files at any depth below `input_base`.

  The label is the nearest ancestor folder named NORMAL or PNEUMONIA (any
  case). Exact duplicates are kept once; undecodable files are reported, not
  emitted. The Examples artifact holds `ingestion_report.json`.
  """
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
  DRIVER_CLASS = driver.ImageTreeDriver

  def __init__(self, input_base: str,
               output_config: Optional[example_gen_pb2.Output] = None):
    super().__init__(
        input_base=input_base,
        input_config=image_tree_input_config(),
        output_config=output_config or patient_split_config())


class ExternalImageExampleGenSpec(
    standard_component_specs.FileBasedExampleGenSpec):
  """FileBasedExampleGen's spec plus the main data to deduplicate against."""
  INPUTS = {
      REFERENCE_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples),
  }
  PARAMETERS = dict(
      standard_component_specs.FileBasedExampleGenSpec.PARAMETERS, **{
          THRESHOLD_FROM_KEY: ExecutionParameter(type=str, optional=True)})


class ExternalImageExampleGen(ImageExampleGen):
  """An external cohort, ingested like ImageExampleGen into one split.

  Same tree rules, decode checks, rejects and dedup as the main data; all of
  it goes to the split EXTERNAL_SPLIT (never trained on). An image whose
  sha256 is also in `reference_examples` (the main data's Examples) is
  dropped and listed under `layout.IN_MAIN_DATA` in its ingestion report.
  An input_base of NO_COHORT ('') means no cohort this run: the split is
  empty and the artifact's int property `layout.COHORT_PRESENT` is 0 (1
  when a cohort was ingested). A subclass of ImageExampleGen, so whatever
  treats ingestion specially (never cached on Kubeflow) treats it so too.

  threshold_from (contract.options TrainingSettings.threshold_from; may be
  a RuntimeParameter): 'external' splits a present cohort by a hash of
  patient_id into CALIBRATION_SPLIT and EXTERNAL_SPLIT (whole patients per
  half), and fails if the calibration half holds fewer than
  operating_point.MIN_THRESHOLD_POSITIVES PNEUMONIA images; 'eval' (or
  unset) keeps the one split.
  """
  SPEC_CLASS = ExternalImageExampleGenSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(
      external_executor.ExternalExecutor)

  def __init__(self, input_base: Union[str, data_types.RuntimeParameter],
               reference_examples: types.BaseChannel,
               threshold_from: Union[
                   str, data_types.RuntimeParameter, None] = None):
    # FileBasedExampleGen.__init__ builds its own spec class, which has no
    # inputs; the spec is built here and handed to the base component.
    spec = ExternalImageExampleGenSpec(
        input_base=input_base,
        input_config=image_tree_input_config(),
        output_config=external_split_config(),
        output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
        output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        examples=types.Channel(type=standard_artifacts.Examples),
        reference_examples=reference_examples,
        **({} if threshold_from is None
           else {THRESHOLD_FROM_KEY: threshold_from}))
    base_beam_component.BaseBeamComponent.__init__(self, spec=spec)


def _run_outside_pipeline(
    executor_class, input_dict, input_base: str, output_uri: str,
    output_config: example_gen_pb2.Output,
    beam_pipeline_args: Optional[List[str]],
    **extra_properties) -> standard_artifacts.Examples:
  examples = standard_artifacts.Examples()
  examples.uri = output_uri
  run = executor_class(executor_class.Context(
      beam_pipeline_args=beam_pipeline_args or [],
      tmp_dir=os.path.join(output_uri, '.tmp'), unique_id='standalone'))
  run.Do(input_dict, {'examples': [examples]}, {
      'input_base': input_base,
      'input_config': proto_utils.proto_to_json(image_tree_input_config()),
      'output_config': proto_utils.proto_to_json(output_config),
      'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
      **extra_properties,
  })
  return examples


def ingest_outside_pipeline(
    input_base: str, output_uri: str,
    beam_pipeline_args: Optional[List[str]] = None
) -> standard_artifacts.Examples:
  """Runs the executor on a folder without a pipeline or ML Metadata, as the
  component would (benchmarks, tests, one-off conversions)."""
  return _run_outside_pipeline(executor.Executor, {}, input_base, output_uri,
                               patient_split_config(), beam_pipeline_args)


def ingest_external_outside_pipeline(
    input_base: str, output_uri: str,
    reference_examples: types.Artifact,
    beam_pipeline_args: Optional[List[str]] = None,
    threshold_from: Optional[str] = None
) -> standard_artifacts.Examples:
  """`ingest_outside_pipeline` of an external cohort, deduplicated against
  reference_examples (e.g. what `ingest_outside_pipeline` returned);
  input_base NO_COHORT ingests an absent cohort; threshold_from as for
  ExternalImageExampleGen."""
  return _run_outside_pipeline(
      external_executor.ExternalExecutor,
      {REFERENCE_EXAMPLES_KEY: [reference_examples]}, input_base, output_uri,
      external_split_config(), beam_pipeline_args,
      **({} if threshold_from is None
         else {THRESHOLD_FROM_KEY: threshold_from}))
