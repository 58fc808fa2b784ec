"""Where ResNet50's weights come from, checked before anything runs.

`--resnet-weights` takes `imagenet` (default), a local weights file, or
`none` (random initialisation; smoke tests only). ImageNet weights come from
the Keras cache or are downloaded by Keras; when neither is possible the run
must stop at once with the alternatives, never fall back to random weights.
This module imports no TensorFlow, so the runner can check in a second.
"""
import os
import socket
from typing import Optional

IMAGENET = 'imagenet'
NONE = 'none'
NOTOP_FILE = 'resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5'
DOWNLOAD_HOST = 'storage.googleapis.com'


class WeightsUnavailableError(RuntimeError):
  """ResNet50 weights were asked for but cannot be had; message says why."""


def keras_cache_path() -> str:
  home = os.environ.get('KERAS_HOME') or os.path.join(
      os.path.expanduser('~'), '.keras')
  return os.path.join(home, 'models', NOTOP_FILE)


def _can_reach(host: str, timeout: float = 3.0) -> bool:
  try:
    with socket.create_connection((host, 443), timeout=timeout):
      return True
  except OSError:
    return False


def resolve(spec: str) -> Optional[str]:
  """The `weights=` argument for keras.applications.ResNet50.

  Args:
    spec: 'imagenet', 'none', or a path to a weights file (no top).

  Returns:
    'imagenet', the absolute path, or None for random initialisation.

  Raises:
    WeightsUnavailableError: the weights cannot be had here.
  """
  alternatives = (
      'Alternatives: put the Keras file at ' + keras_cache_path() +
      ' (or set KERAS_HOME); pass --resnet-weights /path/to/' + NOTOP_FILE +
      '; pass --resnet-weights none (random initialisation, for smoke tests '
      'only: expect a much weaker model); or leave ResNet50 out with '
      '--architectures baseline_cnn,improved_cnn.')
  if spec.lower() == NONE:
    return None
  if spec.lower() == IMAGENET:
    if os.path.exists(keras_cache_path()) or _can_reach(DOWNLOAD_HOST):
      return IMAGENET
    raise WeightsUnavailableError(
        'ResNet50 ImageNet weights are not in the Keras cache and '
        f'{DOWNLOAD_HOST} cannot be reached to download them. ' + alternatives)
  path = os.path.abspath(os.path.expanduser(spec))
  if not os.path.isfile(path):
    raise WeightsUnavailableError(
        f'ResNet50 weights file {path} does not exist. ' + alternatives)
  return path
