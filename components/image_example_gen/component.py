"""ImageExampleGen: a FileBasedExampleGen for NORMAL/PNEUMONIA image trees."""
import os
from typing import List, Optional

from tfx.components import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.image_example_gen import driver
from components.image_example_gen import executor
from contract import names as constants


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


def ingest_outside_pipeline(
    input_base: str, output_uri: str,
    beam_pipeline_args: Optional[List[str]] = None
) -> standard_artifacts.Examples:
  """Runs the executor on a folder without a pipeline or ML Metadata, as the
  component would (benchmarks, tests, one-off conversions)."""
  examples = standard_artifacts.Examples()
  examples.uri = output_uri
  run = executor.Executor(executor.Executor.Context(
      beam_pipeline_args=beam_pipeline_args or [],
      tmp_dir=os.path.join(output_uri, '.tmp'), unique_id='standalone'))
  run.Do({}, {'examples': [examples]}, {
      'input_base': input_base,
      'input_config': proto_utils.proto_to_json(image_tree_input_config()),
      'output_config': proto_utils.proto_to_json(patient_split_config()),
      'output_data_format': example_gen_pb2.FORMAT_TF_EXAMPLE,
  })
  return examples
