"""A pretrained backbone's head phase on features computed once.

In a head phase (trainer/architectures.HEAD) the backbone is frozen and runs
in inference mode, so it computes the same features of an image at every
epoch: most of the phase's time recomputes them. Here they are computed once
per run, from the cached *unaugmented* images, and the head (the layers
after the backbone's pooled output, shared with the full model) trains on
them. What changes: the head never sees an augmented image in that phase
(augmentation acts on pixels, before the backbone); the fine-tuning phase
that follows trains on augmented images as before. The head's dropout still
acts at every step, and the validation AUC is the full model's, since the
eval features are the same ones the full model computes.
"""
import time
from typing import NamedTuple

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from trainer import data
from trainer import models

AUTOTUNE = tf.data.AUTOTUNE


class Head(NamedTuple):
  extractor: keras.Model  # images -> the head's input (pooled features)
  model: keras.Model  # features -> probability; the full model's layers


def split(model: keras.Model) -> Head:
  """The full model as (feature extractor, head), sharing its layers. The
  head is every layer after the backbone (ResNet50's: dropout, output)."""
  names = [layer.name for layer in model.layers]
  head_layers = model.layers[names.index(models.BACKBONE_LAYER) + 1:
                             names.index(models.OUTPUT_LAYER) + 1]
  extractor = keras.Model(model.inputs, head_layers[0].input,
                          name=model.name + '_features')
  inputs = keras.Input(extractor.output.shape[1:], name='features')
  x = inputs
  for layer in head_layers:
    x = layer(x)
  return Head(extractor, keras.Model(inputs, x, name=model.name + '_head'))


def extract(extractor: keras.Model, split_: data.Split,
            batch_size: int) -> data.Split:
  """The split as (features, label), computed once, in memory."""
  start = time.perf_counter()
  features = extractor.predict(data.evaluation_batches(split_, batch_size),
                               verbose=0)
  labels = np.array([label for _, label in split_.dataset.as_numpy_iterator()],
                    dtype=np.int64)
  logging.info('Computed the backbone features of %d images once (%d '
               'values each) in %.1f s.', labels.size, features.shape[-1],
               time.perf_counter() - start)
  dataset = tf.data.Dataset.from_tensor_slices(
      (features.astype(np.float32), labels)).cache()
  return data.Split(dataset, split_.size, split_.label_counts)


def training_stream(features: data.Split, batch_size: int,
                    seed: int) -> tf.data.Dataset:
  """Endless shuffled batches of cached features (no augmentation)."""
  return (features.dataset
          .shuffle(features.size, seed=seed, reshuffle_each_iteration=True)
          .repeat().batch(batch_size).prefetch(AUTOTUNE))
