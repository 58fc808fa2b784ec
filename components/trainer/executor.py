"""Executor of PneumoniaTrainer: per-run options over the compiled settings.

The training settings travel as custom_config {'training': {...}}. Options a
user changes per run (config.RUNTIME_TRAINING_KEYS: epochs, architectures,
...) are separate execution parameters, so Kubeflow can expose them as
runtime parameters; a non-empty value replaces the compiled one here, then
TFX's GenericExecutor calls run_fn as usual.
"""
import json
from typing import Any, Dict

from tfx.components.trainer import executor as tfx_trainer
from tfx.types import standard_component_specs as specs

from contract import settings as config


def merged_custom_config(exec_properties: Dict[str, Any]) -> str:
  """custom_config JSON with the per-run options applied."""
  custom_config = json.loads(exec_properties.get(specs.CUSTOM_CONFIG_KEY)
                             or '{}')
  training = dict(custom_config.get('training') or {})
  for key in config.RUNTIME_TRAINING_KEYS:
    value = exec_properties.get(key)
    if value is None or value == '':
      continue
    if key == 'architectures' and isinstance(value, str):
      value = [name.strip() for name in value.split(',') if name.strip()]
    training[key] = value
  # Validate (and fill defaults) before any work starts.
  custom_config['training'] = config.training_config(**training)
  return json.dumps(custom_config)


class Executor(tfx_trainer.GenericExecutor):

  def Do(self, input_dict, output_dict, exec_properties):
    exec_properties = dict(exec_properties)
    exec_properties[specs.CUSTOM_CONFIG_KEY] = merged_custom_config(
        exec_properties)
    for key in config.RUNTIME_TRAINING_KEYS:
      exec_properties.pop(key, None)
    super().Do(input_dict, output_dict, exec_properties)
