#!/usr/bin/env python
"""Runs the pneumonia pipeline on Kubeflow Pipelines (KFP v2).

  python kubeflow_runner.py compile --output pipeline.yaml \\
      --image REGISTRY/pneumonia-pipeline:TAG --pipeline-root gs://BUCKET/root \\
      --data-root gs://BUCKET/chest_xray
  python kubeflow_runner.py submit --host URL [--experiment NAME] ...
  python kubeflow_runner.py schedule --host URL --cron '0 0 3 * * 0' ...

`compile` builds the same create_pipeline(...) as local_runner.py with TFX's
KubeflowV2DagRunner into KFP v2 IR YAML. The data root, epochs,
architectures, image size, batch size, ResNet weights, target sensitivity
and the blessing gates are runtime parameters (their compiled values are the
defaults); `submit` and `schedule` compile, upload the pipeline (or a new
version of it) and start a run or a recurring run.
"""
import argparse
import os
import sys
import tempfile
from typing import Any, Dict

from absl import logging
import yaml

from contract import options
from contract import settings as config
from runners import cli

# Where the Dockerfile puts this repository inside the image.
IMAGE_CODE_DIR = '/pipeline'
DEFAULT_IMAGE = 'pneumonia-pipeline:latest'
# The data roots are runtime parameters too (besides the runtime options of
# contract/options.py). An empty external root means "no external cohort":
# its branch is always compiled in and then ingests nothing.
DATA_ROOT = 'data_root'
EXTERNAL_DATA_ROOT = 'external_data_root'


def _cron(expression: str) -> str:
  """Checks --cron at parse time (before a half-minute compile)."""
  from runners import kfp_client  # pylint: disable=g-import-not-at-top
  try:
    return kfp_client.validate_cron(expression)
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest='command', required=True)
  compile_cmd = commands.add_parser(
      'compile', help='write the KFP v2 pipeline YAML')
  compile_cmd.add_argument('--output', default='pipeline.yaml',
                           help='YAML file to write (default %(default)s)')
  submit = commands.add_parser(
      'submit', help='upload the pipeline (or a new version) and start a run')
  schedule = commands.add_parser(
      'schedule', help='upload the pipeline and create a recurring run')
  schedule.add_argument(
      '--cron', required=True, type=_cron,
      help="6-field cron with seconds, e.g. '0 0 3 * * 0' (Sundays 03:00); "
      'at most one run at a time, no catch-up of missed runs')
  for command in (submit, schedule):
    command.add_argument('--host', required=True,
                         help='KFP API endpoint, e.g. http://localhost:8080')
    command.add_argument('--experiment', default=config.PIPELINE_NAME)
    command.add_argument('--run-name', help='name of the run/recurring run')
  for command in (compile_cmd, submit, schedule):
    command.add_argument('--image', default=DEFAULT_IMAGE,
                         help='container image every task runs (Dockerfile)')
    command.add_argument(
        '--pipeline-root', default='/mnt/pipeline/root',
        help='where artifacts go: gs://..., s3://... or a mounted volume path')
    command.add_argument(
        '--data-root', default='/mnt/pipeline/data',
        help='image folder tree (runtime parameter data_root)')
    command.add_argument(
        '--external-data-root', default='',
        help='an external cohort\'s image tree, evaluated and gated on, never '
        'trained on (runtime parameter external_data_root; empty = none)')
    command.add_argument(
        '--serving-model-dir',
        help='push destination (default: <pipeline root>/serving_model)')
    command.add_argument(
        '--reports-dir',
        help='run reports (default: <pipeline root>/reports)')
    cli.add_training_arguments(command)
    cli.add_blessing_arguments(command)
    cli.add_beam_arguments(command)
  return parser.parse_args(argv)


