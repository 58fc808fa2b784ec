"""AnomalyGate: a TFX component that stops the run on data anomalies.

ExampleValidator records anomalies but lets the pipeline go on; training on
data that breaks the schema is never what a hospital wants. Downstream stages
depend on this gate, so they run only on validated data.
"""
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ComponentSpec

from components.anomaly_gate import executor


class AnomalyGateSpec(ComponentSpec):
  PARAMETERS = {}
  INPUTS = {
      standard_component_specs.ANOMALIES_KEY:
          ChannelParameter(type=standard_artifacts.ExampleAnomalies),
  }
  OUTPUTS = {}


class AnomalyGate(base_component.BaseComponent):
  SPEC_CLASS = AnomalyGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies):
    super().__init__(spec=AnomalyGateSpec(anomalies=anomalies))
