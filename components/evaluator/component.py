"""OperatingPointEvaluator: TFX's Evaluator with per-run blessing gates.

Same inputs and outputs as tfx.components.Evaluator; its executor
(components/evaluator/executor.py) measures at the candidate's stored
operating threshold and writes the reasons of its decision. The gates
(min_auc, min_recall, max_auc_drop) are execution parameters of their own,
so each may be a RuntimeParameter when compiling for Kubeflow.
"""
from typing import Any, Dict, List

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component
from tfx.dsl.components.base import executor_spec
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ExecutionParameter
from tfx.utils import json_utils

from components.evaluator import executor
from components.evaluator import eval_config as evaluation


class OperatingPointEvaluatorSpec(specs.EvaluatorSpec):
  PARAMETERS = dict(specs.EvaluatorSpec.PARAMETERS, **{
      gate: ExecutionParameter(type=float) for gate in evaluation.GATES})


class OperatingPointEvaluator(base_beam_component.BaseBeamComponent):
  SPEC_CLASS = OperatingPointEvaluatorSpec
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
               baseline_model: types.BaseChannel, schema: types.BaseChannel,
               example_splits: List[str], gates: Dict[str, Any]):
    """Args:
      examples, model, baseline_model, schema: as for TFX's Evaluator.
      example_splits: the splits to evaluate on.
      gates: min_auc, min_recall, max_auc_drop: values or RuntimeParameters.
    """
    super().__init__(spec=OperatingPointEvaluatorSpec(
        examples=examples, model=model, baseline_model=baseline_model,
        schema=schema, example_splits=json_utils.dumps(example_splits),
        eval_config=evaluation.eval_config(
            **{gate: 0.0 for gate in evaluation.GATES}),
        fairness_indicator_thresholds=json_utils.dumps(None),
        evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
        blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        **{gate: gates[gate] for gate in evaluation.GATES}))
