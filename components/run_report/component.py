"""RunReport: writes OUTPUT_DIR/reports/<run id>/report.html for people.

Inputs are what the run produced (all but `examples` optional, so the
report also works when the run stops after evaluation). It is never served
from cache: every run gets its report (pipeline/compilation.py NEVER_CACHED).
`external_examples` is an external cohort's Examples, when the run has one.
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.run_report import executor
from components.run_report import reading


class RunReportSpec(ComponentSpec):
  PARAMETERS = {
      executor.REPORTS_DIR_KEY: ExecutionParameter(type=str),
      executor.PIPELINE_NAME_KEY: ExecutionParameter(type=str),
  }
  INPUTS = {
      reading.EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
      reading.MODEL_RUN_KEY: ChannelParameter(
          type=standard_artifacts.ModelRun, optional=True),
      reading.MODEL_KEY: ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      reading.EVALUATION_KEY: ChannelParameter(
          type=standard_artifacts.ModelEvaluation, optional=True),
      reading.BLESSING_KEY: ChannelParameter(
          type=standard_artifacts.ModelBlessing, optional=True),
      reading.BASELINE_KEY: ChannelParameter(
          type=standard_artifacts.Model, optional=True),
      reading.PUSHED_MODEL_KEY: ChannelParameter(
          type=standard_artifacts.PushedModel, optional=True),
      reading.EXTERNAL_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
      reading.DRIFT_KEY: ChannelParameter(
          type=standard_artifacts.ExampleAnomalies, optional=True),
  }
  OUTPUTS = {}


class RunReport(base_component.BaseComponent):
  SPEC_CLASS = RunReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, reports_dir: str,
               pipeline_name: str,
               model_run: Optional[types.BaseChannel] = None,
               model: Optional[types.BaseChannel] = None,
               evaluation: Optional[types.BaseChannel] = None,
               blessing: Optional[types.BaseChannel] = None,
               baseline_model: Optional[types.BaseChannel] = None,
               pushed_model: Optional[types.BaseChannel] = None,
               external_examples: Optional[types.BaseChannel] = None,
               drift: Optional[types.BaseChannel] = None):
    super().__init__(spec=RunReportSpec(
        examples=examples, model_run=model_run, model=model,
        evaluation=evaluation, blessing=blessing,
        baseline_model=baseline_model, pushed_model=pushed_model,
        external_examples=external_examples, drift=drift,
        reports_dir=reports_dir, pipeline_name=pipeline_name))
