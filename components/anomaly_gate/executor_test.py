"""Tests of AnomalyGate: it passes clean data and stops on any anomaly."""
import csv
import os
import pathlib
from typing import Dict, List

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.anomaly_gate import executor
from components.image_example_gen import executor as ingest_executor
from contract import names as constants
from testing import images

SCHEMA_PATH = str(pathlib.Path(__file__).resolve().parents[2] / 'schemas' /
                  'schema.pbtxt')


def _anomalies_artifact(
    root: pathlib.Path,
    per_split: Dict[str, anomalies_pb2.Anomalies]
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


def _subtype_anomaly() -> anomalies_pb2.Anomalies:
  anomalies = anomalies_pb2.Anomalies()
  info = anomalies.anomaly_info['subtype']
  info.short_description = 'Unexpected string values'
  info.description = ('Examples contain values missing from the schema: '
                      'virus2 (~3%).')
  info.severity = anomalies_pb2.AnomalyInfo.ERROR
  return anomalies


def _run_gate(artifact):
  return executor.Executor().Do({'anomalies': [artifact]}, {}, {})


# --- the gate on hand-made anomalies ------------------------------------------

def test_read_anomalies_returns_each_split(tmp_path):
  artifact = _anomalies_artifact(
      tmp_path,
      {'train': anomalies_pb2.Anomalies(), 'eval': _subtype_anomaly()})
  per_split = executor.read_anomalies(artifact)
  assert set(per_split) == {'train', 'eval'}
  assert per_split['eval'] == _subtype_anomaly()
  assert not per_split['train'].anomaly_info


def test_gate_passes_without_anomalies(tmp_path):
  artifact = _anomalies_artifact(
      tmp_path, {'train': anomalies_pb2.Anomalies(),
                 'eval': anomalies_pb2.Anomalies()})
  assert executor.describe(executor.read_anomalies(artifact)) == []
  assert _run_gate(artifact) is None


def test_gate_stops_on_an_anomaly_and_names_it(tmp_path):
  artifact = _anomalies_artifact(
      tmp_path,
      {'train': anomalies_pb2.Anomalies(), 'eval': _subtype_anomaly()})
  with pytest.raises(executor.DataValidationError) as raised:
    _run_gate(artifact)
  message = str(raised.value)
  assert 'found 1 anomaly against schemas/schema.pbtxt' in message
  assert "[eval] feature 'subtype': Unexpected string values" in message
  assert 'virus2' in message
  assert '[train]' not in message
  assert isinstance(raised.value, RuntimeError)


def test_describe_lists_every_anomaly_in_order():
  train = anomalies_pb2.Anomalies()
  train.anomaly_info['width'].short_description = 'Out-of-range values'
  train.anomaly_info['width'].description = 'Unexpectedly small value: 0.'
  train.anomaly_info['channels'].short_description = 'Out-of-range values'
  train.anomaly_info['channels'].description = 'Unexpectedly large value: 5.'
  train.dataset_anomaly_info.short_description = 'Low num examples'
  train.dataset_anomaly_info.description = 'Too few examples.'
  lines = executor.describe({'train': train, 'eval': _subtype_anomaly()})
  assert lines == [
      "[eval] feature 'subtype': Unexpected string values -- Examples contain "
      'values missing from the schema: virus2 (~3%).',
      "[train] feature 'channels': Out-of-range values -- Unexpectedly large "
      'value: 5.',
      "[train] feature 'width': Out-of-range values -- Unexpectedly small "
      'value: 0.',
      '[train] dataset: Low num examples -- Too few examples.',
  ]


def test_gate_counts_several_anomalies(tmp_path):
  eval_anomalies = _subtype_anomaly()
  eval_anomalies.anomaly_info['label'].short_description = 'Out-of-range'
  artifact = _anomalies_artifact(
      tmp_path, {'train': _subtype_anomaly(), 'eval': eval_anomalies})
  with pytest.raises(executor.DataValidationError,
                     match='found 3 anomalies') as raised:
    _run_gate(artifact)
  assert "[eval] feature 'label'" in str(raised.value)
  assert "[train] feature 'subtype'" in str(raised.value)


def test_gate_fails_closed_when_a_split_file_is_missing(tmp_path):
  artifact = _anomalies_artifact(tmp_path,
                                 {'train': anomalies_pb2.Anomalies()})
  artifact.split_names = artifact_utils.encode_split_names(['train', 'eval'])
  with pytest.raises(tf.errors.NotFoundError):
    _run_gate(artifact)


# --- real statistics against the real schema ----------------------------------

def _plant_examples(root: pathlib.Path) -> List[tf.train.Example]:
  """tf.Examples that ingestion makes from a few small real images (at
  least ImageLimits.min_side a side, or ingestion rejects them)."""
  rng = np.random.default_rng(7)
  files = [('NORMAL/IM-0001-0001.jpeg', (72, 70, 1)),
           ('NORMAL/NORMAL2-IM-1427-0001.png', (69, 68, 1)),
           ('NORMAL/IM-0002-0001-0002.jpeg', (70, 70, 3)),
           ('PNEUMONIA/person1_bacteria_1.jpeg', (71, 73, 1)),
           ('PNEUMONIA/person1_virus_2.jpeg', (68, 69, 3)),
           ('PNEUMONIA/person2_virus_3.png', (67, 67, 3))]
  examples = []
  for rel_path, shape in files:
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    encode = tf.io.encode_png if rel_path.endswith('.png') else (
        tf.io.encode_jpeg)
    path = root / rel_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(pixels).numpy())
    label = constants.NORMAL if rel_path.startswith('NORMAL') else (
        constants.PNEUMONIA)
    inspected = ingest_executor.inspect_image(
        ingest_executor.Candidate(str(path), rel_path, label))
    assert inspected.error is None, inspected
    examples.append(ingest_executor.attach_image(
        ingest_executor.to_example(inspected), str(root)))
  return examples


