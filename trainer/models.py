"""The three architectures, selected by name from a registry.

Every model takes the output of `trainer.preprocessing.preprocess_image`:
float32 [S, S, 1] in [0, 1], and returns the probability of PNEUMONIA
([batch, 1], sigmoid).

* `baseline_cnn`: a plain small CNN (conv/pool blocks, no normalisation or
  regularisation) -- the notebook baseline.
* `improved_cnn`: the same family with BatchNorm, Dropout and L2.
* `resnet50`: Keras ResNet50 backbone with a new head. From pretrained
  weights it trains in two phases (head with the backbone frozen, then the
  top blocks at a lower learning rate); from random weights every layer
  trains from the first epoch (trainer/architectures; see `set_fine_tuning`).

How each one trains (phases, fine-tuning, initial weights) is registered in
trainer/architectures.py; this module builds them, keyed by the same names.
"""
import math
from typing import Optional

import keras
from keras import layers

from contract import options
from trainer import architectures
from trainer import preprocessing

ARCHITECTURES = options.ARCHITECTURES

# Every architecture's last layer: Dense(1, sigmoid). trainer/ensemble.py
# reads its pre-activation (the logit) by this name.
OUTPUT_LAYER = 'pneumonia'
# The ResNet50 backbone, one nested layer of the resnet50 model.
BACKBONE_LAYER = 'resnet50'

# Caffe-style ImageNet means (BGR) that the Keras ResNet50 weights expect.
_IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


def bn_momentum_for(steps_per_epoch: int) -> float:
  """BatchNorm momentum whose moving statistics settle within one epoch.

  With Keras' default 0.99 and ~100 steps per epoch the moving averages keep
  ~37% of their initial values after the first epoch, inference-mode
  outputs are near-constant and validation AUC sits at exactly 0.5 for
  several epochs. Choosing m with m**steps_per_epoch = 0.01 leaves 1% of the
  stale statistics after one epoch, at any dataset size (clipped to
  [0.5, 0.99]).
  """
  steps = max(int(steps_per_epoch), 1)
  return float(min(0.99, max(0.5, math.exp(math.log(0.01) / steps))))


class _PerImage(layers.Layer):
  """A weightless first layer applying one of trainer/preprocessing's
  per-image transforms, so training, evaluation and serving all see it."""

  def compute_output_shape(self, input_shape):
    return input_shape


class HistogramEqualisation(_PerImage):
  """preprocessing.equalize_histogram (`intensity_normalisation` equalize)."""

  def call(self, images):
    return preprocessing.equalize_histogram(images)


class Clahe(_PerImage):
  """preprocessing.clahe (`intensity_normalisation` clahe)."""

  def call(self, images):
    return preprocessing.clahe(images)


class BorderCrop(_PerImage):
  """preprocessing.crop_border (`border_crop`); trainer/gradcam.py reads
  `fraction` to place its map back on the uncropped image."""

  def __init__(self, fraction: float, **kwargs):
    super().__init__(**kwargs)
    self.fraction = float(fraction)

  def call(self, images):
    return preprocessing.crop_border(images, self.fraction)

  def get_config(self):
    return {**super().get_config(), 'fraction': self.fraction}


BORDER_CROP_LAYER = 'border_crop'
_NORMALISERS = {'equalize': ('equalize_histogram', HistogramEqualisation),
                'clahe': ('clahe', Clahe)}


def _input_stage(inputs, intensity_normalisation: str, border_crop: float):
  """Border crop first (markers and text do not enter the histogram), then
  the intensity normalisation."""
  if intensity_normalisation not in options.INTENSITY_NORMALISATIONS:
    raise ValueError(f'unknown intensity_normalisation '
                     f'{intensity_normalisation!r}')
  x = inputs
  if border_crop:
    x = BorderCrop(border_crop, name=BORDER_CROP_LAYER)(x)
  if intensity_normalisation in _NORMALISERS:
    name, layer = _NORMALISERS[intensity_normalisation]
    x = layer(name=name)(x)
  return x


def _conv_block(x, filters: int, improved: bool, bn_momentum: float,
                l2: float):
  regularizer = keras.regularizers.L2(l2) if improved and l2 else None
  for _ in range(2 if improved else 1):
    x = layers.Conv2D(filters, 3, padding='same', use_bias=not improved,
                      kernel_regularizer=regularizer)(x)
    if improved:
      x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.ReLU()(x)
  return layers.MaxPooling2D()(x)


def _cnn(name: str, image_size: int, improved: bool, bn_momentum: float,
         l2: float, dropout: float, stage) -> keras.Model:
  inputs = keras.Input((image_size, image_size, 1), name='image')
  x = stage(inputs)
  # A strided stem keeps 224-px training affordable on a CPU.
  x = layers.Conv2D(16, 5, strides=2, padding='same', use_bias=not improved,
                    kernel_regularizer=(keras.regularizers.L2(l2)
                                        if improved and l2 else None))(x)
  if improved:
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
  x = layers.ReLU()(x)
  for filters in (32, 64, 128):
    x = _conv_block(x, filters, improved, bn_momentum, l2)
  x = layers.GlobalAveragePooling2D()(x)
  if improved:
    x = layers.Dropout(dropout)(x)
  x = layers.Dense(64, activation='relu', kernel_regularizer=(
      keras.regularizers.L2(l2) if improved and l2 else None))(x)
  if improved:
    x = layers.Dropout(dropout)(x)
  outputs = layers.Dense(1, activation='sigmoid', name=OUTPUT_LAYER)(x)
  return keras.Model(inputs, outputs, name=name)


