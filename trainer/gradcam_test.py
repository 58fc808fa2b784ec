"""Tests of trainer.gradcam on a tiny model trained where the answer is known.

PNEUMONIA images carry a bright blob (anywhere), NORMAL ones none, on the
same noisy background: a trained model must look at the blob, so with a
blob in each half, hiding the left half moves the map to the right half.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from contract import names as constants
from trainer import gradcam
from trainer import models
from trainer import signatures

SIZE = 64
BACKGROUND = 0.3


def _image(rng, blobs=()):
  image = BACKGROUND + 0.05 * rng.standard_normal((SIZE, SIZE))
  yy, xx = np.mgrid[:SIZE, :SIZE]
  for y, x in blobs:
    image[(yy - y) ** 2 + (xx - x) ** 2 <= 36] = 0.95
  return np.clip(image, 0, 1).astype(np.float32)[..., None]


def _blob(rng):
  return tuple(rng.integers(8, SIZE - 8, size=2))


@pytest.fixture(scope='module')
def model():
  keras.utils.set_random_seed(1)
  rng = np.random.default_rng(1)
  labels = np.array([0, 1] * 32)
  x = np.stack([_image(rng, [_blob(rng)] if y else []) for y in labels])
  built = models.build_model('baseline_cnn', SIZE, 3)
  built.compile(optimizer=keras.optimizers.Adam(3e-3),
                loss='binary_crossentropy')
  built.fit(x, labels, batch_size=16, epochs=12, verbose=0)
  probability = built(x, training=False).numpy()[:, 0]
  assert np.mean((probability >= 0.5) == labels) > 0.9  # it learned
  return built


@pytest.fixture(scope='module')
def both_halves():
  """A blob in each half, and the same image with its left half hidden."""
  rng = np.random.default_rng(7)
  image = _image(rng, [(20, 14), (44, 50)])
  masked = image.copy()
  masked[:, :SIZE // 2] = BACKGROUND
  return np.stack([image, masked])


def _right_share(heat):
  return heat[:, SIZE // 2:].sum() / heat.sum()


def test_heat_map_size_range_and_mass_moves_with_the_pixels(model,
                                                            both_halves):
  heat = gradcam.heat_maps(model, both_halves).numpy()
  assert heat.shape == (2, SIZE, SIZE)
  assert np.all(np.isfinite(heat))
  assert heat.min() >= 0 and heat.max() == pytest.approx(1.0)
  for one in heat:
    assert one.std() > 0.05  # not constant
  full, masked = _right_share(heat[0]), _right_share(heat[1])
  assert 0.2 < full < 0.8  # both blobs count
  assert masked > 0.8 and masked > full + 0.2


def test_feature_map_is_found_in_every_architecture():
  found = {name: [layer.name for layer in gradcam.feature_layers(
      models.build_model(name, 32, 3))] for name in models.ARCHITECTURES}
  assert found['baseline_cnn'][0].startswith('max_pooling2d')
  assert found['improved_cnn'][0].startswith('max_pooling2d')
  assert found['resnet50'] == ['resnet50', 'conv5_block3_out']


def test_an_ensemble_map_is_of_the_shipped_logit(model, both_halves):
  keras.utils.set_random_seed(2)
  other = models.build_model('improved_cnn', SIZE, 3)
  heat, logit = gradcam.GradCam([model, other])(both_halves)
  p = np.mean([m(both_halves, training=False).numpy()[:, 0]
               for m in (model, other)], axis=0)
  np.testing.assert_allclose(logit.numpy(), np.log(p / (1 - p)), atol=1e-4)
  assert heat.shape == (2, SIZE, SIZE)
  assert np.all(np.isfinite(heat.numpy()))


def test_explain_signature_equals_the_function(model, both_halves, tmp_path):
  """The exported signature (loaded as TF Serving would; signatures_test
  loads it without project code) gives the Python function's map."""
  pngs = [tf.io.encode_png(tf.cast(tf.round(image * 255), tf.uint8)).numpy()
          for image in both_halves]
  path = tmp_path / 'model'
  signatures.export(model, str(path), SIZE, 0.5, info={})
  explain = tf.saved_model.load(str(path)).signatures[
      constants.EXPLAIN_SIGNATURE]
  out = explain(**{constants.EXPLAIN_INPUT: tf.constant(pngs)})
  decoded = np.stack([tf.io.decode_png(p).numpy() / 255.0
                      for p in pngs]).astype(np.float32)
  np.testing.assert_allclose(out[constants.HEAT_MAP_OUTPUT].numpy(),
                             gradcam.heat_maps(model, decoded), atol=1e-4)
  np.testing.assert_allclose(
      out[constants.PROBABILITY_OUTPUT].numpy(),
      model(decoded, training=False).numpy()[:, 0], atol=1e-5)
  empty = explain(**{constants.EXPLAIN_INPUT: tf.constant([], tf.string)})
  assert empty[constants.HEAT_MAP_OUTPUT].shape.as_list() == [0, SIZE, SIZE]


def test_a_border_cropped_model_gets_no_map_on_the_cut_border(both_halves):
  """The model never saw the border: the map fills the central box (the
  cropped view, resized back) and the cut frame gets none."""
  keras.utils.set_random_seed(3)
  cropped = models.build_model('baseline_cnn', SIZE, 3, border_crop=0.125)
  heat = gradcam.heat_maps(cropped, both_halves).numpy()
  margin = SIZE // 8
  assert heat.shape == (2, SIZE, SIZE)
  inner = heat[:, margin:-margin, margin:-margin]
  assert inner.max() == pytest.approx(1.0)
  frame = heat.copy()
  frame[:, margin:-margin, margin:-margin] = 0
  assert frame.max() == 0.0
  ones = tf.ones([1, 4, 4, 1])
  placed = gradcam._placed(ones, tf.constant([SIZE, SIZE]), 0.125).numpy()
  assert placed[0, margin:-margin, margin:-margin].min() == pytest.approx(1.0)
  assert placed[0, :margin].max() == 0.0
