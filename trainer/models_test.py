"""Tests of trainer.models: the three architectures, BatchNorm momentum and
ResNet50's fine-tuning phases (random weights: nothing is downloaded)."""
import math

import keras
from keras import layers
import numpy as np
import pytest

from contract import options
from trainer import architectures
from trainer import models
from trainer import preprocessing

SIZE = 32


def _build(name: str, steps_per_epoch: int = 10, **kwargs) -> keras.Model:
  keras.utils.set_random_seed(0)
  return models.build_model(name, SIZE, steps_per_epoch, **kwargs)


@pytest.fixture(scope='module')
def resnet() -> keras.Model:
  """One random-weight ResNet50 (built once: ~1 s, 176 backbone layers)."""
  return _build('resnet50', resnet_weights=None)


def _batch(n: int = 8):
  rng = np.random.default_rng(0)
  images = rng.random((n, SIZE, SIZE, 1), dtype=np.float32)
  labels = np.array([0, 1] * (n // 2), dtype=np.int64)
  return images, labels


def _all_layers(model: keras.Model):
  """Every layer, including those inside nested models."""
  for layer in model.layers:
    yield layer
    if isinstance(layer, keras.Model):
      yield from _all_layers(layer)


def test_architectures_are_the_configured_ones():
  assert tuple(models.ARCHITECTURES) == (
      'baseline_cnn', 'improved_cnn', 'resnet50')
  assert models.ARCHITECTURES == options.ARCHITECTURES


@pytest.mark.parametrize('name', ['baseline_cnn', 'improved_cnn', 'resnet50'])
def test_builds_predicts_probabilities_and_trains_one_step(name, resnet):
  model = resnet if name == 'resnet50' else _build(name)
  assert model.name == name
  assert tuple(model.input_shape) == (None, SIZE, SIZE, 1)
  assert tuple(model.output_shape) == (None, 1)
  images, labels = _batch()
  probabilities = model.predict(images, verbose=0)
  assert probabilities.shape == (len(images), 1)
  assert np.all((probabilities >= 0.0) & (probabilities <= 1.0))

  before = [w.numpy().copy() for w in model.trainable_weights]
  assert before, 'nothing to train'
  model.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.BinaryCrossentropy())
  loss = model.train_on_batch(images, labels)
  assert np.isfinite(loss)
  after = [w.numpy() for w in model.trainable_weights]
  changed = [not np.array_equal(b, a) for b, a in zip(before, after)]
  assert any(changed)


def test_unknown_architecture_lists_the_choices():
  with pytest.raises(ValueError) as error:
    models.build_model('vgg16', SIZE, 10)
  message = str(error.value)
  assert 'vgg16' in message
  for name in models.ARCHITECTURES:
    assert name in message


def test_bn_momentum_leaves_one_percent_after_an_epoch():
  momentum = models.bn_momentum_for(100)
  assert 0.5 < momentum < 0.99
  assert momentum ** 100 == pytest.approx(0.01, rel=1e-6)
  for steps in (20, 163, 400):
    assert models.bn_momentum_for(steps) ** steps == pytest.approx(
        0.01, rel=1e-6)


def test_bn_momentum_grows_with_steps():
  values = [models.bn_momentum_for(s) for s in (10, 50, 100, 300)]
  assert values == sorted(values) and len(set(values)) == len(values)


@pytest.mark.parametrize('steps, expected', [
    (0, 0.5), (1, 0.5), (2, 0.5), (6, 0.5), (459, 0.99), (1000, 0.99),
    (10 ** 6, 0.99)])
def test_bn_momentum_is_clipped(steps, expected):
  assert models.bn_momentum_for(steps) == expected


def test_bn_momentum_just_inside_the_bounds_is_not_clipped():
  # 0.5**7 > 0.01 and 0.99**458 < 0.01: the edges of the unclipped range.
  assert models.bn_momentum_for(7) == pytest.approx(
      math.exp(math.log(0.01) / 7))
  assert 0.5 < models.bn_momentum_for(7)
  assert models.bn_momentum_for(458) < 0.99


@pytest.mark.parametrize('steps', [3, 100, 5000])
def test_improved_cnn_batch_norm_layers_carry_the_momentum(steps):
  model = _build('improved_cnn', steps_per_epoch=steps)
  norms = [l for l in model.layers
           if isinstance(l, layers.BatchNormalization)]
  assert len(norms) >= 4
  assert {l.momentum for l in norms} == {models.bn_momentum_for(steps)}


def test_resnet50_batch_norm_layers_carry_the_momentum(resnet):
  norms = [l for l in _all_layers(resnet)
           if isinstance(l, layers.BatchNormalization)]
  assert len(norms) > 50
  assert {l.momentum for l in norms} == {models.bn_momentum_for(10)}


def _kernel_regularizers(model: keras.Model):
  return [getattr(l, 'kernel_regularizer', None) for l in model.layers
          if getattr(l, 'kernel_regularizer', None) is not None]


def test_baseline_cnn_has_no_normalisation_or_regularisation():
  model = _build('baseline_cnn')
  assert not any(isinstance(l, (layers.BatchNormalization, layers.Dropout))
                 for l in model.layers)
  assert not _kernel_regularizers(model)
  assert not model.losses  # no weight-decay terms
  assert any(isinstance(l, layers.Conv2D) for l in model.layers)


def test_improved_cnn_has_batch_norm_dropout_and_l2():
  model = _build('improved_cnn', l2=1e-3, dropout=0.4)
  assert any(isinstance(l, layers.BatchNormalization) for l in model.layers)
  dropouts = [l for l in model.layers if isinstance(l, layers.Dropout)]
  assert dropouts and {l.rate for l in dropouts} == {0.4}
  regularizers = _kernel_regularizers(model)
  assert regularizers
  assert all(isinstance(r, keras.regularizers.L2) for r in regularizers)
  assert [float(r.l2) for r in regularizers] == pytest.approx(
      [1e-3] * len(regularizers))
  model(np.zeros((1, SIZE, SIZE, 1), np.float32))
  assert model.losses  # the L2 terms reach the loss


def test_improved_cnn_without_l2_has_no_regularizers():
  assert not _kernel_regularizers(_build('improved_cnn', l2=0.0))


def _trainable_names(model: keras.Model):
  backbone = model.get_layer('resnet50')
  return {l.name for l in backbone.layers if l.trainable and l.weights}


def test_resnet50_head_phase_trains_only_the_head(resnet):
  models.set_fine_tuning(resnet, architectures.HEAD, pretrained=False)
  backbone = resnet.get_layer('resnet50')
  assert not backbone.trainable
  assert not backbone.trainable_weights
  head = resnet.get_layer('pneumonia')
  assert {id(w) for w in resnet.trainable_weights} == {
      id(w) for w in head.trainable_weights}
  assert len(resnet.trainable_weights) == 2  # kernel and bias


@pytest.mark.parametrize('pretrained', [True, False])
def test_resnet50_top_phase_unfreezes_conv5_only(resnet, pretrained):
  try:
    models.set_fine_tuning(resnet, architectures.TOP,
                           pretrained=pretrained)
    backbone = resnet.get_layer('resnet50')
    assert backbone.trainable
    conv5 = [l for l in backbone.layers if l.name.startswith('conv5_')]
    earlier = [l for l in backbone.layers
               if l.name.startswith(('conv1_', 'conv2_', 'conv3_', 'conv4_'))]
    assert conv5 and earlier
    assert not any(l.trainable for l in earlier)
    assert not any(w.trainable for l in earlier for w in l.weights)
    for layer in conv5:
      if isinstance(layer, layers.BatchNormalization):
        assert layer.trainable == (not pretrained), layer.name
      else:
        assert layer.trainable, layer.name
    convs = [l for l in conv5 if isinstance(l, layers.Conv2D)]
    assert convs and all(l.kernel.trainable for l in convs)
    norms = [l for l in conv5 if isinstance(l, layers.BatchNormalization)]
    assert norms
    assert all(l.gamma.trainable == (not pretrained) for l in norms)
    # The trainable weights are the head and conv5's weights, nothing else.
    trainable = {id(w) for w in resnet.trainable_weights}
    conv5_weights = {id(w) for l in conv5 for w in l.trainable_weights}
    head = {id(w) for w in resnet.get_layer('pneumonia').trainable_weights}
    assert trainable == conv5_weights | head
  finally:
    models.set_fine_tuning(resnet, architectures.HEAD, pretrained=False)


def test_resnet50_back_to_the_head_phase_freezes_everything_again(resnet):
  models.set_fine_tuning(resnet, architectures.TOP, pretrained=False)
  assert len(resnet.trainable_weights) > 2
  models.set_fine_tuning(resnet, architectures.HEAD, pretrained=False)
  assert len(resnet.trainable_weights) == 2


def test_resnet50_from_random_weights_is_built_with_every_layer_training():
  model = _build('resnet50', resnet_weights=None)
  backbone = model.get_layer('resnet50')
  assert backbone.trainable and all(l.trainable for l in backbone.layers)
  norms = [l for l in backbone.layers
           if isinstance(l, layers.BatchNormalization)]
  assert norms and all(l.gamma.trainable for l in norms)
  # Every weight trains but BatchNorm's moving statistics.
  moving = {id(w) for l in norms for w in (l.moving_mean, l.moving_variance)}
  assert {id(w) for w in model.trainable_weights} == {
      id(w) for w in model.weights} - moving


@pytest.mark.parametrize('pretrained', [True, False])
def test_resnet50_all_phase_trains_every_layer(resnet, pretrained):
  try:
    models.set_fine_tuning(resnet, architectures.ALL, pretrained=pretrained)
    backbone = resnet.get_layer('resnet50')
    for layer in backbone.layers:
      if isinstance(layer, layers.BatchNormalization):
        # A pretrained backbone keeps its BatchNorm layers frozen.
        assert layer.trainable == (not pretrained), layer.name
      else:
        assert layer.trainable, layer.name
    convs = [l for l in backbone.layers if isinstance(l, layers.Conv2D)]
    assert len(convs) == 53 and all(l.kernel.trainable for l in convs)
  finally:
    models.set_fine_tuning(resnet, architectures.HEAD, pretrained=False)


def test_set_fine_tuning_rejects_an_unknown_phase_kind(resnet):
  with pytest.raises(ValueError, match='unknown phase kind'):
    models.set_fine_tuning(resnet, 'everything')


def test_prepare_phase_applies_what_the_phase_trains(resnet):
  try:
    phase = architectures.Phase(1, 1, 1e-3, architectures.ALL)
    assert models.prepare_phase(resnet, 'resnet50', phase, pretrained=False)
    assert len(resnet.trainable_weights) > 100
    phase = architectures.Phase(1, 1, 1e-3, architectures.HEAD)
    assert models.prepare_phase(resnet, 'resnet50', phase, pretrained=False)
    assert len(resnet.trainable_weights) == 2
    cnn = _build('improved_cnn')
    assert not models.prepare_phase(cnn, 'improved_cnn', phase, False)
  finally:
    models.set_fine_tuning(resnet, architectures.HEAD, pretrained=False)


def test_resnet50_repeats_the_gray_channel(resnet):
  """ResNet50 takes the one-channel tensor and repeats it inside."""
  to_rgb = resnet.get_layer('to_rgb')
  image = np.random.default_rng(1).random((1, SIZE, SIZE, 1), np.float32)
  sub = keras.Model(resnet.input, to_rgb.output)
  rgb = np.asarray(sub(image))
  assert rgb.shape == (1, SIZE, SIZE, 3)
  for channel in range(3):
    np.testing.assert_array_equal(rgb[..., channel], image[..., 0])


@pytest.mark.parametrize('name', ['baseline_cnn', 'improved_cnn'])
def test_equalize_is_the_first_layer_and_makes_gamma_irrelevant(name):
  model = _build(name, intensity_normalisation='equalize')
  assert isinstance(model.layers[1], models.HistogramEqualisation)
  assert not model.layers[1].weights
  images, _ = _batch(2)
  np.testing.assert_allclose(
      np.asarray(model(images ** 2.0, training=False)),
      np.asarray(model(images, training=False)), atol=1e-6)
  plain = _build(name)
  assert not any(isinstance(l, models.HistogramEqualisation)
                 for l in plain.layers)


def test_resnet50_equalizes_before_repeating_the_channel():
  model = _build('resnet50', resnet_weights=None,
                 intensity_normalisation='equalize')
  to_rgb = model.get_layer('to_rgb')
  assert isinstance(model.layers[1], models.HistogramEqualisation)
  images, _ = _batch(2)
  rgb = np.asarray(keras.Model(model.input, to_rgb.output)(images))
  expected = np.asarray(preprocessing.equalize_histogram(images))
  for channel in range(3):
    np.testing.assert_allclose(rgb[..., channel], expected[..., 0])


def test_unknown_intensity_normalisation_is_refused():
  with pytest.raises(ValueError, match='intensity_normalisation'):
    _build('improved_cnn', intensity_normalisation='gamma')


@pytest.mark.parametrize('name', models.ARCHITECTURES)
def test_border_crop_then_clahe_come_first(name):
  model = _build(name, resnet_weights=None, intensity_normalisation='clahe',
                 border_crop=0.1)
  crop, clahe = model.layers[1:3]
  assert isinstance(crop, models.BorderCrop) and crop.fraction == 0.1
  assert crop.name == models.BORDER_CROP_LAYER
  assert isinstance(clahe, models.Clahe)
  assert not crop.weights and not clahe.weights
  images, _ = _batch(2)
  staged = keras.Model(model.input, clahe.output)(images)
  np.testing.assert_allclose(
      np.asarray(staged), np.asarray(preprocessing.clahe(
          preprocessing.crop_border(images, 0.1))), atol=1e-6)
