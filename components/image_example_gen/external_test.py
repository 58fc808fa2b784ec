"""Tests of the external cohort: one split, no image of the main data, and an
empty data root that means "no cohort".

Real images of ../shared/data are copied a handful at a time into tmp_path:
the main data from `kermany-224` (Kaggle train), the cohort from
`kermany-224-external` (Kaggle test, other children).
"""
import json
import os
import pathlib
import shutil
from typing import Dict, List, NamedTuple

import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import v1 as tfx
from tfx.types import artifact_utils

from components.anomaly_gate.component import AnomalyGate
from components.image_example_gen import component
from components.image_example_gen import driver
from components.image_example_gen import ingestion_report
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import layout
from contract import names as constants
from contract import settings as config
from testing import support


class Cohorts(NamedTuple):
  """Planted main data and external cohort, and what must come out."""
  main: pathlib.Path
  external: pathlib.Path
  kept: List[str]  # the cohort's source paths, each exactly once
  in_main_data: List[Dict[str, str]]
  rejected: Dict[str, str]  # path -> part of the reason
  duplicates: List[Dict[str, str]]


def _real(folder: str, label: str, count: int) -> List[pathlib.Path]:
  root = support.require_shared_data(folder, 'chest_xray')
  split = 'train' if folder == 'kermany-224' else 'test'
  return sorted((root / split / label).glob('*.jpeg'))[:count]


def _copy(source: pathlib.Path, target: pathlib.Path) -> None:
  target.parent.mkdir(parents=True, exist_ok=True)
  shutil.copyfile(source, target)


def plant_cohorts(root: pathlib.Path, internal_copy: bool = True) -> Cohorts:
  """10 main images; 9 cohort images, a byte copy of a main image, an
  undecodable file and (internal_copy) a second copy of a cohort image."""
  main, external = root / 'main', root / 'external'
  for label in constants.LABEL_NAMES:
    for path in _real('kermany-224', label, 5):
      _copy(path, main / 'chest_xray' / 'train' / label / path.name)
  kept = []
  for label, count in (('NORMAL', 5), ('PNEUMONIA', 4)):
    for i, path in enumerate(_real('kermany-224-external', label, count)):
      # Any depth below a label folder, as for the main data.
      rel_path = (f'site2/2024/{label}/{path.name}' if i % 2 else
                  f'site2/{label}/{path.name}')
      _copy(path, external / rel_path)
      kept.append(rel_path)
  in_main = _real('kermany-224', 'NORMAL', 1)[0]
  copy = 'site2/NORMAL/IM-9001-0001.jpeg'
  _copy(in_main, external / copy)
  sha = inspection.inspect_image(walk.Candidate(
      str(in_main), in_main.name, constants.NORMAL)).sha256
  bad = 'site2/PNEUMONIA/person9001_bacteria_1.jpeg'
  (external / bad).write_bytes(b'a scanner error page, not an image\n')
  duplicates = []
  if internal_copy:
    _copy(external / kept[0], external / 'site2/again/NORMAL' /
          os.path.basename(kept[0]))
    duplicates.append({'path': 'site2/again/NORMAL/' +
                               os.path.basename(kept[0]),
                       'duplicate_of': kept[0]})
  return Cohorts(
      main, external, sorted(kept),
      [{'path': copy, 'sha256': sha,
        'main_path': f'chest_xray/train/NORMAL/{in_main.name}'}],
      {bad: 'not a decodable image'}, duplicates)


def read_split(uri: str, split: str) -> List[tf.train.Example]:
  files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*'))
  assert files, f'no files in Split-{split}'
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return [tf.train.Example.FromString(r.numpy()) for r in dataset]


def source_paths(examples: List[tf.train.Example]) -> List[str]:
  return sorted(e.features.feature[constants.SOURCE_PATH_KEY].bytes_list
                .value[0].decode() for e in examples)


def read_report(uri: str) -> dict:
  with open(ingestion_report.report_path(uri)) as f:
    return json.load(f)


def check_present_cohort(examples, cohorts: Cohorts) -> None:
  """What every ingestion of plant_cohorts' cohort must produce."""
  assert artifact_utils.decode_split_names(examples.split_names) == [
      constants.EXTERNAL_SPLIT]
  assert sorted(os.listdir(examples.uri)) == [
      f'Split-{constants.EXTERNAL_SPLIT}', layout.INGESTION_REPORT_FILE]
  rows = read_split(examples.uri, constants.EXTERNAL_SPLIT)
  assert source_paths(rows) == cohorts.kept
  report = read_report(examples.uri)
  assert report[layout.IN_MAIN_DATA] == cohorts.in_main_data
  assert [r['path'] for r in report['rejected']] == sorted(cohorts.rejected)
  for r in report['rejected']:
    assert cohorts.rejected[r['path']] in r['reason'], r
  assert report['duplicates'] == cohorts.duplicates
  assert report[layout.COHORT_PRESENT] == 1
  assert set(report['counts']) == {constants.EXTERNAL_SPLIT, 'all'}
  assert report['counts'][constants.EXTERNAL_SPLIT] == {
      'NORMAL': 5, 'PNEUMONIA': 4, 'total': 9}
  assert report['files'] == {
      'listed': 11 + len(cohorts.duplicates), 'kept': 9,
      layout.IN_MAIN_DATA: 1, 'duplicates': len(cohorts.duplicates),
      'rejected': 1}
  assert examples.get_int_custom_property(layout.COHORT_PRESENT) == 1
  summary = examples.get_string_custom_property('ingestion_summary')
  assert summary == ingestion_report.summarize(report)
  assert summary.startswith('External cohort: Ingested 9 images: external 9 '
                            '(5 NORMAL, 4 PNEUMONIA); 1 already in the main '
                            'data dropped, ')


