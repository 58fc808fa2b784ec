"""End-to-end: an external cohort through the real pipeline.

The main data is 240 real kermany-224 images (distinct patients); the
external cohort is a sample of kermany-224-external (other children,
Kaggle's test folder) plus a byte copy of one main image and one
undecodable file. The cohort must be ingested apart (one `external` split,
never train/eval/test, never read by the Trainer), the copy dropped as
already in the main data, the bad file rejected, and the Evaluator must judge
both cohorts: with an external AUC gate no model can meet, the model is not
blessed for that check alone and nothing is pushed.

Site calibration (--threshold-from external): with too few positives in the
calibration half the run stops before training; with the whole external
cohort the threshold is chosen on the calibration half and every external
metric comes from the other half.
"""
import glob
import json
import os
import shutil

import tensorflow as tf

from components.evaluator import results
from contract import layout
from contract import names as constants
from contract import settings as config
from testing import images
from testing.support import executions
from testing.support import require_shared_data
from testing.support import run_cli

_EXTERNAL_PER_CLASS = 20


def _external_sample(target):
  root = require_shared_data('kermany-224-external', 'chest_xray', 'test')
  for label in constants.LABEL_NAMES:
    (target / label).mkdir(parents=True, exist_ok=True)
    for path in sorted((root / label).glob('*.jpeg'))[:_EXTERNAL_PER_CLASS]:
      shutil.copyfile(path, target / label / path.name)


def _newest(output_dir, *parts):
  folders = glob.glob(os.path.join(
      config.output_paths(str(output_dir))['pipeline_root'], *parts, '*'))
  return max(folders, key=lambda p: int(os.path.basename(p)))


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _splits_and_paths(examples_dir):
  """{split: [source_path of every example]} of an Examples artifact."""
  found = {}
  for split_dir in sorted(glob.glob(os.path.join(examples_dir, 'Split-*'))):
    paths = []
    files = tf.io.gfile.glob(os.path.join(split_dir, '*.gz'))
    for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
      example = tf.train.Example.FromString(record.numpy())
      paths.append(example.features.feature[
          constants.SOURCE_PATH_KEY].bytes_list.value[0].decode())
    found[os.path.basename(split_dir)[len('Split-'):]] = paths
  return found


def _card_section(card, name):
  return card.split(f'\n## {name}\n', 1)[1].split('\n## ', 1)[0]


def _card_value(section, label):
  """The value (before its interval) of a row of a card's table."""
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip('|').split('|')]
    if cells[0] == label:
      return cells[1].split(' ')[0]
  raise AssertionError(f'no {label!r} row in {section}')


def _check_card(folder, evaluation):
  """The model card in `folder`: every section, and the evaluation
  artifact's numbers (both cohorts). Returns its Markdown."""
  with open(layout.model_card_file(folder, 'md')) as f:
    card = f.read()
  assert os.path.getsize(layout.model_card_file(folder, 'html')) > 0
  for section, uri in (('Metrics', evaluation), ('External cohort', (
      os.path.join(evaluation, layout.EXTERNAL_EVALUATION_DIR)))):
    metrics = results.load_metrics(uri)
    text = _card_section(card, section)
    for label, key in (('AUC (ROC)', 'auc'),
                       ('sensitivity (recall)', 'recall'),
                       ('specificity', 'specificity')):
      value = metrics[(layout.OVERALL, layout.CANDIDATE, key)]
      assert _card_value(text, label) == f'{value:.4f}', (section, label)
    count = metrics[(layout.OVERALL, layout.CANDIDATE, 'example_count')]
    assert _card_value(text, 'images') == f'{int(count):,}'
  for section in ('Intended use', 'Data', 'Limitations',
                  'Ethical considerations'):
    assert _card_section(card, section).strip(), section
  return card


