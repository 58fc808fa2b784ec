"""Logit-space scoring: one model, the mean probability of several, and
what the exported SavedModel serves from them."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from contract import names as constants
from trainer import calibration
from trainer import ensemble
from trainer import models
from trainer import preprocessing
from trainer import signatures
from testing import images as shared_images

SIZE = 64


def test_mean_probability_logit_is_the_logit_of_the_mean():
  z = np.array([[-2.0, 0.5, 3.0], [0.0, 0.0, 0.0], [4.0, -4.0, 1.0]])
  expected = np.mean(1 / (1 + np.exp(-z)), axis=1)
  got = ensemble.mean_probability_logit(tf.constant(z, tf.float32)).numpy()
  np.testing.assert_allclose(1 / (1 + np.exp(-got)), expected, rtol=1e-6)
  np.testing.assert_allclose(ensemble.mean_probability_logit_np(z), got,
                             rtol=1e-5, atol=1e-6)


def test_mean_probability_logit_stays_exact_where_members_are_certain():
  # float32 probabilities of 1 - 1e-13 round to 1: log(p / (1 - p)) = inf.
  z = np.array([[30.0, 40.0], [-30.0, -35.0]])
  got = ensemble.mean_probability_logit(tf.constant(z, tf.float32)).numpy()
  assert np.all(np.isfinite(got))
  # 1 - mean(sigmoid) = (e^-30 + e^-40)/2 -> logit ~ 30 + log 2.
  assert got[0] == pytest.approx(30 + np.log(2), abs=1e-3)
  assert got[1] == pytest.approx(-30 + np.log1p(np.exp(-5)) - np.log(2),
                                 abs=1e-3)


def _models():
  keras.utils.set_random_seed(0)
  return [models.build_model('baseline_cnn', SIZE, 10),
          models.build_model('improved_cnn', SIZE, 10)]


def test_a_scorer_gives_each_architectures_own_logit():
  batch = tf.random.uniform([4, SIZE, SIZE, 1], seed=1)
  for model in _models():
    z = ensemble.Scorer([model])(batch).numpy()
    np.testing.assert_allclose(tf.sigmoid(z).numpy(),
                               model(batch, training=False).numpy()[:, 0],
                               atol=1e-7, rtol=0)


def test_a_model_without_the_output_layer_is_scored_from_its_probability():
  inputs = keras.Input((SIZE, SIZE, 1))
  mean = keras.layers.GlobalAveragePooling2D()(inputs)
  model = keras.Model(inputs, keras.layers.Activation('sigmoid')(mean))
  batch = tf.fill([2, SIZE, SIZE, 1], 0.25)
  z = ensemble.Scorer([model])(batch).numpy()
  np.testing.assert_allclose(z, [0.25, 0.25], atol=1e-5)


def test_exported_ensemble_serves_the_calibrated_mean_probability(tmp_path):
  members = _models()
  raws = [raw for raw, _ in shared_images.real_images(3, 3)]
  fitted = calibration.Calibration(calibration.PLATT, 1.7, -0.4)
  signatures.export(members, str(tmp_path), SIZE, 0.5, info={},
                    calibration=fitted)
  del members  # served without them (and without project code: see
  # signatures_test for the bare load)
  loaded = tf.saved_model.load(str(tmp_path))
  out = loaded.signatures[constants.SERVING_SIGNATURE](
      **{constants.SERVING_INPUT: tf.constant(raws)})
  probability = out[constants.PROBABILITY_OUTPUT].numpy()
  labels = [v.decode() for v in out[constants.LABEL_OUTPUT].numpy()]
  batch = tf.stack([preprocessing.preprocess_image(r, SIZE) for r in raws])
  member_p = np.stack([m(batch, training=False).numpy()[:, 0]
                       for m in _models()], axis=1)  # same seed, same weights
  mean = member_p.mean(axis=1)
  expected = calibration.apply(fitted, np.log(mean) - np.log1p(-mean))
  np.testing.assert_allclose(probability, expected, atol=1e-5, rtol=0)
  assert labels == [constants.LABEL_NAMES[int(p >= 0.5)] for p in probability]
  assert float(loaded.calibration_slope.numpy()) == pytest.approx(1.7)


def test_views_are_the_image_then_its_crops():
  images = tf.random.uniform([3, SIZE, SIZE, 1], seed=2)
  viewed = ensemble.views_of(images, 3)
  assert viewed.shape == (9, SIZE, SIZE, 1)
  np.testing.assert_array_equal(viewed[:3].numpy(), images.numpy())
  centre = tf.image.crop_and_resize(images, [list(ensemble.VIEW_BOXES[1])] * 3,
                                    tf.range(3), (SIZE, SIZE))
  np.testing.assert_allclose(viewed[3:6].numpy(), centre.numpy(), atol=1e-6)
  assert not np.allclose(viewed[6:].numpy(), images.numpy())
  for bad in (0, len(ensemble.VIEW_BOXES) + 1):
    with pytest.raises(ValueError, match='views'):
      ensemble.Scorer(_models()[:1], views=bad)


def test_a_scorer_with_views_gives_the_mean_probability_over_them(tmp_path):
  model = _models()[1]
  raws = [raw for raw, _ in shared_images.real_images(2, 2)]
  signatures.export(ensemble.Scorer([model], views=3), str(tmp_path), SIZE,
                    0.5, info={})
  served = tf.saved_model.load(str(tmp_path)).signatures[
      constants.SERVING_SIGNATURE](
          **{constants.SERVING_INPUT: tf.constant(raws)})[
              constants.PROBABILITY_OUTPUT].numpy()
  batch = tf.stack([preprocessing.preprocess_image(r, SIZE) for r in raws])
  viewed = ensemble.views_of(batch, 3)
  p = model(viewed, training=False).numpy().reshape(3, len(raws))
  np.testing.assert_allclose(served, p.mean(axis=0), atol=1e-5, rtol=0)
  single = ensemble.Scorer([model])(batch).numpy()
  assert not np.allclose(served, 1 / (1 + np.exp(-single)), atol=1e-4)
