"""Beam executor of ImageExampleGen: an image folder tree to tf.Examples.

Stages, all inside Beam so they scale out with the runner: `walk` lists image
files below NORMAL/PNEUMONIA folders (Kaggle's train/val/test are pooled);
`inspection` reads, hashes, names and decodes each; `dedup` keeps one copy
per sha256 and reports the rest; `encoding` makes metadata-only
tf.Examples; TFX's own partitioning splits them 70/20/10 by ``patient_id``;
`sink` writes each split, attaching the image bytes; `ingestion_report`
writes ``ingestion_report.json`` into the Examples artifact and logs one
line.

TFX's own Do runs it (split names, the Beam pipeline, the artifact's format
properties): this executor supplies the hooks that Do calls, writing the
splits and the report in one of them, and adds the summary once Do returns.

The external cohort's executor (external_executor.py) builds on this one.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import apache_beam as beam
from tfx import types
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs

from components.image_example_gen import ingest
from components.image_example_gen import ingestion_report
from components.image_example_gen import sink
# Re-exported: anomaly_gate's and trainer's tests import them from here.
# pylint: disable=unused-import,g-importing-member
from components.image_example_gen.encoding import attach_image, to_example
from components.image_example_gen.inspection import decode_shape
from components.image_example_gen.inspection import inspect_image
from components.image_example_gen.walk import Candidate
# pylint: enable=unused-import,g-importing-member
from contract import layout
from contract import names as constants

# exec_properties key carrying the run into the hooks TFX's Do calls (like
# TFX's own '_beam_pipeline_args'); never part of the component's spec.
_RUN_KEY = '_image_ingestion_run'


@dataclasses.dataclass
class IngestionRun:
  """The state of one Do call, handed explicitly to the Beam-building hooks.

  TFX's hooks receive only exec_properties, so the run travels in them
  (under _RUN_KEY) rather than in attributes of the executor.
  """
  input_base: str
  examples: List[types.Artifact]  # the output Examples, for split URIs
  report_path: str
  # Set while the graph is built: what the report needs besides the splits.
  ingested: Optional[ingest.IngestedImages] = None
  # An external cohort's: the main data's TFRecord patterns (None for the
  # main data itself), and whether the cohort has a data root at all.
  main_data_patterns: Optional[List[str]] = None
  present: bool = True
  # The output splits (as the output config names them) and, of an external
  # cohort, where the threshold is chosen.
  split_names: Tuple[str, ...] = constants.SPLIT_NAMES
  threshold_from: str = constants.THRESHOLD_FROM_EVAL

  @property
  def external(self) -> bool:
    return self.main_data_patterns is not None

  def report_cohort(self) -> Optional[Dict[str, Any]]:
    """What `ingestion_report.write_report` needs of a cohort, or None."""
    if not self.external:
      return None
    return {'present': self.present, 'num_files': self.ingested.num_files,
            'split_names': self.split_names,
            'threshold_from': self.threshold_from}


@beam.ptransform_fn
def _ImagesToExamples(  # pylint: disable=invalid-name
    pipeline, exec_properties, unused_split_pattern):
  """The input hook: the whole tree, whatever the split pattern says."""
  run = exec_properties[_RUN_KEY]
  main_data = None
  if run.external and run.present:
    main_data = ingest.read_main_data(pipeline, run.main_data_patterns)
  run.ingested = ingest.ingest_images(pipeline, run.input_base, main_data,
                                      absent=not run.present)
  return run.ingested.examples


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
  """ExampleGen executor for NORMAL/PNEUMONIA image folder trees."""

  def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
    return _ImagesToExamples

  def GenerateExamplesByBeam(self, pipeline, exec_properties):
    """TFX's partitioning; then each split written here, and the report.

    Returns no split for the base Do to write: its writer would store the
    examples without their image bytes (the sink attaches them) after a
    needless reshuffle of the images.
    """
    run = exec_properties[_RUN_KEY]
    splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
    for split, examples in splits.items():
      _ = examples | f'WriteSplit[{split}]' >> sink.write_image_split(
          artifact_utils.get_split_uri(run.examples, split), run.input_base)
    ingestion_report.write_report(
        pipeline, splits, run.ingested.duplicates, run.ingested.rejected,
        run.ingested.ignored, run.report_path, run.report_cohort(),
        run.ingested.in_main_data, run.ingested.followed_links)
    return {}

  def _run(self, input_dict, examples, exec_properties) -> IngestionRun:
    """The run of one Do call; the external executor adds its cohort."""
    del input_dict  # the main data has no inputs
    return IngestionRun(
        exec_properties[specs.INPUT_BASE_KEY], examples,
        ingestion_report.report_path(
            artifact_utils.get_single_instance(examples).uri))

  def Do(self, input_dict, output_dict, exec_properties: Dict[str, Any]):
    """TFX's Do, then the report's summary logged and put on the artifact.

    The sink writes only gzip TFRecords of tf.Examples, so those formats are
    what the artifact records, whatever exec_properties ask for.
    """
    examples = output_dict[specs.EXAMPLES_KEY]
    artifact = artifact_utils.get_single_instance(examples)
    run = self._run(input_dict, examples, exec_properties)
    super().Do(input_dict, output_dict, {
        **exec_properties, _RUN_KEY: run,
        specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP})
    artifact.set_string_custom_property(
        'ingestion_summary', ingestion_report.log_summary(run.report_path))
    if run.external:
      artifact.set_int_custom_property(layout.COHORT_PRESENT, int(run.present))
