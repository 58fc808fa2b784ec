"""Scores in logit space: one trained model, or the mean probability of several.

The serving graph and the Trainer's threshold both work on the logit z
(probability = sigmoid(z)), not on the probability, for two reasons:

* calibration (trainer/calibration.py) is a map of z; computing z back from
  a float32 probability near 0 or 1 loses it (1 - p rounds to 0), and the
  map would turn that rounding into differences far above
  SERVING_TOLERANCE;
* an ensemble's mean probability mean_i sigmoid(z_i) has the logit
  logsumexp_i log sigmoid(z_i) - logsumexp_i log sigmoid(-z_i), which stays
  exact where every member is near-certain.

Test-time views (`views`): each image is also scored as a few crops of
itself, and the probabilities averaged the same way.

A model's z is its output layer's pre-activation: every architecture ends
in the Dense layer models.OUTPUT_LAYER with a sigmoid. A model without one
(a test's stand-in) is scored from its probability, log p - log(1 - p).
"""
from typing import List, Sequence

import keras
import numpy as np
import tensorflow as tf

from trainer import models


# Test-time views (`views` of a Scorer): crops of the preprocessed image,
# resized back, as [y1, x1, y2, x2] boxes; the first is the image itself.
# No flips: a mirrored chest puts the heart on the wrong side.
VIEW_BOXES = ((0.0, 0.0, 1.0, 1.0),      # as it is
              (0.05, 0.05, 0.95, 0.95),  # 90 % centre
              (0.0, 0.0, 0.92, 0.92),    # 92 %, top left
              (0.08, 0.08, 1.0, 1.0),    # 92 %, bottom right
              (0.0, 0.08, 0.92, 1.0))    # 92 %, top right


def views_of(images: tf.Tensor, views: int) -> tf.Tensor:
  """[views * batch, S, S, 1]: view k of every image, view after view."""
  if not 1 <= views <= len(VIEW_BOXES):
    raise ValueError(f'views must be in 1..{len(VIEW_BOXES)}, got {views}')
  if views == 1:
    return images
  batch = tf.shape(images)[0]
  size = tf.shape(images)[1:3]
  crops = [images]  # the first view untouched (no resampling)
  for box in VIEW_BOXES[1:views]:
    boxes = tf.tile(tf.constant([box], tf.float32), [batch, 1])
    crops.append(tf.image.crop_and_resize(
        images, boxes, tf.range(batch), size, method='bilinear'))
  return tf.concat(crops, axis=0)


class Scorer(tf.Module):
  """images [batch, S, S, 1] -> logit z [batch] of one model or the mean
  probability of several (`members`, in order), over `views` test-time
  views of each image (VIEW_BOXES; 1 = the image alone)."""

  def __init__(self, members: Sequence[keras.Model], views: int = 1):
    super().__init__()
    if not members:
      raise ValueError('a scorer needs at least one model')
    views_of(tf.zeros([1, 8, 8, 1]), views)  # a clear error for a bad count
    self.views = int(views)
    self.members = list(members)
    # The features below each output layer, and that layer, per member
    # (None: scored from its probability).
    self._parts = [_features_and_head(m) for m in self.members]

  @property
  def names(self) -> List[str]:
    return [m.name for m in self.members]

  def member_logits(self, images) -> List[tf.Tensor]:
    """Each member's logit [batch]: of its mean probability over the views."""
    batch = tf.shape(images)[0]
    viewed = views_of(images, self.views)
    logits = []
    for z in self._logits_of_each(viewed):
      if self.views > 1:
        z = mean_probability_logit(tf.transpose(
            tf.reshape(z, [self.views, batch])))
      logits.append(z)
    return logits

  def _logits_of_each(self, images) -> List[tf.Tensor]:
    logits = []
    for model, (features, head) in zip(self.members, self._parts):
      if head is None:
        p = tf.cast(tf.reshape(model(images, training=False), [-1]),
                    tf.float32)
        logits.append(tf.math.log(p) - tf.math.log1p(-p))
      else:
        # What the Dense layer computes before its sigmoid (Keras 3:
        # matmul, then add the bias).
        z = keras.ops.add(keras.ops.matmul(
            features(images, training=False), head.kernel), head.bias)
        logits.append(tf.cast(tf.reshape(z, [-1]), tf.float32))
    return logits

  def __call__(self, images) -> tf.Tensor:
    logits = self.member_logits(images)
    if len(logits) == 1:
      return logits[0]
    return mean_probability_logit(tf.stack(logits, axis=1))


def _features_and_head(model: keras.Model):
  try:
    head = model.get_layer(models.OUTPUT_LAYER)
  except ValueError:
    return None, None
  if not (isinstance(head, keras.layers.Dense) and
          head.activation is keras.activations.sigmoid):
    return None, None
  return keras.Model(model.inputs, head.input), head


def mean_probability_logit(logits: tf.Tensor) -> tf.Tensor:
  """logit(mean_i sigmoid(z_i)) over axis 1, stable (see the module doc)."""
  return (tf.reduce_logsumexp(tf.math.log_sigmoid(logits), axis=1) -
          tf.reduce_logsumexp(tf.math.log_sigmoid(-logits), axis=1))


def mean_probability_logit_np(logits) -> np.ndarray:
  """The same in float64 numpy, over axis 1 of [examples, members]."""
  z = np.asarray(logits, np.float64)
  log_p = -np.logaddexp(0, -z)
  log_q = -np.logaddexp(0, z)
  return np.logaddexp.reduce(log_p, axis=1) - np.logaddexp.reduce(log_q,
                                                                  axis=1)


def member_logits(scorer: Scorer, batches: tf.data.Dataset) -> np.ndarray:
  """[examples, members] logits of every image in (image, label) batches,
  float64."""
  run = tf.function(scorer.member_logits)
  rows = [np.stack([z.numpy() for z in run(images)], axis=1)
          for images, _ in batches]
  return (np.concatenate(rows).astype(np.float64) if rows
          else np.zeros([0, len(scorer.members)]))