def check_absent_cohort(examples) -> None:
  """An empty data root: an empty split, COHORT_PRESENT 0, a report."""
  assert artifact_utils.decode_split_names(examples.split_names) == [
      constants.EXTERNAL_SPLIT]
  assert read_split(examples.uri, constants.EXTERNAL_SPLIT) == []
  assert examples.get_int_custom_property(layout.COHORT_PRESENT) == 0
  report = read_report(examples.uri)
  assert report[layout.COHORT_PRESENT] == 0
  assert report[layout.IN_MAIN_DATA] == []
  assert report['counts']['all']['total'] == 0
  assert examples.get_string_custom_property('ingestion_summary').startswith(
      'External cohort absent')


# --- the executor on real images, outside a pipeline ------------------------

def test_external_cohort_outside_pipeline(tmp_path):
  cohorts = plant_cohorts(tmp_path)
  main = component.ingest_outside_pipeline(str(cohorts.main),
                                           str(tmp_path / 'out' / 'main'))
  external = component.ingest_external_outside_pipeline(
      str(cohorts.external), str(tmp_path / 'out' / 'external'), main)
  check_present_cohort(external, cohorts)
  # The main data is as it would be without a cohort.
  assert not main.has_custom_property(layout.COHORT_PRESENT)
  assert layout.IN_MAIN_DATA not in read_report(main.uri)

  absent = component.ingest_external_outside_pipeline(
      component.NO_COHORT, str(tmp_path / 'out' / 'absent'), main)
  check_absent_cohort(absent)


# --- a real LocalDagRunner pipeline -------------------------------------------

def _published_examples(metadata_path: str, pipeline_root: str,
                        node_id: str):
  """The Examples a node wrote, as MLMD holds them (with the custom
  properties the orchestrator recorded)."""
  from ml_metadata.metadata_store import metadata_store  # pylint: disable=g-import-not-at-top
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  connection = metadata_store_pb2.ConnectionConfig()
  connection.sqlite.filename_uri = metadata_path
  connection.sqlite.connection_mode = 1  # READONLY
  store = metadata_store.MetadataStore(connection)
  prefix = os.path.join(pipeline_root, node_id) + os.sep
  [found] = [a for a in store.get_artifacts_by_type('Examples')
             if a.uri.startswith(prefix)]
  artifact = tfx.types.standard_artifacts.Examples()
  artifact.set_mlmd_artifact(found)
  return artifact


def test_main_and_external_cohorts_in_a_local_pipeline(tmp_path):
  """Main + present cohort + absent cohort, each cohort validated and gated.

  The cohort's ingestion has an input channel (the main Examples) and TFX's
  file-based driver; the absent cohort's empty split goes through the real
  StatisticsGen and ExampleValidator, and its gate passes.
  """
  cohorts = plant_cohorts(tmp_path, internal_copy=False)
  main = component.ImageExampleGen(input_base=str(cohorts.main))
  external = component.ExternalImageExampleGen(
      input_base=str(cohorts.external),
      reference_examples=main.outputs['examples'])
  absent = component.ExternalImageExampleGen(
      input_base=component.NO_COHORT,
      reference_examples=main.outputs['examples']).with_id('AbsentCohort')
  schema = tfx.components.ImportSchemaGen(schema_file=config.SCHEMA_PATH)
  nodes = [main, external, absent, schema]
  for cohort in (external, absent):
    statistics = tfx.components.StatisticsGen(
        examples=cohort.outputs['examples'],
        schema=schema.outputs['schema']).with_id(f'Statistics_{cohort.id}')
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs['statistics'],
        schema=schema.outputs['schema']).with_id(f'Validator_{cohort.id}')
    gate = AnomalyGate(anomalies=validator.outputs['anomalies'],
                       examples=cohort.outputs['examples']).with_id(
                           f'Gate_{cohort.id}')
    nodes += [statistics, validator, gate]
  root, metadata_path = str(tmp_path / 'root'), str(tmp_path / 'mlmd.sqlite')
  tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
      pipeline_name='external-cohort-test', pipeline_root=root,
      components=nodes, enable_cache=False,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              metadata_path)),
      beam_pipeline_args=config.direct_runner_args(1)))

  states = dict(support.executions(metadata_path))
  assert states == {node.id: 'COMPLETE' for node in nodes}, states
  check_present_cohort(
      _published_examples(metadata_path, root, external.id), cohorts)
  check_absent_cohort(_published_examples(metadata_path, root, absent.id))
  # The driver fingerprinted the whole cohort tree, as for the main data.
  assert _published_examples(
      metadata_path, root, external.id).get_string_custom_property(
          'input_fingerprint') == driver.tree_fingerprint(
              str(cohorts.external))
  main_uri = _published_examples(metadata_path, root, main.id).uri
  assert cohorts.in_main_data[0]['main_path'] in [
      path for split in constants.SPLIT_NAMES
      for path in source_paths(read_split(main_uri, split))]
  # What TFDV makes of the empty split: no statistics, no anomaly, only
  # `data_missing` (it validates no dataset without examples).
  [anomalies] = tf.io.gfile.glob(os.path.join(
      root, 'Validator_AbsentCohort', 'anomalies', '*', 'Split-external',
      'SchemaDiff.pb'))
  parsed = anomalies_pb2.Anomalies.FromString(open(anomalies, 'rb').read())
  assert parsed.data_missing and not parsed.anomaly_info
