"""Grad-CAM heat maps of the shipped score, for every architecture.

Input: the tensor every model sees (trainer/preprocessing.preprocess_batch,
[batch, S, S, 1]). Output: [batch, S, S] float32 in [0, 1].

Per member model, its feature map A ([batch, h, w, K]) is the output of its
last layer whose output is 4-D, found by walking the layers from the top
(into a nested model such as resnet50's `resnet50` backbone, whose own last
4-D layer is conv5_block3_out): the map just before the global pooling. A
model with no such layer (a stand-in that pools the image at once) uses the
image itself.

The map differentiates the shipped logit z (trainer/ensemble.py; calibration
is an increasing affine map of z, so it would only scale the map):

  cam = ReLU(sum over members m, channels k of  alpha_mk * A_mk),
  alpha_mk = sum over positions of dz / dA_mk,

each member's term upsampled (bilinear) to S x S before the sum, then
divided by its maximum. alpha sums rather than averages the gradient over
positions, so a member's term is in logit units (for a pooled linear head
its mean over positions is that member's first-order share of z) whatever
its map's resolution. For an ensemble, z is the logit of the members' mean
probability and dz / dA_m = (dz / dz_m) (dz_m / dA_m): each member counts
by its weight in the score that ships, rather than as an equal vote, and
the summed map is one first-order decomposition of that one score over the
image. ReLU keeps the positions that push z toward PNEUMONIA.

A constant map is all zeros: no position raises z at first order (all of
the evidence argues for NORMAL, typically a confident NORMAL image); it
says nothing about where to look. With test-time views (ensemble.Scorer
`views`) the map is that of the image itself, the first view.
"""
from typing import List, Optional, Sequence, Tuple

import keras
import tensorflow as tf

from trainer import ensemble
from trainer import models


def _is_map(layer) -> bool:
  try:
    return len(layer.output.shape) == 4
  except (AttributeError, ValueError):  # never called, or called twice
    return False


def feature_layers(model: keras.Model) -> List[keras.layers.Layer]:
  """[layer] or [nested model, layer inside it]: the last layer whose output
  is a 4-D feature map (see the module doc); [] if there is none."""
  for layer in reversed(model.layers):
    if isinstance(layer, keras.layers.InputLayer):
      continue
    if isinstance(layer, keras.Model):
      inner = feature_layers(layer)
      if inner:
        return [layer] + inner
    if _is_map(layer) and not isinstance(layer, keras.Model):
      return [layer]
  return []


def _head(model: keras.Model) -> Optional[keras.layers.Dense]:
  """The Dense sigmoid output layer whose pre-activation is the logit, as
  trainer/ensemble reads it; None for a stand-in scored from p."""
  try:
    head = model.get_layer(models.OUTPUT_LAYER)
  except ValueError:
    return None
  if (isinstance(head, keras.layers.Dense) and
      head.activation is keras.activations.sigmoid):
    return head
  return None


def _explainer(model: keras.Model) -> Tuple[keras.Model, bool]:
  """(images -> [feature map, head input or probability], True) or, with no
  4-D layer, (images -> [head input or probability], False)."""
  head = _head(model)
  path = feature_layers(model)
  if len(path) < 2:  # the map is a layer of the model itself (or none)
    last = head.input if head is not None else model.outputs[0]
    outputs = [path[0].output, last] if path else [last]
    return keras.Model(_inputs(model), outputs), bool(path)
  # The map is inside a nested model: rebuild the outer graph (same layers,
  # same weights) with that model also returning its inner map.
  nested, inner = path[0], path[1:]
  if len(inner) > 1:
    raise ValueError(f'{model.name}: feature map nested more than one level '
                     'deep')
  both = keras.Model(nested.inputs, [inner[0].output] + nested.outputs)
  seen = {}

  def call(layer, *args, **kwargs):
    if layer is nested:
      feature_map, out = both(*args, **kwargs)
      seen['map'] = feature_map
      return out
    if layer is head:
      seen['head'] = args[0]
    return layer(*args, **kwargs)

  rebuilt = keras.models.clone_model(model, clone_function=lambda l: l,
                                     call_function=call)
  last = seen['head'] if head is not None else rebuilt.outputs[0]
  return keras.Model(_inputs(rebuilt), [seen['map'], last]), True


