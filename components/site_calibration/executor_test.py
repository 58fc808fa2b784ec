"""Tests of SiteCalibration on a tiny real SavedModel with constructed scores.

The model (exported with trainer.signatures.export, as the Trainer does)
outputs the mean gray level of its input, so an image of uniform gray g
scores g / 255 exactly: the calibration half and the evaluation half are
built so that each would choose a different threshold, and the chosen one
must be the calibration half's.
"""
import hashlib
import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
from tfx import types
from tfx.orchestration import data_types
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.site_calibration import component
from components.site_calibration import executor
from contract import layout
from contract import names as constants
from contract import operating_point
from trainer import signatures

SIZE = 32
EVAL_THRESHOLD = 0.3  # what the "Trainer" chose on its eval split
TARGET = 0.95
# Gray levels: the calibration half's PNEUMONIA at 100..124 (target 0.95 of
# 25 -> the 24th highest, 101), the evaluation half's at 200..229.
CALIBRATION = {constants.PNEUMONIA: range(100, 125),
               constants.NORMAL: range(20, 40)}
EVALUATION = {constants.PNEUMONIA: range(200, 230),
              constants.NORMAL: range(40, 60)}


def _png(gray: int) -> bytes:
  return tf.io.encode_png(
      tf.fill([SIZE, SIZE, 1], tf.constant(gray, tf.uint8))).numpy()


def _example(gray: int, label: int, patient: str) -> bytes:
  feature = {
      constants.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[_png(gray)])),
      constants.LABEL_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[label])),
      constants.PATIENT_ID_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[patient.encode()])),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def _scores(half) -> tuple:
  grays = [(g, label) for label, values in half.items() for g in values]
  return (np.array([np.float32(g / 255.0) for g, _ in grays]),
          np.array([label for _, label in grays]))


def _write_split(uri: pathlib.Path, split: str, half) -> None:
  folder = uri / f'Split-{split}'
  folder.mkdir(parents=True)
  options = tf.io.TFRecordOptions(compression_type='GZIP')
  with tf.io.TFRecordWriter(str(folder / 'data_tfrecord-00000-of-00001.gz'),
                            options) as writer:
    for label, values in half.items():
      for i, gray in enumerate(values):
        writer.write(_example(gray, label, f'{split}-{label}-{i}'))


def _cohort(root: pathlib.Path, splits, present: int = 1):
  examples = standard_artifacts.Examples()
  examples.uri = str(root)
  for split, half in splits.items():
    _write_split(root, split, half)
  examples.split_names = artifact_utils.encode_split_names(list(splits))
  examples.set_int_custom_property(layout.COHORT_PRESENT, present)
  return examples


@pytest.fixture(scope='module')
def candidate(tmp_path_factory):
  """The Trainer's Model artifact: a mean-gray-level model, threshold 0.3,
  with the comparison beside Format-Serving as the Trainer writes it."""
  keras.utils.set_random_seed(0)
  inputs = keras.Input((SIZE, SIZE, 1))
  pooled = keras.layers.GlobalAveragePooling2D()(inputs)
  outputs = keras.layers.Dense(1, kernel_initializer='ones',
                               bias_initializer='zeros')(pooled)
  model = keras.Model(inputs, outputs)
  uri = tmp_path_factory.mktemp('Trainer') / 'model' / '3'
  point = operating_point.OperatingPoint(EVAL_THRESHOLD, TARGET, 0.96, 0.8,
                                         50, 30)
  signatures.export(model, str(uri / 'Format-Serving'), SIZE, EVAL_THRESHOLD,
                    info={'architecture': 'mean_gray',
                          'operating_point': point._asdict()})
  (uri / 'comparison.json').write_text('[]')
  artifact = standard_artifacts.Model()
  artifact.uri = str(uri)
  return artifact


def _run(candidate, tmp_path, threshold_from, cohort=None, target=TARGET):
  output = standard_artifacts.Model()
  output.uri = str(tmp_path / 'SiteCalibration' / 'calibrated_model' / '7')
  inputs = {executor.MODEL_KEY: [candidate]}
  if cohort is not None:
    inputs[executor.EXTERNAL_EXAMPLES_KEY] = [cohort]
  executor.Executor().Do(inputs, {executor.CALIBRATED_MODEL_KEY: [output]}, {
      executor.THRESHOLD_FROM_KEY: threshold_from,
      executor.TARGET_SENSITIVITY_KEY: target})
  return output


def _serving(output) -> pathlib.Path:
  return pathlib.Path(output.uri) / 'Format-Serving'


def _info(folder: pathlib.Path) -> dict:
  return json.loads((folder / layout.MODEL_INFO_FILE).read_text())


