"""SiteCalibration: where the operating threshold is chosen, per run.

Between the Trainer and whatever reads its model (Evaluator, Pusher,
RunReport). Inputs: `model` (the Trainer's candidate) and
`external_examples` (ExternalImageExampleGen's, optional). Execution
parameters (each may be a RuntimeParameter; contract.options
TrainingSettings declares them): `threshold_from` and `target_sensitivity`.
Output: `calibrated_model`, a Model artifact: with threshold_from
'external' and a cohort present, the candidate re-saved with the threshold
chosen on the cohort's calibration half; otherwise the candidate's files
unchanged. Its `assets.extra/model_info.json` says which data chose the
threshold (`threshold_source`); see executor.py.
"""
from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.site_calibration import executor
from contract import options

MODEL_KEY = executor.MODEL_KEY
EXTERNAL_EXAMPLES_KEY = executor.EXTERNAL_EXAMPLES_KEY
CALIBRATED_MODEL_KEY = executor.CALIBRATED_MODEL_KEY
_FIELDS = {f.name: f for f in options.runtime_fields(options.TrainingSettings)}


class SiteCalibrationSpec(ComponentSpec):
  PARAMETERS = {
      name: ExecutionParameter(type=options.parameter_type(_FIELDS[name]),
                               optional=True)
      for name in (executor.THRESHOLD_FROM_KEY,
                   executor.TARGET_SENSITIVITY_KEY)}
  INPUTS = {
      MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
      EXTERNAL_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {
      CALIBRATED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model)}


Value = Union[str, float, data_types.RuntimeParameter, None]


class SiteCalibration(base_component.BaseComponent):
  SPEC_CLASS = SiteCalibrationSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, model: types.BaseChannel,
               external_examples: Optional[types.BaseChannel] = None,
               threshold_from: Value = None,
               target_sensitivity: Value = None):
    """Args:
      model: the Trainer's Model.
      external_examples: the external cohort's Examples (None: no cohort
        branch; the candidate passes on).
      threshold_from, target_sensitivity: values or RuntimeParameters; None
        is the TrainingSettings default.
    """
    parameters = {}
    for name, value in ((executor.THRESHOLD_FROM_KEY, threshold_from),
                        (executor.TARGET_SENSITIVITY_KEY, target_sensitivity)):
      field = _FIELDS[name]
      parameters[name] = options.to_parameter(
          field, field.default if value is None else value)
    super().__init__(spec=SiteCalibrationSpec(
        model=model, external_examples=external_examples,
        calibrated_model=types.Channel(type=standard_artifacts.Model),
        **parameters))
