"""Anomalies and drift stop the real pipeline with a message naming them.

The pipeline runs (in-process, DirectRunner) on a few real images against a
schema whose subtype domain lacks 'virus': ExampleValidator finds the
anomaly, AnomalyGate stops the run, nothing after it runs.
"""
import pathlib
import shutil

import pytest
from tfx import v1 as tfx

from components.anomaly_gate.executor import DataValidationError
from components.drift_check import executor as drift_executor
from contract import layout
from contract import settings as config
from contract import options
from pipeline import compilation
from pipeline import pipeline as pipeline_lib
from testing import images
from testing import serving_folders
from testing import statistics
from testing.support import executions


def test_a_schema_anomaly_stops_the_run_before_training(original_sample,
                                                        tmp_path):
  data = tmp_path / 'data'
  for label, pattern in (('NORMAL', 'IM-*.jpeg'),
                         ('PNEUMONIA', 'person*_virus_*.jpeg')):
    (data / label).mkdir(parents=True)
    for path in sorted((original_sample / 'chest_xray' / 'train' /
                        label).glob(pattern))[:4]:
      shutil.copyfile(path, data / label / path.name)
  schema = tmp_path / 'schema.pbtxt'
  schema.write_text(open(config.SCHEMA_PATH).read().replace(
      '  value: "virus"\n', ''))
  paths = config.output_paths(str(tmp_path / 'out'))
  pipeline = pipeline_lib.create_pipeline(
      config.PIPELINE_NAME, paths['pipeline_root'], str(data), str(schema),
      paths['serving_model_dir'], paths['reports_dir'], stop_after='train',
      training=options.training_settings('quick', image_size=32, epochs=1),
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              paths['metadata_path'])),
      beam_pipeline_args=config.direct_runner_args(1))
  with pytest.raises(DataValidationError) as error:
    tfx.orchestration.LocalDagRunner().run_with_ir(
        compilation.compile_for_local(pipeline))
  message = str(error.value)
  assert "feature 'subtype'" in message and 'virus' in message
  states = dict(executions(paths['metadata_path']))
  assert states['AnomalyGate'] == 'FAILED'
  assert 'Trainer' not in states


def test_drift_with_on_drift_stop_stops_the_run_before_training(
    kermany_224, original_sample, tmp_path):
  """A deployed version trained on full-resolution originals; new data at
  224 px: DriftCheck names the size drift and nothing trains."""
  paths = config.output_paths(str(tmp_path / 'out'))
  version = pathlib.Path(paths['serving_model_dir']) / '1'
  serving_folders.tiny_saved_model(version)
  baseline = statistics.example_statistics(original_sample,
                                           tmp_path / 'baseline', count=10)
  (version / layout.TRAINING_STATISTICS_FILE).parent.mkdir(exist_ok=True)
  (version / layout.TRAINING_STATISTICS_FILE).write_bytes(
      baseline.SerializeToString())
  data = tmp_path / 'data'
  images.copy_patients(kermany_224, data, count=8)
  pipeline = pipeline_lib.create_pipeline(
      config.PIPELINE_NAME, paths['pipeline_root'], str(data),
      config.SCHEMA_PATH, paths['serving_model_dir'], paths['reports_dir'],
      stop_after='train',
      training=options.training_settings('quick', image_size=32, epochs=1,
                                         on_drift=options.ON_DRIFT_STOP),
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              paths['metadata_path'])),
      beam_pipeline_args=config.direct_runner_args(1))
  with pytest.raises(drift_executor.DriftError) as error:
    tfx.orchestration.LocalDagRunner().run_with_ir(
        compilation.compile_for_local(pipeline))
  message = str(error.value)
  assert 'height' in message and 'width' in message and 'version 1' in message
  states = dict(executions(paths['metadata_path']))
  assert states['DriftCheck'] == 'FAILED'
  assert 'Trainer' not in states
