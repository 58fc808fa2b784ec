"""Tests of trainer.signatures: the exported SavedModel is the model contract.

The key check: for real images, serving gives exactly what the trained Keras
model gives on `preprocess_image` of the same bytes (no training/serving
skew), for both signatures.
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from contract import layout
from contract import names as constants
from testing import hostile
from testing import images as shared_images
from testing.support import require_shared_data
from trainer import gradcam
from trainer import models
from trainer import preprocessing
from trainer import signatures

SIZE = 32
INFO = {'architecture': 'improved_cnn', 'comparison': [{'val_auc': 0.75}]}


@pytest.fixture(scope='module')
def model():
  keras.utils.set_random_seed(3)
  built = models.build_model('improved_cnn', SIZE, 10)
  # Move BatchNorm statistics away from their initial values so the model
  # output depends on the input (and on training=False being used).
  built.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss='binary_crossentropy')
  rng = np.random.default_rng(0)
  x = rng.random((16, SIZE, SIZE, 1), dtype=np.float32)
  y = np.array([0, 1] * 8)
  for _ in range(3):
    built.train_on_batch(x, y)
  return built


@pytest.fixture(scope='module')
def images():
  """Real image bytes: grayscale and 3-channel originals, a PNG of one, and
  a small kermany-224 JPEG."""
  gray = shared_images.original(1).read_bytes()
  rgb = shared_images.original(3).read_bytes()
  png = tf.io.encode_png(tf.io.decode_image(
      rgb, channels=3, expand_animations=False)).numpy()
  root = require_shared_data('kermany-224') / 'chest_xray' / 'train'
  small = sorted((root / 'NORMAL').glob('*.jpeg'))[0].read_bytes()
  return [gray, rgb, png, small]


@pytest.fixture(scope='module')
def exported(model, tmp_path_factory):
  path = tmp_path_factory.mktemp('export') / 'm'
  signatures.export(model, str(path), SIZE, 0.5, info=dict(INFO))
  return path


@pytest.fixture(scope='module')
def loaded(exported):
  return tf.saved_model.load(str(exported))


def _expected(model, raws):
  return np.array([
      float(model(preprocessing.preprocess_image(raw, SIZE)[None],
                  training=False)[0, 0]) for raw in raws], np.float32)


def _examples(raws):
  return tf.constant([
      tf.train.Example(features=tf.train.Features(feature={
          constants.IMAGE_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[raw])),
          constants.PATIENT_ID_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[b'person1'])),
      })).SerializeToString() for raw in raws])


def test_signature_names(loaded):
  assert set(loaded.signatures) == {constants.SERVING_SIGNATURE,
                                    constants.EXAMPLES_SIGNATURE,
                                    constants.EXPLAIN_SIGNATURE}
  assert constants.SERVING_SIGNATURE == 'serving_default'
  assert constants.EXAMPLES_SIGNATURE == 'serving_examples'
  assert constants.EXPLAIN_SIGNATURE == 'explain'


@pytest.mark.parametrize('signature, input_name', [
    (constants.SERVING_SIGNATURE, constants.SERVING_INPUT),
    (constants.EXAMPLES_SIGNATURE, constants.EXAMPLES_INPUT)])
def test_signature_inputs_and_outputs(loaded, signature, input_name):
  function = loaded.signatures[signature]
  _, inputs = function.structured_input_signature
  assert set(inputs) == {input_name}
  assert inputs[input_name].dtype == tf.string
  assert inputs[input_name].shape.as_list() == [None]
  outputs = function.structured_outputs
  assert set(outputs) == {constants.PROBABILITY_OUTPUT,
                          constants.LABEL_OUTPUT}
  assert outputs[constants.PROBABILITY_OUTPUT].dtype == tf.float32
  assert outputs[constants.PROBABILITY_OUTPUT].shape.as_list() == [None]
  assert outputs[constants.LABEL_OUTPUT].dtype == tf.string
  assert outputs[constants.LABEL_OUTPUT].shape.as_list() == [None]


def test_contract_names():
  assert (constants.SERVING_INPUT, constants.EXAMPLES_INPUT,
          constants.PROBABILITY_OUTPUT, constants.LABEL_OUTPUT) == (
              'image_bytes', 'examples', 'pneumonia_probability', 'label')


def test_serving_equals_the_keras_model_on_preprocess_image(model, loaded,
                                                            images):
  expected = _expected(model, images)
  # The input matters (the PNG holds the 3-channel original's pixels).
  assert len(set(expected[[0, 1, 3]].tolist())) == 3
  assert expected[2] == pytest.approx(expected[1], abs=1e-5)
  serve = loaded.signatures[constants.SERVING_SIGNATURE]
  got = serve(**{constants.SERVING_INPUT: tf.constant(images)})
  probability = got[constants.PROBABILITY_OUTPUT].numpy()
  assert probability.shape == (len(images),)
  np.testing.assert_allclose(probability, expected, atol=1e-5, rtol=0)
  # One at a time gives the same as in a batch.
  for raw, value in zip(images, expected):
    single = serve(**{constants.SERVING_INPUT: tf.constant([raw])})
    np.testing.assert_allclose(
        single[constants.PROBABILITY_OUTPUT].numpy(), [value], atol=1e-5,
        rtol=0)


def test_examples_signature_equals_the_keras_model(model, loaded, images):
  expected = _expected(model, images)
  got = loaded.signatures[constants.EXAMPLES_SIGNATURE](
      **{constants.EXAMPLES_INPUT: _examples(images)})
  np.testing.assert_allclose(got[constants.PROBABILITY_OUTPUT].numpy(),
                             expected, atol=1e-5, rtol=0)
  by_bytes = loaded.signatures[constants.SERVING_SIGNATURE](
      **{constants.SERVING_INPUT: tf.constant(images)})
  assert (got[constants.LABEL_OUTPUT].numpy().tolist() ==
          by_bytes[constants.LABEL_OUTPUT].numpy().tolist())


def test_undecodable_request_fails(loaded):
  with pytest.raises(tf.errors.InvalidArgumentError):
    loaded.signatures[constants.SERVING_SIGNATURE](
        **{constants.SERVING_INPUT: tf.constant([b'not an image'])})


@pytest.mark.parametrize('signature', [constants.SERVING_SIGNATURE,
                                       constants.EXAMPLES_SIGNATURE])
def test_a_decompression_bomb_is_refused_before_decoding(loaded, signature):
  # Headers declaring 529 and 64 Mpx, a few hundred bytes each: decoding
  # would allocate them all (TF Serving answers INVALID_ARGUMENT instead).
  good = hostile.jpeg(64, 64)
  function = loaded.signatures[signature]
  for bomb in (hostile.bomb_png(23000, 23000),
               hostile.with_jpeg_size(good, 8000, 8000)):
    raws = [good, bomb]
    inputs = ({constants.SERVING_INPUT: tf.constant(raws)}
              if signature == constants.SERVING_SIGNATURE
              else {constants.EXAMPLES_INPUT: _examples(raws)})
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=(constants.IMAGE_REFUSED +
                              ': its header declares more than')):
      function(**inputs)


def _serve(path, raws):
  result = tf.saved_model.load(str(path)).signatures[
      constants.SERVING_SIGNATURE](
          **{constants.SERVING_INPUT: tf.constant(raws)})
  return (result[constants.PROBABILITY_OUTPUT].numpy(),
          [s.decode() for s in result[constants.LABEL_OUTPUT].numpy()])


def test_label_is_pneumonia_exactly_at_or_above_the_threshold(
    model, images, tmp_path):
  raws = images[:2]
  low, high = sorted(_expected(model, raws).tolist())
  assert low < high
  names = constants.LABEL_NAMES
  cases = [(low / 2, {names[1]}),  # both above
           ((low + high) / 2, {names[0], names[1]}),  # one of each
           ((high + 1.0) / 2, {names[0]})]  # both below
  for i, (threshold, expected_labels) in enumerate(cases):
    path = tmp_path / f'm{i}'
    signatures.export(model, str(path), SIZE, threshold, info=dict(INFO))
    probability, labels = _serve(path, raws)
    assert set(labels) == expected_labels
    for p, label in zip(probability, labels):
      assert label == (names[constants.PNEUMONIA] if p >= threshold
                       else names[constants.NORMAL])
    with open(path / layout.MODEL_INFO_FILE) as f:
      assert json.load(f)['threshold'] == pytest.approx(threshold)


def test_a_probability_equal_to_the_threshold_is_pneumonia(model, images,
                                                           exported, tmp_path):
  probability, _ = _serve(exported, images[:2])
  # Exactly the float32 value the SavedModel computes.
  threshold = float(probability[0])
  path = tmp_path / 'at'
  signatures.export(model, str(path), SIZE, threshold, info=dict(INFO))
  again, labels = _serve(path, images[:2])
  assert again[0] == probability[0]
  assert labels[0] == constants.LABEL_NAMES[constants.PNEUMONIA]


def test_model_info(exported):
  with open(exported / 'assets.extra' / 'model_info.json') as f:
    info = json.load(f)
  assert info['architecture'] == 'improved_cnn'
  assert info['image_size'] == SIZE
  assert info['threshold'] == 0.5
  assert info['comparison'] == INFO['comparison']
  assert info['signatures'] == {
      constants.SERVING_SIGNATURE: constants.SERVING_INPUT,
      constants.EXAMPLES_SIGNATURE: constants.EXAMPLES_INPUT,
      constants.EXPLAIN_SIGNATURE: constants.EXPLAIN_INPUT}


_FRESH_PROCESS = r'''
import importlib.util, json, os, sys
repo = sys.argv[1]
# The venv's .pth file puts the repository on the path; take it off, and any
# other folder holding the project's packages (the venv's site-packages,
# which may live inside the repository, stay).
sys.path[:] = [p for p in sys.path if p not in ('', '.', repo, repo + '/')
               and not os.path.exists(os.path.join(p, 'trainer', 'run.py'))]
assert importlib.util.find_spec('trainer') is None, 'trainer importable'
assert importlib.util.find_spec('pipeline') is None, 'pipeline importable'
import tensorflow as tf
model = tf.saved_model.load(sys.argv[2])
images = [open(path, 'rb').read() for path in sys.argv[3:]]
out = model.signatures['serving_default'](image_bytes=tf.constant(images))
heat = model.signatures['explain'](image_bytes=tf.constant(images))
print(json.dumps({
    'heat_map': heat['heat_map'].numpy().tolist(),
    'probability': out['pneumonia_probability'].numpy().tolist(),
    'label': [s.decode() for s in out['label'].numpy()],
    'modules': sorted(m for m in sys.modules
                      if m.split('.')[0] in ('trainer', 'pipeline'))}))
'''


def test_loads_and_serves_without_project_code(model, exported, images,
                                               tmp_path):
  paths = []
  for i, raw in enumerate(images):
    paths.append(tmp_path / f'image{i}')
    paths[-1].write_bytes(raw)
  script = tmp_path / 'serve.py'
  script.write_text(_FRESH_PROCESS)
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run(
      [sys.executable, str(script), repo, str(exported), *map(str, paths)],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  served = json.loads(result.stdout.strip().splitlines()[-1])
  assert served['modules'] == []
  np.testing.assert_allclose(served['probability'], _expected(model, images),
                             atol=1e-5, rtol=0)
  assert served['label'] == [
      constants.LABEL_NAMES[int(p >= 0.5)] for p in served['probability']]
  batch = tf.stack([preprocessing.preprocess_image(raw, SIZE)
                    for raw in images])
  np.testing.assert_allclose(served['heat_map'],
                             gradcam.heat_maps(model, batch), atol=1e-4)


def test_the_input_stage_is_exported_with_the_model(images, tmp_path):
  """border_crop and clahe are layers of the model, so the SavedModel's
  serving graph applies them as the Keras model does (training and serving
  cannot differ)."""
  keras.utils.set_random_seed(4)
  staged = models.build_model('baseline_cnn', SIZE, 10,
                              intensity_normalisation='clahe',
                              border_crop=0.1)
  path = tmp_path / 'staged'
  signatures.export(staged, str(path), SIZE, 0.5, info=dict(INFO))
  serve = tf.saved_model.load(str(path)).signatures[
      constants.SERVING_SIGNATURE]
  out = serve(**{constants.SERVING_INPUT: tf.constant(images)})
  np.testing.assert_allclose(out[constants.PROBABILITY_OUTPUT].numpy(),
                             _expected(staged, images), atol=1e-5)
  plain = models.build_model('baseline_cnn', SIZE, 10)
  plain.set_weights(staged.get_weights())
  assert not np.allclose(_expected(plain, images), _expected(staged, images),
                         atol=1e-3)