def _validate(examples, path: pathlib.Path) -> anomalies_pb2.Anomalies:
  with tf.io.TFRecordWriter(str(path)) as writer:
    for example in examples:
      writer.write(example.SerializeToString())
  stats = tfdv.generate_statistics_from_tfrecord(str(path))
  assert stats.datasets[0].num_examples == len(examples)
  return tfdv.validate_statistics(stats, tfdv.load_schema_text(SCHEMA_PATH))


def test_ingested_examples_match_the_real_schema(tmp_path):
  anomalies = _validate(_plant_examples(tmp_path / 'images'),
                        tmp_path / 'examples.tfrecord')
  assert dict(anomalies.anomaly_info) == {}
  assert not anomalies.HasField('dataset_anomaly_info')
  assert executor.describe({'train': anomalies}) == []


def test_unknown_subtype_is_an_anomaly_the_gate_names(tmp_path):
  examples = _plant_examples(tmp_path / 'images')
  feature = examples[3].features.feature[constants.SUBTYPE_KEY]
  feature.bytes_list.value[0] = b'fungal'
  anomalies = _validate(examples, tmp_path / 'examples.tfrecord')
  assert list(anomalies.anomaly_info) == ['subtype']
  lines = executor.describe({'train': anomalies})
  assert len(lines) == 1
  assert lines[0].startswith("[train] feature 'subtype': Unexpected string "
                             'values -- ')
  assert 'fungal' in lines[0]
  # The whole gate, on what ExampleValidator would have written.
  artifact = _anomalies_artifact(
      tmp_path, {'train': anomalies, 'eval': anomalies_pb2.Anomalies()})
  with pytest.raises(executor.DataValidationError, match='fungal'):
    _run_gate(artifact)


def test_missing_feature_is_an_anomaly(tmp_path):
  examples = _plant_examples(tmp_path / 'images')
  del examples[0].features.feature[constants.PATIENT_ID_KEY]
  anomalies = _validate(examples, tmp_path / 'examples.tfrecord')
  assert constants.PATIENT_ID_KEY in anomalies.anomaly_info
  assert any("feature 'patient_id'" in line
             for line in executor.describe({'eval': anomalies}))


def test_real_originals_match_the_real_schema(tmp_path):
  originals = os.path.join(images.DATA_ROOT, 'kermany-original-sample')
  manifest = os.path.join(originals, 'MANIFEST.csv')
  images.require_data(manifest)
  with open(manifest, newline='') as f:
    rows = list(csv.DictReader(f))
  # The smallest NORMAL, 1-channel PNEUMONIA and 3-channel PNEUMONIA files.
  picked = []
  for label, channels in (('NORMAL', '1'), ('PNEUMONIA', '1'),
                          ('PNEUMONIA', '3')):
    matching = [r for r in rows
                if r['label'] == label and r['channels'] == channels]
    picked += sorted(matching, key=lambda r: int(r['bytes']))[:2]
  examples = []
  for row in picked:
    inspected = ingest_executor.inspect_image(ingest_executor.Candidate(
        os.path.join(originals, row['path']), row['path'],
        constants.LABEL_NAMES.index(row['label'])))
    assert inspected.error is None, inspected
    examples.append(ingest_executor.attach_image(
        ingest_executor.to_example(inspected), str(originals)))
  anomalies = _validate(examples, tmp_path / 'originals.tfrecord')
  assert executor.describe({'train': anomalies}) == []
