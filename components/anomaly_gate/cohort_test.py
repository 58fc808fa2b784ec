"""Tests of AnomalyGate guarding an external cohort: an absent cohort passes,
a present one's anomalies (or an empty split) stop the run."""
import pathlib
from typing import Dict, Optional

from absl import logging
import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.anomaly_gate import component
from components import cohort
from components.anomaly_gate import executor
from contract import layout
from contract import names as constants


def _anomalies(root: pathlib.Path, per_split: Dict[str, anomalies_pb2.Anomalies]
               ) -> standard_artifacts.ExampleAnomalies:
  """An ExampleAnomalies artifact laid out as ExampleValidator writes it."""
  artifact = standard_artifacts.ExampleAnomalies()
  artifact.uri = str(root / 'ExampleAnomalies')
  artifact.split_names = artifact_utils.encode_split_names(list(per_split))
  for split, anomalies in per_split.items():
    folder = root / 'ExampleAnomalies' / f'Split-{split}'
    folder.mkdir(parents=True)
    (folder / 'SchemaDiff.pb').write_bytes(anomalies.SerializeToString())
  return artifact


def _cohort(present: Optional[int]) -> standard_artifacts.Examples:
  examples = standard_artifacts.Examples()
  examples.uri = '/pipeline/ExternalImageExampleGen/examples/7'
  if present is not None:
    examples.set_int_custom_property(layout.COHORT_PRESENT, present)
  return examples


def _empty() -> anomalies_pb2.Anomalies:
  """What ExampleValidator writes for a split without examples."""
  return anomalies_pb2.Anomalies(data_missing=True)


def _subtype_anomaly() -> anomalies_pb2.Anomalies:
  anomalies = anomalies_pb2.Anomalies()
  info = anomalies.anomaly_info[constants.SUBTYPE_KEY]
  info.short_description = 'Unexpected string values'
  info.description = 'Examples contain values missing from the schema: fungal.'
  info.severity = anomalies_pb2.AnomalyInfo.ERROR
  return anomalies


def _gate(anomalies, examples=None):
  inputs = {'anomalies': [anomalies]}
  if examples is not None:
    inputs['examples'] = [examples]
  return executor.Executor().Do(inputs, {}, {})


def test_absent_cohort_passes_and_says_so(tmp_path, monkeypatch):
  logged = []
  monkeypatch.setattr(logging, 'info',
                      lambda message, *args: logged.append(message % args))
  anomalies = _anomalies(tmp_path, {constants.EXTERNAL_SPLIT: _empty()})
  assert _gate(anomalies, _cohort(0)) is None
  assert any('external cohort is absent' in line for line in logged), logged


def test_absent_cohort_is_not_validated_at_all(tmp_path):
  # Whatever the anomalies say (even none written), nothing is there.
  anomalies = _anomalies(tmp_path, {})
  anomalies.split_names = artifact_utils.encode_split_names(
      [constants.EXTERNAL_SPLIT])
  assert _gate(anomalies, _cohort(0)) is None


def test_present_cohort_with_an_anomaly_stops_the_run(tmp_path):
  anomalies = _anomalies(tmp_path,
                         {constants.EXTERNAL_SPLIT: _subtype_anomaly()})
  with pytest.raises(executor.DataValidationError) as raised:
    _gate(anomalies, _cohort(1))
  assert "[external] feature 'subtype': Unexpected string values" in str(
      raised.value)
  assert 'fungal' in str(raised.value)


def test_present_cohort_without_anomalies_passes(tmp_path):
  anomalies = _anomalies(tmp_path,
                         {constants.EXTERNAL_SPLIT: anomalies_pb2.Anomalies()})
  assert _gate(anomalies, _cohort(1)) is None


def test_present_cohort_with_no_usable_image_stops_the_run(tmp_path):
  # TFDV validates nothing in an empty split; given a cohort, that is wrong.
  anomalies = _anomalies(tmp_path, {constants.EXTERNAL_SPLIT: _empty()})
  with pytest.raises(executor.DataValidationError,
                     match=r'\[external\] dataset: no examples'):
    _gate(anomalies, _cohort(1))


def test_main_data_is_gated_as_before(tmp_path):
  # No COHORT_PRESENT (the main data) or no examples: anomalies only, and an
  # empty split (tiny data sets can leave `test` empty) is not a problem.
  anomalies = _anomalies(tmp_path, {'train': anomalies_pb2.Anomalies(),
                                    'test': _empty()})
  assert _gate(anomalies, _cohort(None)) is None
  assert _gate(anomalies) is None
  bad = _anomalies(tmp_path / 'bad', {'train': _subtype_anomaly()})
  for examples in (None, _cohort(None)):
    with pytest.raises(executor.DataValidationError, match='fungal'):
      _gate(bad, examples)


def test_cohort_present_reads_every_number_type():
  assert cohort.cohort_present(_cohort(None)) is None
  assert cohort.cohort_present(_cohort(0)) is False
  assert cohort.cohort_present(_cohort(1)) is True
  examples = _cohort(None)
  examples.set_float_custom_property(layout.COHORT_PRESENT, 1.0)
  assert cohort.cohort_present(examples) is True
  examples.set_json_value_custom_property(layout.COHORT_PRESENT, 0.0)
  assert cohort.cohort_present(examples) is False


def test_component_takes_the_examples_optionally():
  anomalies = types.Channel(type=standard_artifacts.ExampleAnomalies)
  examples = types.Channel(type=standard_artifacts.Examples)
  assert set(component.AnomalyGate(anomalies=anomalies).inputs) == {
      'anomalies'}
  gate = component.AnomalyGate(anomalies=anomalies, examples=examples)
  assert set(gate.inputs) == {'anomalies', 'examples'}
