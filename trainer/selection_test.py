"""The Trainer ships the ensemble only when it beats the best single model."""
import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import data
from trainer import ensemble
from trainer import models
from trainer import selection

SIZE = 8


def test_exact_auc_counts_pairs_and_half_ties():
  rng = np.random.default_rng(0)
  scores = rng.integers(0, 5, 60).astype(float)  # many ties
  labels = rng.integers(0, 2, 60)
  pairs = [(p, n) for p, n in itertools.product(scores[labels == 1],
                                                scores[labels == 0])]
  brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0
                   for p, n in pairs])
  assert selection.exact_auc(scores, labels) == pytest.approx(brute)
  assert np.isnan(selection.exact_auc([0.1, 0.2], [1, 1]))


def _half_model(name, columns):
  """logit = 12 * (mean of the image's `columns` half - 0.5)."""
  inputs = keras.Input((SIZE, SIZE, 1))
  half = keras.layers.Cropping2D(((0, 0), columns))(inputs)
  mean = keras.layers.GlobalAveragePooling2D()(half)
  head = keras.layers.Dense(1, activation='sigmoid',
                            name=models.OUTPUT_LAYER)
  model = keras.Model(inputs, head(mean), name=name)
  head.set_weights([np.array([[12.0]]), np.array([-6.0])])
  return model


def _split(label_of):
  """Images of constant halves; a label computed from the two halves."""
  rng = np.random.default_rng(1)
  left, right = rng.random(400), rng.random(400)
  images = np.concatenate([
      np.broadcast_to(left[:, None, None, None], (400, SIZE, SIZE // 2, 1)),
      np.broadcast_to(right[:, None, None, None], (400, SIZE, SIZE // 2, 1))],
                          axis=2).astype(np.float32)
  labels = label_of(left, right).astype(np.int64)
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
  return data.Split(dataset, 400, {0: int((labels == 0).sum()),
                                   1: int((labels == 1).sum())})


def _trained():
  # Sees the left half / the right half of the image.
  return {'left': _half_model('left', (0, SIZE // 2)),
          'right': _half_model('right', (SIZE // 2, 0))}


def test_the_ensemble_ships_when_it_beats_the_best_single_model():
  split = _split(lambda left, right: left + right > 1)  # both halves matter
  choice = selection.choose(_trained(), 'left', split, 32, try_ensemble=True)
  record = choice.record
  assert record['chosen'] and choice.architecture == selection.ENSEMBLE
  assert choice.members == ['left', 'right']
  assert record['eval_auc'] > record['best_single_eval_auc'] + 0.05
  assert record['best_single_eval_auc'] == record['member_eval_auc']['left']
  # The shipped logits are the scorer's own on the eval split.
  batches = data.evaluation_batches(split, 32)
  served = np.concatenate([choice.scorer(x).numpy() for x, _ in batches])
  np.testing.assert_allclose(served, choice.logits, atol=1e-4)


def test_the_best_single_model_ships_when_the_ensemble_does_not_beat_it():
  split = _split(lambda left, right: left > 0.5)  # only the left half
  choice = selection.choose(_trained(), 'left', split, 32, try_ensemble=True)
  assert not choice.record['chosen'] and choice.architecture == 'left'
  assert choice.record['best_single_eval_auc'] == 1.0
  assert [m.name for m in choice.scorer.members] == ['left']


def test_no_ensemble_is_tried_when_switched_off_or_alone():
  split = _split(lambda left, right: left + right > 1)
  off = selection.choose(_trained(), 'left', split, 32, try_ensemble=False)
  alone = selection.choose({'left': _half_model('left', (0, SIZE // 2))},
                           'left', split, 32, try_ensemble=True)
  for choice in (off, alone):
    assert choice.record is None and choice.architecture == 'left'
    assert choice.logits.shape == (400,)
