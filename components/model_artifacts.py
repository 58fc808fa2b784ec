"""Where things are inside a TFX Model artifact written by our Trainer."""
import json
import os
from typing import Any, Dict

import tensorflow as tf
from tfx.utils import path_utils

from contract import layout
from contract import names as constants


def serving_dir(model_artifact) -> str:
  """The SavedModel folder (`<uri>/Format-Serving`)."""
  return path_utils.serving_model_path(
      model_artifact.uri, path_utils.is_old_model_artifact(model_artifact))


def model_info_path(model_artifact) -> str:
  return os.path.join(serving_dir(model_artifact), layout.MODEL_INFO_FILE)


def read_model_info(model_artifact) -> Dict[str, Any]:
  """assets.extra/model_info.json: architecture, threshold, comparison..."""
  with tf.io.gfile.GFile(model_info_path(model_artifact)) as f:
    return json.load(f)