def _digests(folder: pathlib.Path) -> dict:
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob('*')) if p.is_file()}


def _serve_both(folder: pathlib.Path, grays):
  """Labels and probabilities from both signatures of a SavedModel."""
  loaded = tf.saved_model.load(str(folder))
  images = tf.constant([_png(g) for g in grays])
  by_bytes = loaded.signatures[constants.SERVING_SIGNATURE](
      **{constants.SERVING_INPUT: images})
  by_examples = loaded.signatures[constants.EXAMPLES_SIGNATURE](
      **{constants.EXAMPLES_INPUT: tf.constant(
          [_example(g, 0, 'p') for g in grays])})
  results = []
  for out in (by_bytes, by_examples):
    results.append((
        [v.decode() for v in out[constants.LABEL_OUTPUT].numpy()],
        out[constants.PROBABILITY_OUTPUT].numpy()))
  return results


def test_threshold_is_chosen_on_the_calibration_half_only(candidate,
                                                          tmp_path):
  cohort = _cohort(tmp_path / 'External' / 'examples' / '2', {
      constants.CALIBRATION_SPLIT: CALIBRATION,
      constants.EXTERNAL_SPLIT: EVALUATION})
  output = _run(candidate, tmp_path, constants.THRESHOLD_FROM_EXTERNAL,
                cohort)

  expected = operating_point.choose_threshold(
      *_scores(CALIBRATION), TARGET,
      margin=operating_point.SERVING_TOLERANCE)
  other_half = operating_point.choose_threshold(
      *_scores(EVALUATION), TARGET, margin=operating_point.SERVING_TOLERANCE)
  assert expected.threshold == pytest.approx(101 / 255 - 1e-5, abs=1e-6)
  assert other_half.threshold > 0.7  # by construction, far from it
  both = operating_point.choose_threshold(
      *map(np.concatenate, zip(_scores(CALIBRATION), _scores(EVALUATION))),
      TARGET, margin=operating_point.SERVING_TOLERANCE)
  assert both.threshold != pytest.approx(expected.threshold)

  info = _info(_serving(output))
  assert info['threshold'] == pytest.approx(expected.threshold, abs=1e-7)
  assert info[layout.MODEL_INFO_THRESHOLD_SOURCE] == {
      layout.THRESHOLD_CHOSEN_ON: 'external calibration half',
      'images': 45, 'positives': 25, 'negatives': 20,
      'sensitivity': pytest.approx(expected.sensitivity),
      'specificity': pytest.approx(expected.specificity),
      'target_sensitivity': TARGET,
      'threshold': pytest.approx(expected.threshold, abs=1e-7)}
  assert info['operating_point']['threshold'] == pytest.approx(
      expected.threshold, abs=1e-7)
  assert info[executor.EVAL_OPERATING_POINT]['threshold'] == EVAL_THRESHOLD
  assert info['architecture'] == 'mean_gray'  # the rest is kept
  assert output.get_string_custom_property(
      executor.THRESHOLD_FROM_KEY) == constants.THRESHOLD_FROM_EXTERNAL
  assert output.get_float_custom_property('threshold') == pytest.approx(
      expected.threshold, abs=1e-7)
  # What lay beside the SavedModel came along; the candidate is untouched.
  assert (pathlib.Path(output.uri) / 'comparison.json').read_text() == '[]'
  assert _info(_serving(candidate))['threshold'] == EVAL_THRESHOLD

  # Both signatures serve at the new threshold: 101 is PNEUMONIA, 100 and
  # 90 are not (the candidate, at 0.3, called all three PNEUMONIA).
  grays = [101, 100, 90, 230]
  for labels, probability in _serve_both(_serving(output), grays):
    assert labels == ['PNEUMONIA', 'NORMAL', 'NORMAL', 'PNEUMONIA']
    np.testing.assert_allclose(probability, np.array(grays) / 255, atol=1e-5)
  for labels, _ in _serve_both(_serving(candidate), grays):
    assert labels == ['PNEUMONIA'] * 4
  loaded = tf.saved_model.load(str(_serving(output)))
  assert float(loaded.threshold.numpy()) == pytest.approx(
      expected.threshold, abs=1e-7)
  # Every signature survives the re-save, the Grad-CAM one included
  # (trainer/signatures.py), and it too labels at the new threshold.
  assert set(loaded.signatures) == set(
      tf.saved_model.load(str(_serving(candidate))).signatures)
  assert constants.EXPLAIN_SIGNATURE in loaded.signatures
  explained = loaded.signatures[constants.EXPLAIN_SIGNATURE](
      **{constants.EXPLAIN_INPUT: tf.constant([_png(g) for g in grays])})
  assert [v.decode() for v in explained[constants.LABEL_OUTPUT].numpy()] == [
      'PNEUMONIA', 'NORMAL', 'NORMAL', 'PNEUMONIA']
  assert explained[constants.HEAT_MAP_OUTPUT].shape == (4, SIZE, SIZE)


