"""DeployedModel: a TFX component whose output is the served model, if any.

Its output is a Model artifact; `deployed_model_found` says whether a model
was deployed (the Evaluator then compares against it) or not (first run:
value thresholds alone). It must see the present, so it is never served from
cache (pipeline/compilation.py NEVER_CACHED).
"""
from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.deployed_model import executor


class DeployedModelSpec(ComponentSpec):
  PARAMETERS = {executor.PUSH_DESTINATION_KEY: ExecutionParameter(type=str)}
  INPUTS = {}
  OUTPUTS = {executor.MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


class DeployedModel(base_component.BaseComponent):
  SPEC_CLASS = DeployedModelSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, push_destination: str):
    super().__init__(spec=DeployedModelSpec(
        push_destination=push_destination,
        model=types.Channel(type=standard_artifacts.Model)))
