"""Unit tests of the external cohort's parts: the component's spec, dedup
against the main data (by sha256) and the cohort's ingestion report.

external_test.py runs it on real images, in and outside a pipeline.
"""
import json

import apache_beam as beam
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components.image_example_gen import component
from components.image_example_gen import dedup
from components.image_example_gen import driver
from components.image_example_gen import ingestion_report
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import layout
from contract import names as constants


# --- the component's spec ------------------------------------------------------

def test_external_split_config_is_one_split():
  config = component.external_split_config()
  assert [s.name for s in config.split_config.splits] == [
      constants.EXTERNAL_SPLIT]


def test_external_component_takes_the_main_examples():
  main = component.ImageExampleGen(input_base='/data')
  external = component.ExternalImageExampleGen(
      input_base='/site2', reference_examples=main.outputs['examples'])
  assert set(external.inputs) == {component.REFERENCE_EXAMPLES_KEY}
  assert set(external.outputs) == {standard_component_specs.EXAMPLES_KEY}
  assert external.exec_properties['input_base'] == '/site2'
  assert external.exec_properties['output_config'] == (
      proto_utils.proto_to_json(component.external_split_config()))
  assert isinstance(external, component.ImageExampleGen)  # ingestion, too
  assert external.driver_class is driver.ImageTreeDriver
  # The main component is as it was: no inputs, split by patient.
  assert not main.inputs
  assert main.exec_properties['output_config'] == (
      proto_utils.proto_to_json(component.patient_split_config()))


# --- dedup against the main data ----------------------------------------------

def _item(rel_path, sha='f' * 64, name_error=None):
  return inspection.Inspected(
      walk.Candidate('/ext/' + rel_path, rel_path, constants.PNEUMONIA), sha,
      None, 'person1', 'bacteria', 4, 4, 1, name_error)


def _against_main(sha, cohort, main_paths):
  out = {dedup.KEPT: [], dedup.DUPLICATE: [], dedup.REJECTED: [],
         dedup.IN_MAIN: []}
  for value in dedup.resolve_against_main(
      (sha, {dedup.COHORT: cohort, dedup.MAIN: main_paths})):
    if isinstance(value, beam.pvalue.TaggedOutput):
      out[value.tag].append(value.value)
    else:
      out[dedup.KEPT].append(value.candidate.rel_path)
  return out


def test_every_copy_of_a_main_image_is_dropped_with_the_main_path():
  out = _against_main('f' * 64, [_item('b/PNEUMONIA/person1_bacteria_1.jpeg'),
                                 _item('PNEUMONIA/person1_bacteria_1.jpeg')],
                      ['train/PNEUMONIA/person7_virus_2.jpeg'])
  assert out[dedup.KEPT] == [] and out[dedup.DUPLICATE] == []
  assert out[dedup.IN_MAIN] == [
      {'path': p, 'sha256': 'f' * 64,
       'main_path': 'train/PNEUMONIA/person7_virus_2.jpeg'}
      for p in ('PNEUMONIA/person1_bacteria_1.jpeg',
                'b/PNEUMONIA/person1_bacteria_1.jpeg')]


def test_against_main_keeps_new_images_and_rejects_bad_names():
  new = _against_main('f' * 64, [_item('PNEUMONIA/person1_bacteria_1.jpeg'),
                                 _item('x/PNEUMONIA/person1_bacteria_1.jpeg')],
                      [])
  assert new[dedup.KEPT] == ['PNEUMONIA/person1_bacteria_1.jpeg']
  assert [d['path'] for d in new[dedup.DUPLICATE]] == [
      'x/PNEUMONIA/person1_bacteria_1.jpeg']
  assert new[dedup.IN_MAIN] == []
  named = _against_main('f' * 64, [_item('PNEUMONIA/scan.jpeg',
                                         name_error='bad name')], ['a.jpeg'])
  assert named[dedup.REJECTED] == [{'path': 'PNEUMONIA/scan.jpeg',
                                    'reason': 'bad name'}]
  assert named[dedup.IN_MAIN] == []
  # A sha256 only the main data has yields nothing.
  assert not any(_against_main('f' * 64, [], ['a.jpeg']).values())


def test_cohort_report_and_summary():
  report = ingestion_report.build_cohort_report(
      [('external', 'NORMAL', 'IM-0001'), ('external', 'PNEUMONIA', 'p1')],
      [], [{'path': 'r', 'reason': 'empty file'}], ['notes.txt'],
      [{'path': 'z', 'sha256': 'a' * 64, 'main_path': 'm'},
       {'path': 'c', 'sha256': 'b' * 64, 'main_path': 'n'}],
      present=True, num_files=5)
  assert set(report['counts']) == {'external', 'all'}
  assert [d['path'] for d in report[layout.IN_MAIN_DATA]] == ['c', 'z']
  assert report[layout.COHORT_PRESENT] == 1
  assert report['files'] == {'listed': 5, 'kept': 2, layout.IN_MAIN_DATA: 2,
                             'duplicates': 0, 'rejected': 1}
  assert ingestion_report.summarize(json.loads(json.dumps(report))) == (
      'External cohort: Ingested 2 images: external 2 (1 NORMAL, '
      '1 PNEUMONIA); 2 already in the main data dropped, 0 duplicates '
      'dropped, 1 files rejected, 1 entries ignored.')
  absent = ingestion_report.build_cohort_report([], [], [], [], [], False, 0)
  assert absent[layout.COHORT_PRESENT] == 0
  assert ingestion_report.summarize(absent).startswith(
      'External cohort absent (empty data root)')
