"""Executor of PneumoniaTrainer: per-run options over the compiled settings.

The training settings travel as custom_config {'training': {...}}. The
runtime options (contract.options.TrainingSettings fields marked runtime)
are separate execution parameters, so Kubeflow can expose them as runtime
parameters; a non-empty value replaces the compiled one here, then TFX's
GenericExecutor calls run_fn as usual.
"""
import json
from typing import Any, Dict

from tfx.components.trainer import executor as tfx_trainer
from tfx.types import standard_component_specs as specs

from contract import options


def merged_custom_config(exec_properties: Dict[str, Any]) -> str:
  """custom_config JSON with the per-run options applied."""
  custom_config = json.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY)
                             or '{}')
  training = dict(custom_config.get('training') or {})
  for field in options.runtime_fields(options.TrainingSettings):
    value = options.from_parameter(field, exec_properties.get(field.name))
    if value is not None:
      training[field.name] = value
  # Validate (and fill defaults) before any work starts.
  custom_config['training'] = options.TrainingSettings.from_dict(
      training).to_dict()
  return json.dumps(custom_config)


class Executor(tfx_trainer.GenericExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    exec_properties = dict(exec_properties)
    exec_properties[specs.CUSTOM_CONFIG_KEY] = merged_custom_config(
        exec_properties)
    for name in options.runtime_names(options.TrainingSettings):
      exec_properties.pop(name, None)
    super().Do(input_dict, output_dict, exec_properties)
