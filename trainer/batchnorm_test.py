"""BatchNorm statistics recomputed before validation (trainer/batchnorm.py):
the statistics are the sample's, only layers that learn them change, and in
the real train_architecture validation and checkpoints see them."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from contract import layout
from contract import options
from testing import images as shared_images
from trainer import batchnorm
from trainer import data
from trainer import run
from trainer import training

SIZE = 32
BATCH = 8


def _model(frozen_inner: bool = False) -> keras.Model:
  """conv-BN-ReLU, then a nested block with its own BatchNorm."""
  inputs = keras.Input((SIZE, SIZE, 1))
  x = keras.layers.Conv2D(4, 3, name='conv')(inputs)
  x = keras.layers.BatchNormalization(name='outer_bn')(x)
  x = keras.layers.ReLU()(x)
  inner_in = keras.Input(x.shape[1:])
  inner_bn = keras.layers.BatchNormalization(name='inner_bn')
  inner = keras.Model(inner_in, inner_bn(keras.layers.Conv2D(3, 3)(inner_in)),
                      name='inner')
  inner_bn.trainable = not frozen_inner
  x = keras.layers.GlobalAveragePooling2D()(inner(x))
  return keras.Model(inputs, keras.layers.Dense(1)(x))


def _batches(count: int, seed: int = 0):
  rng = np.random.default_rng(seed)
  return [tf.constant(rng.uniform(0, 1, (BATCH, SIZE, SIZE, 1)) * (k + 1),
                      tf.float32) for k in range(count)]


def _stale(model: keras.Model) -> None:
  for layer in batchnorm.updating_layers(model) or []:
    layer.moving_mean.assign(np.full(layer.moving_mean.shape, 100.0))
    layer.moving_variance.assign(np.full(layer.moving_variance.shape, 1e-4))


def test_recompute_sets_the_mean_of_the_batch_statistics():
  keras.utils.set_random_seed(1)
  model = _model()
  _stale(model)
  batches = _batches(3)
  outer = model.get_layer('outer_bn')
  probe = keras.Model(model.inputs, outer.input)
  inputs = [probe(b).numpy() for b in batches]
  expected_mean = np.mean([x.mean((0, 1, 2)) for x in inputs], axis=0)
  expected_var = np.mean([x.var((0, 1, 2)) for x in inputs], axis=0)

  assert batchnorm.recompute(model, batches) == 2
  np.testing.assert_allclose(outer.moving_mean.numpy(), expected_mean,
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(outer.moving_variance.numpy(), expected_var,
                             rtol=1e-3, atol=1e-5)
  inner_bn = model.get_layer('inner').get_layer('inner_bn')
  assert np.all(np.abs(inner_bn.moving_mean.numpy()) < 50), 'nested: set too'
  assert outer.momentum == inner_bn.momentum == 0.99, 'momentum restored'


def test_layers_that_do_not_learn_statistics_are_left_alone():
  model = _model(frozen_inner=True)
  _stale(model)
  inner_bn = model.get_layer('inner').get_layer('inner_bn')
  inner_bn.moving_mean.assign(np.full(inner_bn.moving_mean.shape, 7.0))
  weights = [w.numpy() for w in model.trainable_weights]
  assert batchnorm.recompute(model, _batches(2)) == 1
  np.testing.assert_array_equal(inner_bn.moving_mean.numpy(), 7.0)
  for before, after in zip(weights, model.trainable_weights):
    np.testing.assert_array_equal(before, after.numpy())


def _splits(tmp_path):
  """(train, eval): 16 real images each, disjoint."""
  return [data.load_split(shared_images.write_split(
      tmp_path / name, name, shared_images.real_images(8, 8, offset=offset)),
                          SIZE, name)
          for name, offset in (('train', 0), ('eval', 8))]


class _Staler(keras.callbacks.Callback):
  """Makes the moving statistics stale before every training step."""

  def on_train_batch_begin(self, batch, logs=None):
    _stale(self.model)


@pytest.mark.parametrize('sample_images', [0, 16])
def test_validation_and_checkpoints_see_recomputed_statistics(
    tmp_path, monkeypatch, sample_images):
  train, evaluation = _splits(tmp_path)
  settings = options.training_settings(
      'quick', architectures=['improved_cnn'], image_size=SIZE, epochs=2,
      batch_size=BATCH, resnet_weights='none', race_after_epochs=0,
      batchnorm_sample_images=sample_images)
  for_phase = training.schedules.for_phase
  monkeypatch.setattr(training.schedules, 'for_phase', lambda *a, **k: (
      for_phase(*a, **k)[0], for_phase(*a, **k)[1] + [_Staler()]))
  with run.deterministic_ops(True):
    model, _ = training.train_architecture(
        'improved_cnn', train, evaluation, settings, str(tmp_path / 'run'),
        None)
  sample = batchnorm.sample(train, 16, BATCH, settings.seed)
  arch_dir = tmp_path / 'run' / 'improved_cnn'
  history = json.loads((arch_dir / 'history.json').read_text())
  checkpoints = sorted(os.listdir(arch_dir / layout.CHECKPOINTS_DIR))
  assert len(checkpoints) == len(history) == 2
  for name, epoch in zip(checkpoints, history):
    model.load_weights(str(arch_dir / layout.CHECKPOINTS_DIR / name))
    # Validation ran on the statistics the checkpoint holds.
    loss = model.evaluate(data.evaluation_batches(evaluation, BATCH),
                          verbose=0, return_dict=True)['loss']
    assert loss == pytest.approx(epoch['val_loss'], rel=1e-3), name
    saved = [layer.moving_mean.numpy()
             for layer in batchnorm.updating_layers(model)]
    batchnorm.recompute(model, sample)
    fresh = [layer.moving_mean.numpy()
             for layer in batchnorm.updating_layers(model)]
    same = all(np.allclose(a, b, rtol=1e-4, atol=1e-5)
               for a, b in zip(saved, fresh))
    # Off, the checkpoints hold the stale statistics the steps left.
    assert same == bool(sample_images), name
