"""The exported SavedModel and its serving signatures (the model contract).

* `serving_default`: `image_bytes` (tf.string [None]; JPEG or PNG,
  grayscale or RGB, any size) -> `pneumonia_probability` (float32 [None]) and
  `label` (tf.string [None], PNEUMONIA or NORMAL at the operating threshold).
* `serving_examples`: `examples` (serialized tf.Examples with `image_raw`)
  -> the same outputs; TensorFlow Model Analysis uses this one.
* `explain`: `image_bytes` -> the same outputs and `heat_map` (float32
  [None, S, S] in [0, 1]), the Grad-CAM map of the served logit at the
  model's input size (trainer/gradcam.py); predict.py --explain and the run
  report's gallery use it.

All run `trainer.preprocessing.preprocess_image`, the function training used;
it refuses (INVALID_ARGUMENT), before decoding, an image whose header
declares more than `contract.options.ImageLimits.max_pixels`, the value at
export. EXIF orientation is not applied (no TF op parses it): clients send
upright pixels, and ingestion rejects EXIF-rotated files for the same reason.
The model loads with plain `tf.saved_model.load`, no project code needed.
The probability is sigmoid(slope * z + intercept) of the models' logit z
(one model, or the mean probability of an ensemble: trainer/ensemble.py);
slope 1 and intercept 0 unless a calibration was fitted
(trainer/calibration.py). `assets.extra/model_info.json` records
architecture, image size, threshold and metrics for people and tools.
"""
import json
import os
from typing import Any, Dict, Sequence

import tensorflow as tf

from contract import layout
from contract import names as constants
from trainer import calibration as calibration_lib
from trainer import ensemble
from trainer import gradcam
from trainer import preprocessing
from trainer import warmup



class PneumoniaModel(tf.Module):
  """Trained models' logit (trainer/ensemble.Scorer), the calibration map of
  it and the decision threshold (in calibrated probability)."""

  def __init__(self, scorer: ensemble.Scorer, image_size: int,
               threshold: float,
               calibration: calibration_lib.Calibration = (
                   calibration_lib.IDENTITY)):
    super().__init__()
    self.scorer = scorer
    self.gradcam = gradcam.GradCam(scorer.members)
    self.image_size = image_size
    self.threshold = tf.Variable(threshold, dtype=tf.float32, trainable=False,
                                 name='threshold')
    self.calibration_slope = tf.Variable(
        calibration.slope, dtype=tf.float32, trainable=False,
        name='calibration_slope')
    self.calibration_intercept = tf.Variable(
        calibration.intercept, dtype=tf.float32, trainable=False,
        name='calibration_intercept')

  def _outputs(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
    # An empty request gets empty answers (convolutions refuse batch 0).
    logit = tf.cond(tf.shape(images)[0] > 0, lambda: self.scorer(images),
                    lambda: tf.zeros([0], tf.float32))
    # Identity when not calibrated (slope 1, intercept 0: z * 1 + 0 == z).
    probability = tf.sigmoid(logit * self.calibration_slope +
                             self.calibration_intercept)
    label = tf.where(probability >= self.threshold,
                     constants.LABEL_NAMES[constants.PNEUMONIA],
                     constants.LABEL_NAMES[constants.NORMAL])
    return {constants.PROBABILITY_OUTPUT: probability,
            constants.LABEL_OUTPUT: label}

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve_image_bytes(self, image_bytes):
    return self._outputs(
        preprocessing.preprocess_batch(image_bytes, self.image_size))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def explain(self, image_bytes):
    images = preprocessing.preprocess_batch(image_bytes, self.image_size)
    size = self.image_size
    outputs = self._outputs(images)
    outputs[constants.HEAT_MAP_OUTPUT] = tf.cond(
        tf.shape(images)[0] > 0, lambda: self.gradcam(images)[0],
        lambda: tf.zeros([0, size, size], tf.float32))
    return outputs

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve_examples(self, examples):
    image_bytes, _ = preprocessing.parse_examples(examples)
    return self._outputs(
        preprocessing.preprocess_batch(image_bytes, self.image_size))


def export(model, export_dir: str, image_size: int, threshold: float,
           info: Dict[str, Any],
           calibration: calibration_lib.Calibration = (
               calibration_lib.IDENTITY),
           warmup_images: Sequence[bytes] = ()) -> None:
  """Writes the SavedModel with its three signatures and model_info.json.

  model: a Keras model, a list of them (served as their mean probability),
  or an ensemble.Scorer. warmup_images: real image bytes written as TF
  Serving's warm-up requests (trainer/warmup.py); none, no file."""
  if not isinstance(model, ensemble.Scorer):
    model = ensemble.Scorer(model if isinstance(model, (list, tuple))
                            else [model])
  module = PneumoniaModel(model, image_size, threshold, calibration)
  # The argument names of the two functions are the signatures' input names
  # (constants.SERVING_INPUT, constants.EXAMPLES_INPUT); a test holds them.
  tf.saved_model.save(module, export_dir, signatures={
      constants.SERVING_SIGNATURE: module.serve_image_bytes,
      constants.EXAMPLES_SIGNATURE: module.serve_examples,
      constants.EXPLAIN_SIGNATURE: module.explain,
  })
  info = dict(info, image_size=image_size, threshold=float(threshold),
              signatures={
                  constants.SERVING_SIGNATURE: constants.SERVING_INPUT,
                  constants.EXAMPLES_SIGNATURE: constants.EXAMPLES_INPUT,
                  constants.EXPLAIN_SIGNATURE: constants.EXPLAIN_INPUT})
  path = os.path.join(export_dir, layout.MODEL_INFO_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(info, f, indent=1, sort_keys=True)
  if warmup_images:
    warmup.write(export_dir, warmup_images)

