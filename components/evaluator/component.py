"""OperatingPointEvaluator: TFX's Evaluator with per-run blessing gates.

Same inputs and outputs as tfx.components.Evaluator, plus an optional
`external_examples` (an external cohort, judged too when present); its
executor (components/evaluator/executor.py) measures at the candidate's
stored operating threshold and writes the reasons of its decision. The
gates (contract.options.Gates) are execution parameters of their own, so
each may be a RuntimeParameter when compiling for Kubeflow.
"""
from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components.evaluator import executor
from components.evaluator import eval_config as evaluation
from contract import options


class OperatingPointEvaluatorSpec(specs.EvaluatorSpec):
  PARAMETERS = dict(specs.EvaluatorSpec.PARAMETERS, **{
      field.name: ExecutionParameter(type=options.parameter_type(field))
      for field in options.runtime_fields(options.Gates)})
  INPUTS = dict(specs.EvaluatorSpec.INPUTS, **{
      executor.EXTERNAL_EXAMPLES_KEY: ChannelParameter(
          type=standard_artifacts.Examples, optional=True)})


class OperatingPointEvaluator(base_beam_component.BaseBeamComponent):
  SPEC_CLASS = OperatingPointEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: types.BaseChannel, schema: types.BaseChannel,
               example_splits: List[str], gates: options.Gates,
               runtime: Optional[Dict[str, Any]] = None,
               external_examples: Optional[types.BaseChannel] = None):
    """Args:
      examples, model, baseline_model, schema: as for TFX's Evaluator.
      example_splits: the splits to evaluate on.
      gates: the blessing gates compiled in.
      runtime: RuntimeParameters (or values) replacing some of the gates.
      external_examples: an external cohort (split names.EXTERNAL_SPLIT),
        also evaluated and gated unless its layout.COHORT_PRESENT is 0.
    """
    parameters = options.runtime_values(gates)
    parameters.update(runtime or {})
    super().__init__(spec=OperatingPointEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        schema=schema, external_examples=external_examples,
        example_splits=json_utils.dumps(example_splits),
        eval_config=evaluation.eval_config(gates),
        fairness_indicator_thresholds=json_utils.dumps(None),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        **parameters))
