"""BatchNorm statistics recomputed before every validation ("precise BN").

Keras keeps BatchNorm's inference statistics as moving averages of the
batch statistics of past steps, while the weights under them keep moving.
At 224 px under Adam 1e-3 they lag far enough that the inference-mode model
is a different function from the one training sees, and val AUC swings
between epochs with weights that are fine (bench/batchnorm.py measures both
side by side). So after the last step of every
epoch, before validation and the checkpoint, each BatchNorm layer that
learns its statistics gets the mean of the batch statistics of a fixed
sample of unaugmented training images, measured with the weights as they
now are. The weights themselves do not change.

Layers that do not update in training (a pretrained backbone's, frozen) are
left as they are.
"""
import math
from typing import List

import keras
import tensorflow as tf

from trainer import data


def updating_layers(model: keras.Model) -> List[keras.layers.Layer]:
  """The BatchNorm layers, nested ones too, that learn their statistics
  (Keras 3 runs a non-trainable BatchNorm in inference mode)."""
  return [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
          if isinstance(layer, keras.layers.BatchNormalization)
          and layer.trainable]


def sample(split: data.Split, images: int, batch_size: int,
           seed: int) -> List[tf.Tensor]:
  """A fixed, seeded sample of about `images` unaugmented training images,
  as batches."""
  batches = max(1, math.ceil(min(images, split.size) / batch_size))
  stream = data.training_stream(split, batch_size, seed,
                                augment_images=False)
  return [image for image, _ in stream.take(batches)]


def recompute(model: keras.Model, batches: List[tf.Tensor]) -> int:
  """Sets every updating BatchNorm layer's moving mean and variance to the
  mean over `batches` of its batch mean and variance (batch k is averaged in
  with momentum k / (k + 1)); returns how many layers it set."""
  layers = updating_layers(model)
  if not layers:
    return 0
  momenta = [layer.momentum for layer in layers]
  try:
    for k, images in enumerate(batches):
      for layer in layers:
        layer.momentum = k / (k + 1.0)
      model(images, training=True)
  finally:
    for layer, momentum in zip(layers, momenta):
      layer.momentum = momentum
  return len(layers)


class RecomputeBeforeValidation(keras.callbacks.Callback):
  """`recompute` after the last training step of each epoch: after it fit
  validates, then the epoch-end callbacks checkpoint the model."""

  def __init__(self, model: keras.Model, batches: List[tf.Tensor],
               steps_per_epoch: int):
    super().__init__()
    self._target, self._batches = model, batches
    self._last_step = int(steps_per_epoch) - 1

  def on_train_batch_end(self, batch, logs=None):
    if batch == self._last_step:
      recompute(self._target, self._batches)