def runtime_defaults(args: argparse.Namespace) -> Dict[str, Any]:
  """Runtime parameter name -> compiled default value (as KFP carries it)."""
  values = {DATA_ROOT: str(args.data_root),
            EXTERNAL_DATA_ROOT: str(args.external_data_root)}
  values.update(options.runtime_values(cli.training_from_args(args)))
  values.update(options.runtime_values(cli.blessing_from_args(args)))
  return values


def _parameter_types() -> Dict[str, type]:
  types = {DATA_ROOT: str, EXTERNAL_DATA_ROOT: str}
  for group in options.GROUPS:
    types.update({field.name: options.parameter_type(field)
                  for field in options.runtime_fields(group)})
  return types


def build_pipeline(args: argparse.Namespace):
  """create_pipeline(...) with runtime parameters for per-run values;
  returns (pipeline, {name: RuntimeParameter})."""
  from tfx.orchestration import data_types  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top
  types = _parameter_types()
  params = {name: data_types.RuntimeParameter(
      name=name, ptype=types[name], default=value)
            for name, value in runtime_defaults(args).items()}
  root = args.pipeline_root.rstrip('/')
  pipeline = pipeline_lib.create_pipeline(
      pipeline_name=config.PIPELINE_NAME,
      pipeline_root=args.pipeline_root,
      data_root=params[DATA_ROOT],
      external_data_root=params[EXTERNAL_DATA_ROOT],
      schema_path=f'{IMAGE_CODE_DIR}/schemas/schema.pbtxt',
      serving_model_dir=args.serving_model_dir or f'{root}/serving_model',
      reports_dir=args.reports_dir or f'{root}/reports',
      training=cli.training_from_args(args),
      blessing=cli.blessing_from_args(args),
      runtime={name: param for name, param in params.items()
               if name not in (DATA_ROOT, EXTERNAL_DATA_ROOT)},
      beam_pipeline_args=config.direct_runner_args(
          setup_file=f'{IMAGE_CODE_DIR}/setup.py') + args.beam_arg,
  )
  return pipeline, params


def compile_spec(args: argparse.Namespace) -> Dict[str, Any]:
  """The KFP v2 PipelineSpec (dict) of the pipeline, ready for open-source
  KFP (pipeline/compilation.py)."""
  from pipeline import compilation  # pylint: disable=g-import-not-at-top
  pipeline, params = build_pipeline(args)
  return compilation.compile_for_kubeflow(pipeline, args.image, params)


def write_yaml(spec: Dict[str, Any], path: str) -> None:
  with open(path, 'w') as f:
    f.write('# Pediatric pneumonia TFX pipeline, compiled by kubeflow_runner.py'
            ' for Kubeflow Pipelines v2.\n')
    yaml.safe_dump(spec, f, sort_keys=True)


def main(argv=None) -> int:
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    defaults = runtime_defaults(args)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  problems = cli.beam_problems(args.beam_arg)
  if problems:
    print('\n'.join(f'error: {problem}' for problem in problems),
          file=sys.stderr)
    return 2
  if args.command == 'compile':
    write_yaml(compile_spec(args), args.output)
    logging.info('Wrote %s (image %s, pipeline root %s).', args.output,
                 args.image, args.pipeline_root)
    return 0

  from runners import kfp_client  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    package = os.path.join(tmp, 'pipeline.yaml')
    write_yaml(compile_spec(args), package)
    try:
      if args.command == 'submit':
        ids = kfp_client.submit(
            args.host, package, config.PIPELINE_NAME, args.experiment,
            defaults, pipeline_root=args.pipeline_root,
            run_name=args.run_name)
      else:
        ids = kfp_client.schedule(
            args.host, package, config.PIPELINE_NAME, args.experiment,
            args.cron, defaults, pipeline_root=args.pipeline_root,
            job_name=args.run_name)
    except (kfp_client.KfpClientError, ValueError) as e:
      print(f'error: {e}', file=sys.stderr)
      return 2
  print(' '.join(f'{key}={value}' for key, value in sorted(ids.items())))
  return 0


if __name__ == '__main__':
  sys.exit(main())
