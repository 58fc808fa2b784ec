"""Command-line options shared by local_runner.py and kubeflow_runner.py,
generated from the declarations in contract/options.py."""
import argparse
import dataclasses
from typing import Any, Dict, List, Sequence

from contract import options


def flag(name: str) -> str:
  return '--' + name.replace('_', '-')


def _describe_profile(name: str) -> str:
  settings = options.training_settings(name)
  return (f'{settings.image_size} px, up to {settings.epochs} epochs, '
          f'batch {settings.batch_size}')


def _default_text(field) -> str:
  value = options.to_parameter(field, field.default)
  by_profile = {name: profile[field.name]
                for name, profile in options.PROFILES.items()
                if field.name in profile}
  if not by_profile:
    return f'default {value}'
  return 'default: ' + ', '.join(
      [f'{name} {v}' for name, v in by_profile.items()] +
      [f'{name} {value}' for name in options.PROFILES
       if name not in by_profile])


def _add_group(parser: argparse.ArgumentParser, group, defaults) -> None:
  """An argparse group of `group`'s command-line options. Training options
  default to None: "the profile's value" (the help shows the full one)."""
  title, description = group.GROUP
  arguments = parser.add_argument_group(title, description)
  if group is options.TrainingSettings:
    arguments.add_argument(
        '--profile', choices=sorted(options.PROFILES),
        default=options.DEFAULT_PROFILE,
        help='; '.join(f'{name}: {_describe_profile(name)}'
                       for name in options.PROFILES) +
        '. Default: %(default)s')
  for field in options.cli_fields(group):
    default = getattr(defaults, field.name) if defaults else None
    if field.type is bool:
      arguments.add_argument(flag(field.name), action='store_true',
                             default=default or None,
                             help=field.metadata['help'])
      continue
    arguments.add_argument(
        flag(field.name), default=default,
        help=f"{field.metadata['help']} ({_default_text(field)})".replace(
            '%', '%%'),
        metavar=field.metadata.get('metavar'),
        type=options.parse_list if options.is_list(field) else field.type)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
  _add_group(parser, options.TrainingSettings, None)


def add_blessing_arguments(parser: argparse.ArgumentParser) -> None:
  _add_group(parser, options.Gates, options.Gates())


def add_beam_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      '--beam-arg', action='append', default=[], metavar='ARG',
      help='Beam pipeline argument passed to every Beam-powered component, '
      'repeatable, e.g. --beam-arg=--runner=FlinkRunner '
      '--beam-arg=--flink_master=host:8081')


# Beam runners known not to run our stages, and why (tests/test_dask_runner.py
# tracks the Dask runner; README "Beam at scale").
UNSUPPORTED_RUNNERS = {
    'DaskRunner': (
        "Apache Beam 2.60's DaskRunner cannot run this pipeline's Beam "
        'stages: it passes every Beam option to distributed.Client (which '
        'refuses them), and it runs a DoFn as process() only, without side '
        'inputs (every beam.io write needs them), tagged outputs or '
        'setup/start_bundle. Keep the DirectRunner (the default) or use '
        'Flink, Spark or Dataflow'),
}


def _runner_names(beam_args: Sequence[str]) -> List[str]:
  """The runner named in Beam args: --runner=X or --runner X."""
  names = []
  for i, arg in enumerate(beam_args):
    if arg.startswith('--runner='):
      names.append(arg.split('=', 1)[1])
    elif arg == '--runner' and i + 1 < len(beam_args):
      names.append(beam_args[i + 1])
  return names


def beam_problems(beam_args: Sequence[str]) -> List[str]:
  """A message per runner in beam_args that cannot run the pipeline, so the
  run stops before any stage instead of failing inside one."""
  return [f'--beam-arg=--runner={name}: {UNSUPPORTED_RUNNERS[short]}'
          for name in _runner_names(beam_args)
          for short in [name.rsplit('.', 1)[-1]]
          if short in UNSUPPORTED_RUNNERS]


def _values(args: argparse.Namespace, group) -> Dict[str, Any]:
  return {field.name: getattr(args, field.name)
          for field in options.cli_fields(group)}


def training_from_args(args: argparse.Namespace) -> options.TrainingSettings:
  return options.training_settings(args.profile,
                                   **_values(args, options.TrainingSettings))


def blessing_from_args(args: argparse.Namespace) -> options.Gates:
  return dataclasses.replace(options.Gates(), **_values(args, options.Gates))
