#!/usr/bin/env python
"""Runs the pneumonia pipeline on this machine.

Apache Beam's DirectRunner (one worker process per core by default) runs the
data-parallel stages, ML Metadata lives in SQLite under the output folder,
and re-running on unchanged inputs reuses cached results.

  python local_runner.py --data-dir data --output-dir output
  python local_runner.py --stop-after validate      # check new data only
"""
import argparse
import os
import sys
from typing import List, Optional, Tuple

from absl import logging

from contract import options
from contract import settings as config
from runners import cli
from runners import kaggle_data
from trainer import architectures
from trainer import resnet_weights


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument(
      '--data-dir', default=os.environ.get('DATA_DIR', config.DEFAULT_DATA_DIR),
      help='folder tree of NORMAL/PNEUMONIA images (any depth); when it holds '
      'no images the Kaggle dataset %s is downloaded into it '
      '(default: $DATA_DIR or %%(default)s)' % config.KAGGLE_DATASET)
  parser.add_argument(
      '--external-data-dir', metavar='DIR',
      help='an external cohort: a second NORMAL/PNEUMONIA tree from another '
      'site or period, never trained on; the model is also evaluated and '
      'gated on it (--min-external-auc, --min-external-recall)')
  parser.add_argument(
      '--output-dir',
      default=os.environ.get('OUTPUT_DIR', config.DEFAULT_OUTPUT_DIR),
      help='where artifacts, ML Metadata, models and reports are written '
      '(default: $OUTPUT_DIR or %(default)s)')
  parser.add_argument(
      '--stop-after', choices=config.STAGES, default=config.STAGES[-1],
      help='last stage to run: ' + '; '.join(
          f'{stage} ({what})' for stage, what in config.STAGE_HELP.items()) +
      '. Default: %(default)s')
  cli.add_training_arguments(parser)
  cli.add_blessing_arguments(parser)
  parser.add_argument(
      '--workers', type=int, default=config.DEFAULT_DIRECT_NUM_WORKERS,
      help='Beam DirectRunner worker threads (1 runs in-process; '
      '--beam-arg=--direct_running_mode=multi_processing for processes). '
      'Default: %(default)s')
  cli.add_beam_arguments(parser)
  parser.add_argument(
      '--no-cache', action='store_true',
      help='run every stage even if its inputs are unchanged')
  return parser.parse_args(argv)


def preflight_training(args) -> Tuple[Optional[options.TrainingSettings],
                                       List[str]]:
  """Training settings, checked before any stage runs (seconds, not hours),
  and every problem with them: a bad option does not hide missing weights."""
  problems, training = [], None
  try:
    training = cli.training_from_args(args)
  except ValueError as e:
    problems.append(str(e))
  try:
    # The options that choose the weights, alone, when others are bad.
    weights = training or options.training_settings(
        args.profile, architectures=args.architectures,
        resnet_weights=args.resnet_weights)
  except ValueError:
    return training, problems  # a bad architecture is already said
  stages = config.STAGES
  if (architectures.needs_weights(weights.architectures) and
      stages.index(args.stop_after) >= stages.index('train')):
    try:
      resnet_weights.resolve(weights.resnet_weights)
    except resnet_weights.WeightsUnavailableError as e:
      problems.append(str(e))
  return training, problems


def preflight_external(data_dir: str, external_dir: str) -> str:
  """The external cohort's folder, checked: it must hold images and be
  apart from the main data (one inside the other would be ingested twice)."""
  external_dir = os.path.abspath(external_dir)
  if not kaggle_data.has_images(external_dir):
    raise ValueError(
        f'--external-data-dir {external_dir} holds no images below a NORMAL '
        'or PNEUMONIA folder')
  real_data, real_external = (os.path.realpath(data_dir),
                              os.path.realpath(external_dir))
  if os.path.commonpath([real_data, real_external]) in (real_data,
                                                        real_external):
    raise ValueError(
        f'--external-data-dir {external_dir} and --data-dir {data_dir} '
        'overlap: an external cohort must be a folder of its own')
  return external_dir


def main(argv=None) -> int:
  args = parse_args(argv)
  logging.set_verbosity(logging.INFO)
  # Preflight: every problem that would stop the run later, reported now
  # and all at once, before any stage (or download) starts.
  data_dir = os.path.abspath(args.data_dir)
  training, problems = preflight_training(args)
  problems += cli.beam_problems(args.beam_arg)
  try:
    kaggle_data.check_source(data_dir)
  except kaggle_data.DataSourceError as e:
    problems.append(str(e))
  external_dir = None
  if (not args.external_data_dir and
      args.threshold_from == 'external'):
    problems.append('--threshold-from external chooses the threshold on an '
                    'external cohort: give one with --external-data-dir')
  if args.external_data_dir:
    try:
      external_dir = preflight_external(data_dir, args.external_data_dir)
    except ValueError as e:
      problems.append(str(e))
  if not problems:
    try:
      data_dir = kaggle_data.ensure_dataset(data_dir, log=logging.info)
    except kaggle_data.DataSourceError as e:
      problems.append(str(e))
  if problems:
    print('\n\n'.join(f'error: {problem}' for problem in problems),
          file=sys.stderr)
    return 2

  # Imported after the data check so a missing dataset fails in a second,
  # not after TensorFlow has loaded.
  from tfx.orchestration import metadata  # pylint: disable=g-import-not-at-top
  from tfx.orchestration.local import local_dag_runner  # pylint: disable=g-import-not-at-top
  from pipeline import compilation  # pylint: disable=g-import-not-at-top
  from pipeline import pipeline as pipeline_lib  # pylint: disable=g-import-not-at-top

  output_dir = os.path.abspath(args.output_dir)
  paths = config.output_paths(output_dir)
  os.makedirs(os.path.dirname(paths['metadata_path']), exist_ok=True)
  pipeline = pipeline_lib.create_pipeline(
      pipeline_name=config.PIPELINE_NAME,
      pipeline_root=paths['pipeline_root'],
      data_root=data_dir,
      external_data_root=external_dir,
      schema_path=config.SCHEMA_PATH,
      serving_model_dir=paths['serving_model_dir'],
      reports_dir=paths['reports_dir'],
      stop_after=args.stop_after,
      training=training,
      blessing=cli.blessing_from_args(args),
      enable_cache=not args.no_cache,
      metadata_connection_config=(
          metadata.sqlite_metadata_connection_config(
              paths['metadata_path'])),
      beam_pipeline_args=(config.direct_runner_args(args.workers) +
                          args.beam_arg),
  )
  runner = local_dag_runner.LocalDagRunner()
  runner.run_with_ir(compilation.compile_for_local(pipeline))
  return 0


if __name__ == '__main__':
  sys.exit(main())
