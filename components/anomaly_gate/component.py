"""AnomalyGate: a TFX component that stops the run on data anomalies.

ExampleValidator records anomalies but lets the pipeline go on; training on
data that breaks the schema is never what a hospital wants. Downstream stages
depend on this gate, so they run only on validated data.

Given the `examples` it guards, the gate also knows an external cohort that
was not given this run (`layout.COHORT_PRESENT` 0): it passes, since there
is nothing to validate, instead of depending on what TFDV says of an empty
split. A present cohort's anomalies, or an empty split of it, still stop
the run.
"""
from typing import Optional

from tfx import types
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
      standard_component_specs.EXAMPLES_KEY:
          ChannelParameter(type=standard_artifacts.Examples, optional=True),
  }
  OUTPUTS = {}


class AnomalyGate(base_component.BaseComponent):
  SPEC_CLASS = AnomalyGateSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, anomalies: types.BaseChannel,
               examples: Optional[types.BaseChannel] = None):
    """anomalies: ExampleValidator's output; examples: the Examples those
    were computed from (optional; needed to pass an absent external cohort).
    """
    super().__init__(spec=AnomalyGateSpec(anomalies=anomalies,
                                          examples=examples))