def _border(model: keras.Model) -> float:
  """The fraction a border-crop layer cuts from each edge (0: none)."""
  for layer in model.layers:
    if layer.name == models.BORDER_CROP_LAYER:
      return float(layer.fraction)
  return 0.0


def _placed(term, size, border: float) -> tf.Tensor:
  """A map of what the model saw, on the uncropped image: the model looked
  at the central box only, so the map fills that box and the cut border
  (never seen) gets none."""
  if not border:
    return tf.image.resize(term, size, method='bilinear')
  margin = tf.cast(tf.round(border * tf.cast(size, tf.float32)), tf.int32)
  inner = tf.image.resize(term, size - 2 * margin, method='bilinear')
  return tf.pad(inner, [[0, 0], [margin[0], margin[0]],
                        [margin[1], margin[1]], [0, 0]])


def _inputs(model: keras.Model):
  # One input as a tensor, not a list: called with a tensor, Keras would
  # warn about the structure on every call.
  return model.inputs[0] if len(model.inputs) == 1 else model.inputs


class GradCam(tf.Module):
  """images [batch, S, S, 1] -> (heat maps [batch, S, S] in [0, 1], the
  shipped logit [batch]) of one model or the mean probability of several."""

  def __init__(self, members: Sequence[keras.Model]):
    super().__init__()
    if not members:
      raise ValueError('Grad-CAM needs at least one model')
    built = [_explainer(m) for m in members]
    self.explainers = [e for e, _ in built]
    self._has_map = [has for _, has in built]
    self._heads = [_head(m) for m in members]
    self._borders = [_border(m) for m in members]

  def _logit(self, last, head) -> tf.Tensor:
    if head is None:
      p = tf.cast(tf.reshape(last, [-1]), tf.float32)
      return tf.math.log(p) - tf.math.log1p(-p)
    z = keras.ops.add(keras.ops.matmul(last, head.kernel), head.bias)
    return tf.cast(tf.reshape(z, [-1]), tf.float32)

  def __call__(self, images) -> Tuple[tf.Tensor, tf.Tensor]:
    images = tf.convert_to_tensor(images, tf.float32)
    size = tf.shape(images)[1:3]
    with tf.GradientTape() as tape:
      tape.watch(images)  # the map of a model without a 4-D layer
      maps, logits = [], []
      for explainer, has_map, head in zip(self.explainers, self._has_map,
                                          self._heads):
        outputs = explainer(images, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        maps.append(outputs[0] if has_map else images)
        logits.append(self._logit(outputs[-1], head))
      shipped = (logits[0] if len(logits) == 1 else
                 ensemble.mean_probability_logit(tf.stack(logits, axis=1)))
      # Each image's logit depends on that image only (inference mode), so
      # the gradient of the sum holds every image's own gradient.
      total = tf.reduce_sum(shipped)
    gradients = tape.gradient(total, maps)
    cam = tf.zeros(tf.concat([tf.shape(images)[:3], [1]], 0), tf.float32)
    for feature_map, gradient, border in zip(maps, gradients, self._borders):
      feature_map = tf.cast(feature_map, tf.float32)
      alpha = tf.reduce_sum(tf.cast(gradient, tf.float32), axis=[1, 2],
                            keepdims=True)
      term = tf.reduce_sum(alpha * feature_map, axis=-1, keepdims=True)
      cam += _placed(term, size, border)
    cam = tf.nn.relu(cam[..., 0])
    peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
    return tf.math.divide_no_nan(cam, peak), shipped


def heat_maps(model, images) -> tf.Tensor:
  """Heat maps [batch, S, S] of a Keras model, a list of them (an
  ensemble) or an ensemble.Scorer, on preprocessed images."""
  if isinstance(model, ensemble.Scorer):
    model = model.members
  members = model if isinstance(model, (list, tuple)) else [model]
  return GradCam(members)(images)[0]
