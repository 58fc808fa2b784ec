"""Command-line options shared by local_runner.py and kubeflow_runner.py."""
import argparse
from typing import Any, Dict

from contract import settings as config


def _describe_profile(name: str) -> str:
  profile = config.TRAINING_PROFILES[name]
  return (f"{profile['image_size']} px, up to {profile['epochs']} epochs, "
          f"batch {profile['batch_size']}")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
  training = parser.add_argument_group(
      'training', 'The profile sets defaults; each option overrides it.')
  training.add_argument(
      '--profile', choices=sorted(config.TRAINING_PROFILES),
      default=config.DEFAULT_PROFILE,
      help='quick: ' + _describe_profile('quick') + '; full: ' +
      _describe_profile('full') + '. Default: %(default)s')
  training.add_argument(
      '--architectures', type=lambda text: [a.strip() for a in text.split(',')
                                            if a.strip()],
      help='comma-separated, from ' + ','.join(config.ARCHITECTURES) +
      ' (default: all three; the best on validation AUC is exported)')
  training.add_argument('--image-size', type=int,
                        help='side of the square model input in pixels')
  training.add_argument('--epochs', type=int,
                        help='maximum epochs per architecture (early stopping '
                        'on validation AUC may stop sooner)')
  training.add_argument('--batch-size', type=int)
  training.add_argument(
      '--resnet-weights', metavar='imagenet|PATH|none',
      help='ResNet50 initial weights: imagenet (default; from the Keras cache '
      'or downloaded), a local weights file, or none (random; smoke tests)')
  training.add_argument(
      '--target-sensitivity', type=float,
      help='the operating threshold is the highest one reaching this '
      'sensitivity on the eval split (default %s)' %
      config.TRAINING_DEFAULTS['target_sensitivity'])
  training.add_argument(
      '--shuffle-labels', action='store_true', default=None,
      help='negative control for audits: train on permuted labels (the '
      'evaluation must then refuse the model)')


def add_blessing_arguments(parser: argparse.ArgumentParser) -> None:
  blessing = parser.add_argument_group(
      'blessing', 'A model is pushed only if it passes all of these on the '
      'test split.')
  blessing.add_argument('--min-auc', type=float,
                        default=config.EVALUATION_DEFAULTS['min_auc'],
                        help='default %(default)s')
  blessing.add_argument('--min-recall', type=float,
                        default=config.EVALUATION_DEFAULTS['min_recall'],
                        help='sensitivity at the operating threshold; '
                        'default %(default)s')
  blessing.add_argument('--max-auc-drop', type=float,
                        default=config.EVALUATION_DEFAULTS['max_auc_drop'],
                        help='largest AUC drop allowed against the deployed '
                        'model; default %(default)s')


def add_beam_arguments(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
      '--beam-arg', action='append', default=[], metavar='ARG',
      help='Beam pipeline argument passed to every Beam-powered component, '
      'repeatable, e.g. --beam-arg=--runner=FlinkRunner '
      '--beam-arg=--flink_master=host:8081')


def training_from_args(args: argparse.Namespace) -> Dict[str, Any]:
  return config.training_config(
      args.profile, architectures=args.architectures,
      image_size=args.image_size, epochs=args.epochs,
      batch_size=args.batch_size, resnet_weights=args.resnet_weights,
      target_sensitivity=args.target_sensitivity,
      shuffle_labels=args.shuffle_labels)


def blessing_from_args(args: argparse.Namespace) -> Dict[str, float]:
  return {'min_auc': args.min_auc, 'min_recall': args.min_recall,
          'max_auc_drop': args.max_auc_drop}
