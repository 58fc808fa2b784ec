"""Tests of the external cohort's two halves (`threshold_from` 'external').

The cohort is split by a hash of patient_id into CALIBRATION_SPLIT (the
threshold is chosen there) and EXTERNAL_SPLIT (evaluated): whole patients
per half, the same halves every run, counts per half in the report; with
fewer than MIN_THRESHOLD_POSITIVES PNEUMONIA images in the calibration half
ingestion fails with a message saying what to do. Real images of
../shared/data (kermany-224 for the main data, kermany-224-external for the
cohort) are copied into tmp_path.
"""
import collections
import hashlib
import json
import pathlib
import shutil

import pytest
import tensorflow as tf
from tfx.orchestration import data_types
from tfx.types import artifact_utils

from components.image_example_gen import component
from components.image_example_gen import ingestion_report
from contract import layout
from contract import names as constants
from contract import operating_point
from contract import settings as config
from testing import support

BEAM = config.direct_runner_args(1)


def _plant(root: pathlib.Path, folder: str, split: str,
           counts: dict) -> pathlib.Path:
  source = support.require_shared_data(folder, 'chest_xray') / split
  for label, count in counts.items():
    for path in sorted((source / label).glob('*.jpeg'))[:count]:
      target = root / label / path.name
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(path, target)
  return root


@pytest.fixture(scope='module')
def main_examples(tmp_path_factory):
  root = tmp_path_factory.mktemp('main')
  data = _plant(root / 'data', 'kermany-224', 'train',
                {'NORMAL': 3, 'PNEUMONIA': 3})
  return component.ingest_outside_pipeline(str(data), str(root / 'out'),
                                           BEAM)


def _rows(uri: str, split: str):
  """(patient_id, label name, source_path) of every example of a split."""
  files = tf.io.gfile.glob(f'{uri}/Split-{split}/*')
  rows = []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    feature = tf.train.Example.FromString(record.numpy()).features.feature
    rows.append((
        feature[constants.PATIENT_ID_KEY].bytes_list.value[0].decode(),
        constants.LABEL_NAMES[feature[constants.LABEL_KEY].int64_list.value[0]],
        feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode()))
  return sorted(rows)


def _expected_half(patient_id: str) -> str:
  """TFX's partitioning of two one-bucket splits: sha256 of the serialized
  patient_id feature, mod 2; bucket 0 is the first split."""
  feature = tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[patient_id.encode()]))
  key = feature.SerializeToString(deterministic=True)
  bucket = int(hashlib.sha256(key).hexdigest(), 16) % 2
  return (constants.CALIBRATION_SPLIT, constants.EXTERNAL_SPLIT)[bucket]


def test_halves_hold_whole_patients_deterministically(tmp_path,
                                                      main_examples):
  cohort = _plant(tmp_path / 'cohort', 'kermany-224-external', 'test',
                  {'NORMAL': 20, 'PNEUMONIA': 90})
  runs = [component.ingest_external_outside_pipeline(
      str(cohort), str(tmp_path / f'out{i}'), main_examples, BEAM,
      threshold_from=constants.THRESHOLD_FROM_EXTERNAL) for i in range(2)]
  examples = runs[0]
  halves = (constants.CALIBRATION_SPLIT, constants.EXTERNAL_SPLIT)
  assert artifact_utils.decode_split_names(examples.split_names) == list(
      halves)
  rows = {split: _rows(examples.uri, split) for split in halves}
  # The same halves on a second run.
  assert rows == {split: _rows(runs[1].uri, split) for split in halves}
  # Every image once; whole patients per half, by the hash of patient_id.
  report = ingestion_report.read_report(
      ingestion_report.report_path(examples.uri))
  paths = [r[2] for split in halves for r in rows[split]]
  kept = 110 - len(report['duplicates'])  # the real images hold copies
  assert len(paths) == len(set(paths)) == kept
  patients = {split: {r[0] for r in rows[split]} for split in halves}
  assert not patients[halves[0]] & patients[halves[1]]
  for split in halves:
    assert {_expected_half(p) for p in patients[split]} == {split}
    assert rows[split], split  # both halves hold images
  # The report counts each half and both together.
  assert report[layout.THRESHOLD_FROM] == constants.THRESHOLD_FROM_EXTERNAL
  for split in halves:
    counted = collections.Counter(r[1] for r in rows[split])
    assert report['counts'][split] == {
        'NORMAL': counted['NORMAL'], 'PNEUMONIA': counted['PNEUMONIA'],
        'total': len(rows[split])}
    assert report['patients'][split] == len(patients[split])
  assert report['counts']['all']['total'] == kept
  assert (report['counts'][constants.CALIBRATION_SPLIT]['PNEUMONIA']
          >= operating_point.MIN_THRESHOLD_POSITIVES)
  assert ingestion_report.calibration_shortfall(report) is None
  summary = examples.get_string_custom_property('ingestion_summary')
  assert 'calibration ' in summary and 'external ' in summary
  assert examples.get_string_custom_property(
      layout.THRESHOLD_FROM) == constants.THRESHOLD_FROM_EXTERNAL