def _resnet50(image_size: int, weights: Optional[str], bn_momentum: float,
              dropout: float, stage) -> keras.Model:
  inputs = keras.Input((image_size, image_size, 1), name='image')
  gray = stage(inputs)
  # Grayscale to the 3 identical channels and pixel scale ResNet50 expects.
  x = layers.Concatenate(name='to_rgb')([gray, gray, gray])
  x = layers.Rescaling(255.0)(x)
  x = layers.Normalization(mean=_IMAGENET_BGR_MEAN, variance=(1.0, 1.0, 1.0),
                           name='imagenet_mean')(x)
  backbone = keras.applications.ResNet50(
      include_top=False, weights=weights, pooling='avg',
      input_shape=(image_size, image_size, 3))
  pretrained = weights is not None
  for layer in backbone.layers:
    if isinstance(layer, layers.BatchNormalization):
      layer.momentum = bn_momentum
  # Pretrained BatchNorm statistics stay as they are (inference mode) in
  # both phases; a randomly initialised backbone must learn its own.
  x = backbone(x, training=False) if pretrained else backbone(x)
  x = layers.Dropout(dropout)(x)
  outputs = layers.Dense(1, activation='sigmoid', name=OUTPUT_LAYER)(x)
  model = keras.Model(inputs, outputs, name='resnet50')
  # What trains first; the Trainer sets each phase's (prepare_phase).
  set_fine_tuning(model, architectures.HEAD if pretrained else
                  architectures.ALL, pretrained=pretrained)
  return model


def set_fine_tuning(model: keras.Model, trains: str, pretrained: bool = True,
                    unfreeze_from: str = 'conv5_') -> None:
  """What trains (trainer/architectures.TRAINS): HEAD, only the head; TOP,
  also the backbone's layers from the first whose name starts with
  `unfreeze_from` (ResNet50's last stage); ALL, every layer. BatchNorm
  layers of a pretrained backbone stay frozen. Recompile after."""
  if trains not in architectures.TRAINS:
    raise ValueError(f'unknown phase kind {trains!r}; choose from '
                     f'{architectures.TRAINS}')
  backbone = model.get_layer(BACKBONE_LAYER)
  backbone.trainable = trains != architectures.HEAD
  if trains == architectures.HEAD:
    return
  unfrozen = trains == architectures.ALL
  for layer in backbone.layers:
    unfrozen = unfrozen or layer.name.startswith(unfreeze_from)
    layer.trainable = unfrozen and not (
        pretrained and isinstance(layer, layers.BatchNormalization))


# The builders, keyed like trainer/architectures.REGISTRY:
# (image_size, bn_momentum, l2, dropout, weights, input stage) -> Model.
_BUILDERS = {
    'baseline_cnn': lambda size, momentum, l2, dropout, weights, stage: _cnn(
        'baseline_cnn', size, False, momentum, l2, dropout, stage),
    'improved_cnn': lambda size, momentum, l2, dropout, weights, stage: _cnn(
        'improved_cnn', size, True, momentum, l2, dropout, stage),
    'resnet50': lambda size, momentum, l2, dropout, weights, stage: _resnet50(
        size, weights, momentum, dropout, stage),
}
assert tuple(_BUILDERS) == tuple(architectures.REGISTRY)


def prepare_phase(model: keras.Model, name: str,
                  phase: architectures.Phase, pretrained: bool) -> bool:
  """Sets what trains in `phase`; True if the architecture has phases of its
  own (then the Trainer logs what trains)."""
  if not architectures.get(name).fine_tunes_backbone:
    return False
  set_fine_tuning(model, phase.trains, pretrained=pretrained)
  return True


def build_model(name: str, image_size: int, steps_per_epoch: int,
                l2: float = options.TrainingSettings.l2,
                dropout: float = options.TrainingSettings.dropout,
                resnet_weights: Optional[str] = None,
                intensity_normalisation: str = (
                    options.TrainingSettings.intensity_normalisation),
                border_crop: float = options.TrainingSettings.border_crop
                ) -> keras.Model:
  """The architecture `name` for square images of `image_size` pixels.

  Args:
    name: one of ARCHITECTURES.
    image_size: side of the preprocessed image.
    steps_per_epoch: training steps per epoch (sets BatchNorm momentum).
    l2: L2 weight decay of improved_cnn.
    dropout: dropout rate of improved_cnn and the ResNet50 head.
    resnet_weights: 'imagenet', a local weights file, or None (random; for
      smoke tests only). See trainer.resnet_weights.
    intensity_normalisation: one of options.INTENSITY_NORMALISATIONS (a
      first layer applying trainer.preprocessing's transform of that name).
    border_crop: fraction of the side cut from each edge before it (0: none).
  """
  architectures.get(name)  # a clear error for an unknown name
  stage = lambda inputs: _input_stage(inputs, intensity_normalisation,
                                      border_crop)
  return _BUILDERS[name](image_size, bn_momentum_for(steps_per_epoch), l2,
                         dropout, resnet_weights, stage)
