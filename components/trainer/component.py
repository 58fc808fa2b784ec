"""PneumoniaTrainer: TFX's Trainer (dotted run_fn) plus per-run options.

Same inputs, outputs and run_fn contract as tfx.components.Trainer; every
runtime option of contract.options.TrainingSettings is an execution
parameter of its own, so each may be a RuntimeParameter when compiling for
Kubeflow.
"""
import json
from typing import Any, Dict, Optional

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ExecutionParameter

from components.trainer import executor
from contract import options
from contract import settings as config


class PneumoniaTrainerSpec(specs.TrainerSpec):
  PARAMETERS = dict(specs.TrainerSpec.PARAMETERS, **{
      field.name: ExecutionParameter(type=options.parameter_type(field),
                                     optional=True)
      for field in options.runtime_fields(options.TrainingSettings)})


class PneumoniaTrainer(base_component.BaseComponent):
  SPEC_CLASS = PneumoniaTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel,
               training: options.TrainingSettings,
               runtime: Optional[Dict[str, Any]] = None):
    """Args:
      examples, schema: as for tfx.components.Trainer.
      training: the settings compiled in.
      runtime: RuntimeParameters (or values) replacing some of `training`'s
        runtime options; the others carry `training`'s value.
    """
    runtime = dict(runtime or {})
    names = options.runtime_names(options.TrainingSettings)
    unknown = set(runtime) - set(names)
    if unknown:
      raise ValueError(f'not per-run options: {sorted(unknown)}')
    parameters = options.runtime_values(training)
    parameters.update(runtime)
    super().__init__(spec=PneumoniaTrainerSpec(
        examples=examples, schema=schema,
        train_args=trainer_pb2.TrainArgs(splits=['train']),
        eval_args=trainer_pb2.EvalArgs(splits=['eval']),
        run_fn=config.TRAINER_RUN_FN,
        custom_config=json.dumps({'training': training.to_dict()}),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun),
        **parameters))
