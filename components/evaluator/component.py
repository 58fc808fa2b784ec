"""OperatingPointEvaluator: TFX's Evaluator with components/evaluator's
executor (metrics at the model's stored threshold, reasons written out)."""
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.evaluator import executor


class OperatingPointEvaluator(tfx.components.Evaluator):
  EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