def _args(data_dir, output_dir, external_dir, *extra):
  return ['local_runner.py', '--data-dir', data_dir, '--output-dir',
          output_dir, '--external-data-dir', external_dir, '--profile',
          'quick', '--image-size', '64', '--epochs', '4', '--batch-size',
          '16', '--architectures', 'improved_cnn', '--workers', '1',
          '--min-auc', '0.6', '--min-recall', '0.6', *extra]


def test_external_cohort_is_ingested_apart_and_gates_the_push(kermany_224,
                                                              tmp_path):
  data_dir, external_dir = tmp_path / 'data', tmp_path / 'external'
  output_dir = tmp_path / 'output'
  images.copy_patients(kermany_224, data_dir, count=120)
  _external_sample(external_dir)
  copied = sorted((data_dir / 'NORMAL').glob('*.jpeg'))[0]
  shutil.copyfile(copied, external_dir / 'NORMAL' / 'IM-9999-0001.jpeg')
  (external_dir / 'PNEUMONIA' / 'person9999_bacteria_1.jpeg').write_bytes(
      b'not an image')

  result = run_cli(_args(data_dir, output_dir, external_dir,
                         '--min-external-auc', '1.01',
                         '--min-external-recall', '0.0'))
  assert result.returncode == 0, result.stderr[-5000:]

  # Ingested apart: one split, the copy dropped, the bad file rejected.
  external = _newest(output_dir, 'ExternalExampleGen', 'examples')
  splits = _splits_and_paths(external)
  assert list(splits) == [constants.EXTERNAL_SPLIT]
  kept = sorted(splits[constants.EXTERNAL_SPLIT])
  report = _read_json(os.path.join(external, layout.INGESTION_REPORT_FILE))
  # Every sampled image once (the sample holds a byte-identical pair).
  assert len(kept) == 2 * _EXTERNAL_PER_CLASS - len(report['duplicates'])
  assert 'NORMAL/IM-9999-0001.jpeg' not in kept
  (dropped,) = report[layout.IN_MAIN_DATA]
  assert dropped['path'] == 'NORMAL/IM-9999-0001.jpeg'
  assert dropped['main_path'] == f'NORMAL/{copied.name}'
  assert [r['path'] for r in report['rejected']] == [
      'PNEUMONIA/person9999_bacteria_1.jpeg']
  # ...and the main data never saw it.
  main = _splits_and_paths(_newest(output_dir, 'ImageExampleGen', 'examples'))
  assert set(main) == set(constants.SPLIT_NAMES)
  assert not set(kept) & {p for paths in main.values() for p in paths
                          if 'IM-9999' in p}

  # Judged on both cohorts; refused for the external gate alone.
  evaluation = _newest(output_dir, 'Evaluator', 'evaluation')
  decision = _read_json(os.path.join(evaluation, layout.DECISION_FILE))
  assert decision['blessed'] is False, decision
  failed = [(c['cohort'], c['metric'], c['kind'])
            for c in decision['checks'] if not c['passed']]
  assert failed == [(layout.COHORT_EXTERNAL, 'auc', 'value')], decision
  assert {c['cohort'] for c in decision['checks']} == {
      layout.COHORT_INTERNAL, layout.COHORT_EXTERNAL}
  assert decision['cohorts'][layout.COHORT_EXTERNAL]['examples'] == len(kept)
  assert os.path.isdir(os.path.join(evaluation,
                                    layout.EXTERNAL_EVALUATION_DIR))
  serving = config.output_paths(str(output_dir))['serving_model_dir']
  assert not os.path.exists(serving) or not os.listdir(serving)
  states = dict(executions(
      config.output_paths(str(output_dir))['metadata_path']))
  for node in ('ExternalStatisticsGen', 'ExternalExampleValidator',
               'ExternalAnomalyGate', 'Pusher', 'RunReport'):
    assert states.get(node) == 'COMPLETE', (node, states)

  # The report shows both cohorts.
  latest = os.path.join(config.output_paths(str(output_dir))['reports_dir'],
                        layout.LATEST_REPORT)
  with open(os.path.join(os.path.realpath(latest), layout.REPORT_FILE)) as f:
    html = f.read()
  assert 'External cohort' in html and 'IM-9999-0001.jpeg' in html
  # ...and links the model card beside it, which says why nothing was
  # pushed.
  assert '<a href="model_card.html">model card</a>' in html
  card = _check_card(os.path.realpath(latest), evaluation)
  assert 'not pushed: the model was not blessed' in card
  assert '| external | auc (value) | ≥ 1.0100 |' in card


  # --- site calibration with too few positives: stops before training ----
  states_before = len(executions(
      config.output_paths(str(output_dir))['metadata_path']))
  small = run_cli(_args(data_dir, output_dir, external_dir,
                        '--threshold-from', 'external'))
  assert small.returncode != 0
  assert 'calibration half' in small.stderr and '20' in small.stderr
  states = executions(
      config.output_paths(str(output_dir))['metadata_path'])[states_before:]
  assert 'Trainer' not in {node for node, _ in states}, states


