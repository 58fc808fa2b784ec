"""PneumoniaTrainer: TFX's Trainer (dotted run_fn) plus per-run options.

Same inputs, outputs and run_fn contract as tfx.components.Trainer; the
options in config.RUNTIME_TRAINING_KEYS are execution parameters of their
own, so each may be a RuntimeParameter when compiling for Kubeflow.
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
from contract import settings as config

_TYPES = {'epochs': int, 'image_size': int, 'batch_size': int,
          'architectures': str, 'resnet_weights': str,
          'target_sensitivity': float}


class PneumoniaTrainerSpec(specs.TrainerSpec):
  PARAMETERS = dict(specs.TrainerSpec.PARAMETERS, **{
      key: ExecutionParameter(type=_TYPES[key], optional=True)
      for key in config.RUNTIME_TRAINING_KEYS})


class PneumoniaTrainer(base_component.BaseComponent):
  SPEC_CLASS = PneumoniaTrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

  def __init__(self, examples: types.BaseChannel, schema: types.BaseChannel,
               training: Dict[str, Any],
               runtime: Optional[Dict[str, Any]] = None):
    """Args:
      examples, schema: as for tfx.components.Trainer.
      training: config.training_config() settings (compiled in).
      runtime: per-run values or RuntimeParameters for
        config.RUNTIME_TRAINING_KEYS; missing keys keep `training`'s value.
    """
    runtime = {key: (','.join(value) if isinstance(value, (list, tuple))
                     else value) for key, value in (runtime or {}).items()}
    unknown = set(runtime) - set(config.RUNTIME_TRAINING_KEYS)
    if unknown:
      raise ValueError(f'not per-run options: {sorted(unknown)}')
    super().__init__(spec=PneumoniaTrainerSpec(
        examples=examples, schema=schema,
        train_args=trainer_pb2.TrainArgs(splits=['train']),
        eval_args=trainer_pb2.EvalArgs(splits=['eval']),
        run_fn=config.TRAINER_RUN_FN,
        custom_config=json.dumps({'training': training}),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun),
        **runtime))
