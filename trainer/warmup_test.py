"""Tests of trainer.warmup: the exported SavedModel carries TF Serving's
warm-up requests, in the format TF Serving reads, and each replays through
serving_default to a probability and a label.

The file is parsed with tensorflow_serving's protos only (not with
trainer.warmup), the model loaded with plain tf.saved_model.load. The REST
body the README documents is decoded as TF Serving's JSON layer decodes it
(a {"b64": ...} object is base64 bytes for a DT_STRING input) and served the
same way: no Docker engine here, so this is as near to TF Serving as we get.
"""
import base64
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from components.site_calibration import executor as site_calibration
from contract import layout
from contract import names as constants
from testing import images as shared_images
from trainer import models
from trainer import signatures
from trainer import warmup

SIZE = 32
THRESHOLD = 0.5


@pytest.fixture(scope='module')
def eval_split(tmp_path_factory):
  """Six real images in two gzip shards, round-robin (as ingestion shards)."""
  images = shared_images.real_images(3, 3)
  files = shared_images.write_split(tmp_path_factory.mktemp('eval'), 'eval',
                                    images, shards=2)
  return files, [raw for raw, _ in images]


@pytest.fixture(scope='module')
def exported(eval_split, tmp_path_factory):
  files, _ = eval_split
  keras.utils.set_random_seed(5)
  model = models.build_model('baseline_cnn', SIZE, 10)
  path = tmp_path_factory.mktemp('export') / 'm'
  signatures.export(model, str(path), SIZE, THRESHOLD,
                    info={'architecture': 'baseline_cnn'},
                    warmup_images=warmup.first_images(files))
  return str(path)


@pytest.fixture(scope='module')
def loaded(exported):
  return tf.saved_model.load(exported)


def _warmup_logs(export_dir):
  path = os.path.join(export_dir, 'assets.extra', 'tf_serving_warmup_requests')
  return [prediction_log_pb2.PredictionLog.FromString(record) for record in
          tf.data.TFRecordDataset(path).as_numpy_iterator()]


def _serve(loaded, image_bytes):
  serve = loaded.signatures[constants.SERVING_SIGNATURE]
  out = serve(**{constants.SERVING_INPUT: tf.constant(image_bytes)})
  return (out[constants.PROBABILITY_OUTPUT].numpy(),
          [label.decode() for label in out[constants.LABEL_OUTPUT].numpy()])


def test_first_images_are_the_first_records_in_file_order(eval_split):
  files, raws = eval_split
  # Shard 0 holds images 0, 2, 4; shard 1 holds 1, 3, 5.
  assert warmup.first_images(files) == [raws[0], raws[2], raws[4], raws[1]]
  assert warmup.first_images(files, 2) == [raws[0], raws[2]]


def test_warmup_file_follows_tf_servings_rules(exported, eval_split):
  _, raws = eval_split
  assert layout.WARMUP_REQUESTS_FILE == (
      'assets.extra/tf_serving_warmup_requests')
  logs = _warmup_logs(exported)
  assert 0 < len(logs) <= 1000
  sent = []
  for log in logs:
    assert log.WhichOneof('log_type') == 'predict_log'
    request = log.predict_log.request
    assert request.model_spec.signature_name == 'serving_default'
    assert set(request.inputs) == {'image_bytes'}
    tensor = request.inputs['image_bytes']
    assert tensor.dtype == tf.string.as_datatype_enum
    assert [d.size for d in tensor.tensor_shape.dim] == [1]
    sent += list(tensor.string_val)
  assert sent == [raws[0], raws[2], raws[4], raws[1]]  # real, whole images


def test_each_warmup_request_replays_to_a_probability_and_a_label(exported,
                                                                  loaded):
  logs = _warmup_logs(exported)
  for log in logs:
    request = log.predict_log.request
    serve = loaded.signatures[request.model_spec.signature_name]
    out = serve(**{name: tf.constant(tf.make_ndarray(tensor))
                   for name, tensor in request.inputs.items()})
    (probability,) = out[constants.PROBABILITY_OUTPUT].numpy()
    (label,) = out[constants.LABEL_OUTPUT].numpy()
    assert 0.0 <= probability <= 1.0
    assert label.decode() == ('PNEUMONIA' if probability >= THRESHOLD
                              else 'NORMAL')


def _decode_rest_body(body: str, input_name: str):
  """The DT_STRING input TF Serving's JSON layer makes of a :predict body
  (tensorflow_serving/util/json_tensor.cc): row format ("instances") or
  columnar ("inputs"); a value {"b64": s}, that key alone, is base64 bytes."""
  doc = json.loads(body)

  def value(v):
    if isinstance(v, dict):
      assert list(v) == ['b64'], v
      return base64.b64decode(v['b64'], validate=True)
    return v.encode()

  if 'instances' in doc:
    return [value(v[input_name] if isinstance(v, dict) and 'b64' not in v
                  else v) for v in doc['instances']]
  inputs = doc['inputs']
  if isinstance(inputs, dict) and 'b64' not in inputs:
    inputs = inputs[input_name]
  return [value(v) for v in inputs]


def test_the_readmes_rest_bodies_serve_the_same_answers(loaded, eval_split):
  _, raws = eval_split
  images = raws[:2]
  b64 = [base64.b64encode(raw).decode('ascii') for raw in images]
  # As the README builds them.
  bodies = [
      json.dumps({'instances': [{'b64': s} for s in b64]}),
      json.dumps({'signature_name': 'serving_default',
                  'instances': [{'image_bytes': {'b64': s}} for s in b64]}),
      json.dumps({'inputs': {'image_bytes': [{'b64': s} for s in b64]}}),
  ]
  expected = _serve(loaded, images)
  for body in bodies:
    decoded = _decode_rest_body(body, constants.SERVING_INPUT)
    assert decoded == images
    probability, labels = _serve(loaded, decoded)
    np.testing.assert_array_equal(probability, expected[0])
    assert labels == expected[1]


def test_resaving_with_a_threshold_keeps_the_warmup_file(exported, tmp_path):
  site_calibration.resave_with_threshold(exported, str(tmp_path / 'moved'),
                                         0.25)
  moved = tmp_path / 'moved' / layout.WARMUP_REQUESTS_FILE
  assert moved.read_bytes() == open(
      os.path.join(exported, layout.WARMUP_REQUESTS_FILE), 'rb').read()


@pytest.mark.parametrize('count', [0, warmup.MAX_RECORDS + 1])
def test_the_writer_refuses_what_tf_serving_refuses(tmp_path, count):
  with pytest.raises(ValueError, match='warm-up images'):
    warmup.write(str(tmp_path), [b'x'] * count)
  assert not (tmp_path / layout.WARMUP_REQUESTS_FILE).exists()