def test_site_calibration_chooses_the_threshold_on_one_half(kermany_224,
                                                            tmp_path):
  data_dir, output_dir = tmp_path / 'data', tmp_path / 'output'
  images.copy_patients(kermany_224, data_dir, count=120)
  external_dir = require_shared_data('kermany-224-external')
  result = run_cli(_args(data_dir, output_dir, external_dir,
                         '--threshold-from', 'external',
                         '--min-external-auc', '0.0',
                         '--min-external-recall', '0.0',
                         '--min-auc', '0.0', '--min-recall', '0.0'))
  assert result.returncode == 0, result.stderr[-5000:]

  external = _newest(output_dir, 'ExternalExampleGen', 'examples')
  halves = _splits_and_paths(external)
  assert set(halves) == {constants.CALIBRATION_SPLIT,
                         constants.EXTERNAL_SPLIT}
  assert not set(halves[constants.CALIBRATION_SPLIT]) & set(
      halves[constants.EXTERNAL_SPLIT])
  model = _newest(output_dir, 'SiteCalibration', 'calibrated_model')
  info = _read_json(os.path.join(model, 'Format-Serving',
                                 layout.MODEL_INFO_FILE))
  source = info[layout.MODEL_INFO_THRESHOLD_SOURCE]
  assert source[layout.THRESHOLD_CHOSEN_ON] == (
      layout.THRESHOLD_CHOSEN_ON_TEXT[constants.THRESHOLD_FROM_EXTERNAL])
  assert source['images'] == len(halves[constants.CALIBRATION_SPLIT])
  evaluation = _newest(output_dir, 'Evaluator', 'evaluation')
  decision = _read_json(os.path.join(evaluation, layout.DECISION_FILE))
  assert decision['threshold'] == info['threshold']
  assert decision['cohorts'][layout.COHORT_EXTERNAL]['examples'] == len(
      halves[constants.EXTERNAL_SPLIT])

  # Blessed (every gate 0) and pushed: the version carries the model card,
  # the same as the one beside the report, with the evaluation's numbers.
  serving = config.output_paths(str(output_dir))['serving_model_dir']
  (version,) = os.listdir(serving)
  pushed = _check_card(os.path.join(serving, version, layout.MODEL_CARD_DIR),
                       evaluation)
  assert f'version {version}' in pushed.splitlines()[0]
  assert "the external cohort's calibration half" in pushed
  assert f"{info['threshold']:.4f}" in _card_section(pushed, 'Model details')
  latest = os.path.realpath(os.path.join(
      config.output_paths(str(output_dir))['reports_dir'],
      layout.LATEST_REPORT))
  beside = _check_card(latest, evaluation)
  assert (_card_section(beside, 'Metrics')
          == _card_section(pushed, 'Metrics'))
  assert f'Version: {version}' in beside
