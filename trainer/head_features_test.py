"""The head phase on cached backbone features (trainer/head_features.py),
alone and inside the real train_architecture with a local weights file."""
import json
import os

import keras
import numpy as np
import pytest

from contract import options
from testing import images as shared_images
from trainer import data
from trainer import head_features
from trainer import models
from trainer import resnet_weights
from trainer import training

SIZE, BATCH = 32, 8


@pytest.fixture(name='weights_file')
def _weights_file(tmp_path):
  """A local ResNet50 weights file (random values): a pretrained start as
  far as the Trainer knows (--resnet-weights PATH)."""
  keras.utils.set_random_seed(7)
  path = tmp_path / 'resnet50_notop.weights.h5'
  keras.applications.ResNet50(include_top=False, weights=None, pooling='avg',
                              input_shape=(SIZE, SIZE, 3)).save_weights(
                                  str(path))
  return str(path)


@pytest.fixture(name='splits')
def _splits(tmp_path):
  return [data.load_split(shared_images.write_split(
      tmp_path / name, name, images), SIZE, name) for name, images in (
          ('train', shared_images.real_images(8, 8)),
          ('eval', shared_images.real_images(6, 6, offset=8)))]


def _images(split):
  return np.stack([image for image, _ in split.dataset.as_numpy_iterator()])


def test_head_on_extracted_features_scores_as_the_full_model(weights_file,
                                                             splits):
  model = models.build_model('resnet50', SIZE, 2,
                             resnet_weights=weights_file)
  head = head_features.split(model)
  # The head is the full model's own layers, not copies.
  assert {id(w) for w in head.model.weights} <= {id(w) for w in model.weights}
  assert head.extractor.output.shape[-1] == 2048
  features = head_features.extract(head.extractor, splits[1], BATCH)
  cached = np.stack([f for f, _ in features.dataset.as_numpy_iterator()])
  np.testing.assert_allclose(
      head.model.predict(cached, verbose=0),
      model.predict(_images(splits[1]), verbose=0), rtol=1e-4, atol=1e-5)
  labels = [int(label) for _, label in features.dataset.as_numpy_iterator()]
  assert labels == [int(label) for _, label in
                    splits[1].dataset.as_numpy_iterator()]


@pytest.mark.parametrize('cache', [True, False])
def test_the_head_phase_computes_backbone_features_once(weights_file, splits,
                                                        tmp_path, cache):
  """3 epochs: 2 of the head (frozen backbone), 1 of fine-tuning. With the
  cache the backbone computes the train and eval features once for both
  head epochs and the backbone is untouched in that phase; the val AUC
  recorded at a head epoch is the full model's own at that checkpoint."""
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=3, batch_size=BATCH, patience=10,
      architectures=['resnet50'], resnet_weights=weights_file,
      resnet_head_epochs_fraction=2 / 3,
      cache_head_features=cache, log_every_seconds=1000.0)
  extract, calls = head_features.extract, []

  def counting(extractor, split, batch_size):
    calls.append(split.size)
    return extract(extractor, split, batch_size)

  run_dir = tmp_path / 'run'
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(head_features, 'extract', counting)
    training.train_architecture('resnet50', *splits, settings, str(run_dir),
                                resnet_weights.resolve(weights_file))
  assert calls == ([splits[0].size, splits[1].size] if cache else [])
  with open(run_dir / 'resnet50' / 'history.json') as f:
    history = json.load(f)
  assert [h['phase'] for h in history] == [1, 1, 2]

  def checkpoint(epoch):
    model = models.build_model('resnet50', SIZE, 2,
                               resnet_weights=weights_file)
    model.load_weights(os.path.join(run_dir, 'resnet50', 'checkpoints',
                                    f'epoch-{epoch:03d}.weights.h5'))
    return model

  initial = models.build_model('resnet50', SIZE, 2,
                               resnet_weights=weights_file)
  after_head = checkpoint(2)
  backbone = models.BACKBONE_LAYER
  for before, after in zip(initial.get_layer(backbone).get_weights(),
                           after_head.get_layer(backbone).get_weights()):
    np.testing.assert_array_equal(before, after)
  assert not np.array_equal(
      initial.get_layer(models.OUTPUT_LAYER).get_weights()[0],
      after_head.get_layer(models.OUTPUT_LAYER).get_weights()[0])
  auc = keras.metrics.AUC()
  auc.update_state([int(label) for _, label in
                    splits[1].dataset.as_numpy_iterator()],
                   np.reshape(checkpoint(1).predict(_images(splits[1]),
                                                    verbose=0), -1))
  assert history[0]['val_auc'] == pytest.approx(float(auc.result()),
                                                abs=1e-4)
