"""DriftCheck: does the new training data look like the deployed model's?

After StatisticsGen and before the Trainer, it compares the new train
split's statistics with those of the train split the *deployed* model was
trained on, which the Pusher copied into that version
(`layout.TRAINING_STATISTICS_FILE`); DeployedModel finds the version in the
serving folder, so no MLMD Resolver is needed (open-source Kubeflow rejects
it). Thresholds are the curated schema's `drift_comparator`s. The result,
`drift_report.json` in its ExampleAnomalies output, is shown in the run
report; with `on_drift='stop'` drift stops the run before training.
"""
from typing import Optional, Union

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.orchestration import data_types
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec
from tfx.types.component_spec import ExecutionParameter

from components.drift_check import executor
from contract import options

_ON_DRIFT = options.TrainingSettings.__dataclass_fields__['on_drift']


class DriftCheckSpec(ComponentSpec):
  PARAMETERS = {executor.ON_DRIFT_KEY: ExecutionParameter(type=str)}
  INPUTS = {
      specs.STATISTICS_KEY: ChannelParameter(
          type=standard_artifacts.ExampleStatistics),
      specs.SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
      executor.BASELINE_MODEL_KEY: ChannelParameter(
          type=standard_artifacts.Model),
  }
  OUTPUTS = {executor.DRIFT_KEY: ChannelParameter(
      type=standard_artifacts.ExampleAnomalies)}


class DriftCheck(base_component.BaseComponent):
  SPEC_CLASS = DriftCheckSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, statistics: types.BaseChannel,
               schema: types.BaseChannel,
               baseline_model: types.BaseChannel,
               on_drift: Optional[Union[str, data_types.RuntimeParameter]]
               = None):
    """statistics: the new data's (StatisticsGen); schema: the curated one;
    baseline_model: DeployedModel's output; on_drift: 'warn' or 'stop' (or
    a RuntimeParameter; None: the TrainingSettings default)."""
    super().__init__(spec=DriftCheckSpec(
        statistics=statistics, schema=schema, baseline_model=baseline_model,
        on_drift=_ON_DRIFT.default if on_drift is None else on_drift,
        drift=types.Channel(type=standard_artifacts.ExampleAnomalies)))
