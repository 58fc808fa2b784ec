"""The exported SavedModel and its serving signatures (the model contract).

* `serving_default`: `image_bytes` (tf.string [None]; JPEG or PNG,
  grayscale or RGB, any size) -> `pneumonia_probability` (float32 [None]) and
  `label` (tf.string [None], PNEUMONIA or NORMAL at the operating threshold).
* `serving_examples`: `examples` (serialized tf.Examples with `image_raw`)
  -> the same outputs; TensorFlow Model Analysis uses this one.

Both run `trainer.preprocessing.preprocess_image`, the function training used;
it refuses (INVALID_ARGUMENT), before decoding, an image whose header
declares more than `contract.options.ImageLimits.max_pixels`, the value at
export. EXIF orientation is not applied (no TF op parses it): clients send
upright pixels, and ingestion rejects EXIF-rotated files for the same reason.
The model loads with plain `tf.saved_model.load`, no project code needed.
`assets.extra/model_info.json` records architecture, image size, threshold
and metrics for people and tools.
"""
import json
import os
from typing import Any, Dict

import tensorflow as tf

from contract import layout
from contract import names as constants
from trainer import preprocessing



class PneumoniaModel(tf.Module):
  """A trained Keras model with its preprocessing and decision threshold."""

  def __init__(self, model, image_size: int, threshold: float):
    super().__init__()
    self.model = model
    self.image_size = image_size
    self.threshold = tf.Variable(threshold, dtype=tf.float32, trainable=False,
                                 name='threshold')

  def _outputs(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
    # An empty request gets empty answers (convolutions refuse batch 0).
    probability = tf.cond(
        tf.shape(images)[0] > 0,
        lambda: tf.reshape(self.model(images, training=False), [-1]),
        lambda: tf.zeros([0], self.model.outputs[0].dtype))
    probability = tf.cast(probability, tf.float32)
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
  def serve_examples(self, examples):
    image_bytes, _ = preprocessing.parse_examples(examples)
    return self._outputs(
        preprocessing.preprocess_batch(image_bytes, self.image_size))


def export(model, export_dir: str, image_size: int, threshold: float,
           info: Dict[str, Any]) -> None:
  """Writes the SavedModel with both signatures and model_info.json."""
  module = PneumoniaModel(model, image_size, threshold)
  # The argument names of the two functions are the signatures' input names
  # (constants.SERVING_INPUT, constants.EXAMPLES_INPUT); a test holds them.
  tf.saved_model.save(module, export_dir, signatures={
      constants.SERVING_SIGNATURE: module.serve_image_bytes,
      constants.EXAMPLES_SIGNATURE: module.serve_examples,
  })
  info = dict(info, image_size=image_size, threshold=float(threshold),
              signatures={
                  constants.SERVING_SIGNATURE: constants.SERVING_INPUT,
                  constants.EXAMPLES_SIGNATURE: constants.EXAMPLES_INPUT})
  path = os.path.join(export_dir, layout.MODEL_INFO_FILE)
  tf.io.gfile.makedirs(os.path.dirname(path))
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(info, f, indent=1, sort_keys=True)

