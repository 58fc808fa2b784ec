"""Every option declared in contract/options.py reaches argparse (both
runners), its component's execution parameters and the compiled KFP YAML."""
import dataclasses

import pytest

from components.evaluator import component as evaluator_component
from components.trainer import component as trainer_component
from contract import options
import kubeflow_runner
import local_runner
from runners import cli

SPECS = {options.TrainingSettings: trainer_component.PneumoniaTrainerSpec,
         options.Gates: evaluator_component.OperatingPointEvaluatorSpec}
TASKS = {options.TrainingSettings: 'Trainer', options.Gates: 'Evaluator'}
KFP_TYPES = {int: 'NUMBER_INTEGER', float: 'NUMBER_DOUBLE', str: 'STRING'}


def _other_value(field):
  """A valid value that differs from the default."""
  if field.type is bool:
    return not field.default
  if options.is_list(field):
    return field.default[:1]
  if field.type is int:
    return field.default + 1
  if field.type is float:
    return field.default / 2
  return {'resnet_weights': 'none', 'threshold_from': 'external',
          'on_drift': 'stop'}.get(
      field.name, field.default + '-x')


def _command_line():
  """Every command-line option set to a value other than its default."""
  argv, expected = [], {}
  for group in options.GROUPS:
    for field in options.cli_fields(group):
      value = _other_value(field)
      expected[field.name] = value
      if field.type is bool:
        argv.append(cli.flag(field.name))
      else:
        argv += [cli.flag(field.name), str(options.to_parameter(field, value))]
  return argv, expected


def _settings(args):
  return {**dataclasses.asdict(cli.training_from_args(args)),
          **dataclasses.asdict(cli.blessing_from_args(args))}


def test_there_are_options_to_check():
  assert len(options.cli_fields(options.TrainingSettings)) >= 7
  assert len(options.runtime_fields(options.Gates)) >= 3


@pytest.mark.parametrize('parse', [
    local_runner.parse_args,
    lambda argv: kubeflow_runner.parse_args(['compile'] + argv)])
def test_every_cli_option_reaches_the_settings(parse):
  argv, expected = _command_line()
  settings = _settings(parse(argv))
  for name, value in expected.items():
    assert settings[name] == value, name
  defaults = _settings(parse([]))
  assert all(defaults[name] != value for name, value in expected.items())


@pytest.mark.parametrize('group', options.GROUPS)
def test_every_runtime_option_is_an_execution_parameter(group):
  parameters = SPECS[group].PARAMETERS
  for field in options.runtime_fields(group):
    assert field.name in parameters, field.name
    assert parameters[field.name].type == options.parameter_type(field)


@pytest.fixture(scope='module')
def compiled():
  argv, expected = _command_line()
  args = kubeflow_runner.parse_args(
      ['compile', '--image', 'registry.example.com/p:1'] + argv)
  return kubeflow_runner.compile_spec(args), expected


@pytest.mark.parametrize('group', options.GROUPS)
def test_every_runtime_option_is_a_kfp_runtime_parameter(compiled, group):
  spec, expected = compiled
  declared = spec['root']['inputDefinitions']['parameters']
  bound = spec['root']['dag']['tasks'][TASKS[group]]['inputs']['parameters']
  for field in options.runtime_fields(group):
    assert declared[field.name]['parameterType'] == KFP_TYPES[
        options.parameter_type(field)], field.name
    assert declared[field.name]['defaultValue'] == options.to_parameter(
        field, expected[field.name]), field.name
    assert bound[field.name] == {'componentInputParameter': field.name}
  assert declared[kubeflow_runner.DATA_ROOT]['parameterType'] == 'STRING'