def test_too_few_calibration_positives_stop_ingestion(tmp_path,
                                                      main_examples):
  cohort = _plant(tmp_path / 'cohort', 'kermany-224-external', 'test',
                  {'NORMAL': 4, 'PNEUMONIA': 12})
  out = tmp_path / 'out'
  with pytest.raises(ValueError) as raised:
    component.ingest_external_outside_pipeline(
        str(cohort), str(out), main_examples, BEAM,
        threshold_from=constants.THRESHOLD_FROM_EXTERNAL)
  message = str(raised.value)
  report = json.loads((out / layout.INGESTION_REPORT_FILE).read_text())
  positives = report['counts'][constants.CALIBRATION_SPLIT]['PNEUMONIA']
  assert positives < operating_point.MIN_THRESHOLD_POSITIVES
  assert f'holds {positives} PNEUMONIA images' in message
  assert f'at least {operating_point.MIN_THRESHOLD_POSITIVES}' in message
  assert '--threshold-from eval' in message
  assert 'larger external cohort' in message


def test_eval_keeps_one_split_and_an_absent_cohort_is_not_split(
    tmp_path, main_examples):
  cohort = _plant(tmp_path / 'cohort', 'kermany-224-external', 'test',
                  {'NORMAL': 2, 'PNEUMONIA': 2})
  examples = component.ingest_external_outside_pipeline(
      str(cohort), str(tmp_path / 'eval'), main_examples, BEAM,
      threshold_from=constants.THRESHOLD_FROM_EVAL)
  assert artifact_utils.decode_split_names(examples.split_names) == [
      constants.EXTERNAL_SPLIT]
  assert len(_rows(examples.uri, constants.EXTERNAL_SPLIT)) == 4
  # No cohort: nothing to split or check, whatever threshold_from says.
  absent = component.ingest_external_outside_pipeline(
      component.NO_COHORT, str(tmp_path / 'absent'), main_examples, BEAM,
      threshold_from=constants.THRESHOLD_FROM_EXTERNAL)
  assert artifact_utils.decode_split_names(absent.split_names) == [
      constants.EXTERNAL_SPLIT]
  assert absent.get_int_custom_property(layout.COHORT_PRESENT) == 0


def test_shortfall_message_without_a_calibration_split():
  report = {'counts': {constants.EXTERNAL_SPLIT: {'total': 3}}}
  assert 'holds 0 PNEUMONIA' in ingestion_report.calibration_shortfall(report)


def test_component_takes_threshold_from_as_a_parameter():
  main = component.ImageExampleGen(input_base='/data')
  parameter = data_types.RuntimeParameter(name='threshold_from', ptype=str,
                                          default='eval')
  external = component.ExternalImageExampleGen(
      input_base='/site2', reference_examples=main.outputs['examples'],
      threshold_from=parameter)
  assert external.exec_properties[component.THRESHOLD_FROM_KEY] is parameter
  plain = component.ExternalImageExampleGen(
      input_base='/site2', reference_examples=main.outputs['examples'])
  assert plain.exec_properties.get(component.THRESHOLD_FROM_KEY) is None