def test_eval_passes_the_candidate_on(candidate, tmp_path):
  cohort = _cohort(tmp_path / 'External', {
      constants.CALIBRATION_SPLIT: CALIBRATION,
      constants.EXTERNAL_SPLIT: EVALUATION})
  output = _run(candidate, tmp_path, constants.THRESHOLD_FROM_EVAL, cohort)
  source, target = _digests(_serving(candidate)), _digests(_serving(output))
  info_name = layout.MODEL_INFO_FILE
  assert {k: v for k, v in target.items() if k != info_name} == {
      k: v for k, v in source.items() if k != info_name}
  info = _info(_serving(output))
  assert info['threshold'] == EVAL_THRESHOLD
  assert info[layout.MODEL_INFO_THRESHOLD_SOURCE] == {
      layout.THRESHOLD_CHOSEN_ON: 'eval split', 'images': 80,
      'positives': 50, 'negatives': 30, 'sensitivity': 0.96,
      'specificity': 0.8, 'target_sensitivity': TARGET,
      'threshold': EVAL_THRESHOLD}
  assert (pathlib.Path(output.uri) / 'comparison.json').exists()
  for labels, _ in _serve_both(_serving(output), [90, 60]):
    assert labels == ['PNEUMONIA', 'NORMAL']  # 0.353, 0.235 against 0.3
  assert output.get_string_custom_property(
      executor.THRESHOLD_FROM_KEY) == constants.THRESHOLD_FROM_EVAL


@pytest.mark.parametrize('wired', [True, False])
def test_external_without_a_cohort_passes_the_candidate_on(
    candidate, tmp_path, wired):
  cohort = (_cohort(tmp_path / 'External',
                    {constants.EXTERNAL_SPLIT: {}}, present=0)
            if wired else None)
  output = _run(candidate, tmp_path, constants.THRESHOLD_FROM_EXTERNAL,
                cohort)
  info = _info(_serving(output))
  assert info['threshold'] == EVAL_THRESHOLD
  assert info[layout.MODEL_INFO_THRESHOLD_SOURCE][
      layout.THRESHOLD_CHOSEN_ON] == 'eval split'


def test_external_needs_the_calibration_half(candidate, tmp_path):
  cohort = _cohort(tmp_path / 'External',
                   {constants.EXTERNAL_SPLIT: EVALUATION})
  with pytest.raises(ValueError, match='same threshold_from'):
    _run(candidate, tmp_path, constants.THRESHOLD_FROM_EXTERNAL, cohort)


def test_too_few_calibration_positives_is_an_error(candidate, tmp_path):
  few = {constants.PNEUMONIA: range(100, 110), constants.NORMAL: range(20, 30)}
  cohort = _cohort(tmp_path / 'External', {
      constants.CALIBRATION_SPLIT: few, constants.EXTERNAL_SPLIT: EVALUATION})
  with pytest.raises(ValueError, match='holds 10 PNEUMONIA'):
    _run(candidate, tmp_path, constants.THRESHOLD_FROM_EXTERNAL, cohort)


def test_unknown_threshold_from_is_an_error(candidate, tmp_path):
  with pytest.raises(ValueError, match='unknown threshold_from'):
    _run(candidate, tmp_path, 'test')


def test_component_parameters_and_channels():
  model = types.Channel(type=standard_artifacts.Model)
  examples = types.Channel(type=standard_artifacts.Examples)
  parameter = data_types.RuntimeParameter(name='threshold_from', ptype=str,
                                          default='eval')
  node = component.SiteCalibration(model=model, external_examples=examples,
                                   threshold_from=parameter,
                                   target_sensitivity=0.9)
  assert node.exec_properties[executor.THRESHOLD_FROM_KEY] is parameter
  assert node.exec_properties[executor.TARGET_SENSITIVITY_KEY] == 0.9
  assert set(node.inputs) == {component.MODEL_KEY,
                              component.EXTERNAL_EXAMPLES_KEY}
  assert set(node.outputs) == {component.CALIBRATED_MODEL_KEY}
  plain = component.SiteCalibration(model=model)
  assert plain.exec_properties == {executor.THRESHOLD_FROM_KEY: 'eval',
                                   executor.TARGET_SENSITIVITY_KEY: 0.95}
