"""End-to-end: the real pipeline, `--stop-after validate`, on real originals.

The tree is the Kermany original sample plus what real downloads contain:
a nested duplicate `chest_xray/chest_xray` copy, `__MACOSX` junk, a truncated
JPEG, an empty file, a text file named .jpeg and a PNG.
"""
import collections
import glob
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from contract import settings as config
from contract import layout
from contract import names as constants
from testing.support import executions
from testing.support import run_cli


def _build_tree(sample, root):
  """Copies the sample and plants the awkward files; returns what to expect."""
  shutil.copytree(sample / 'chest_xray', root / 'chest_xray')
  originals = sorted((root / 'chest_xray').rglob('*.jpeg'))
  normals = [p for p in originals if p.parent.name == 'NORMAL']
  pneumonias = [p for p in originals if p.parent.name == 'PNEUMONIA']

  duplicates = []  # (copy, original), relative paths
  nested = root / 'chest_xray' / 'chest_xray' / 'train'
  for original in normals[:4] + pneumonias[:4]:
    copy = nested / original.parent.name / original.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(original, copy)
    duplicates.append((copy.relative_to(root).as_posix(),
                       original.relative_to(root).as_posix()))
  # Same bytes under another name and in Kaggle's val folder.
  renamed = root / 'chest_xray' / 'val' / 'NORMAL' / 'IM-0999-0001.jpeg'
  renamed.parent.mkdir(parents=True)
  shutil.copyfile(normals[5], renamed)
  duplicates.append((renamed.relative_to(root).as_posix(),
                     normals[5].relative_to(root).as_posix()))

  rejected = []
  bad_dir = root / 'chest_xray' / 'test'
  truncated = bad_dir / 'PNEUMONIA' / 'person9001_bacteria_1.jpeg'
  truncated.parent.mkdir(parents=True)
  raw = pneumonias[10].read_bytes()
  truncated.write_bytes(raw[:len(raw) // 2])
  empty = bad_dir / 'NORMAL' / 'IM-9002-0001.jpeg'
  empty.parent.mkdir(parents=True)
  empty.write_bytes(b'')
  text = bad_dir / 'PNEUMONIA' / 'person9003_virus_1.jpeg'
  text.write_text('this is not an image\n')
  rejected += [p.relative_to(root).as_posix() for p in (truncated, empty, text)]

  png = bad_dir / 'NORMAL' / 'IM-9004-0001.png'
  image = tf.io.decode_jpeg(normals[7].read_bytes(), channels=1)
  png.write_bytes(tf.io.encode_png(tf.image.resize(
      image, (300, 360)).numpy().astype(np.uint8)).numpy())

  junk = root / '__MACOSX' / 'chest_xray' / 'train' / 'NORMAL' / '._x.jpeg'
  junk.parent.mkdir(parents=True)
  junk.write_bytes(b'\x00\x05\x16\x07')
  return duplicates, rejected, png.relative_to(root).as_posix()


def _read_split(examples_dir, split):
  files = glob.glob(os.path.join(examples_dir, f'Split-{split}', '*.gz'))
  assert files, f'no TFRecords for split {split} in {examples_dir}'
  rows = []
  for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
    example = tf.train.Example.FromString(record.numpy())
    feature = example.features.feature
    rows.append({
        'path': feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode(),
        'patient': feature[constants.PATIENT_ID_KEY].bytes_list.value[0],
        'label': feature[constants.LABEL_KEY].int64_list.value[0],
        'sha256': feature[constants.SHA256_KEY].bytes_list.value[0].decode(),
    })
  return rows


def _latest_examples_dir(output_dir):
  runs = glob.glob(os.path.join(
      config.output_paths(str(output_dir))['pipeline_root'],
      'ImageExampleGen', 'examples', '*'))
  return max(runs, key=lambda p: int(os.path.basename(p)))


def test_ingest_and_validate_real_originals(original_sample, tmp_path):
  data_dir, output_dir = tmp_path / 'data', tmp_path / 'output'
  data_dir.mkdir()
  duplicates, rejected, png = _build_tree(original_sample, data_dir)
  args = ['local_runner.py', '--data-dir', data_dir, '--output-dir',
          output_dir, '--stop-after', 'validate']

  result = run_cli(args)
  assert result.returncode == 0, result.stderr[-5000:]
  summary_lines = [line for line in result.stderr.splitlines()
                   if 'Ingested ' in line and 'Report:' in line]
  assert len(summary_lines) == 1, 'one readable summary line expected'

  examples_dir = _latest_examples_dir(output_dir)
  splits = {split: _read_split(examples_dir, split)
            for split in constants.SPLIT_NAMES}
  emitted = [row for rows in splits.values() for row in rows]

  # Emitted = unique decodable images (the sample has one known byte-identical
  # pair; the PNG is new).
  expected_unique = {
      hashlib.sha256(p.read_bytes()).hexdigest()
      for p in (original_sample / 'chest_xray').rglob('*.jpeg')}
  assert len(emitted) == len(expected_unique) + 1
  assert len({row['sha256'] for row in emitted}) == len(emitted)
  assert png in {row['path'] for row in emitted}
  assert not any('chest_xray/chest_xray' in row['path'] for row in emitted)

  # No patient in two splits.
  split_of = collections.defaultdict(set)
  for split, rows in splits.items():
    for row in rows:
      split_of[row['patient']].add(split)
  leaked = {p: s for p, s in split_of.items() if len(s) > 1}
  assert not leaked, f'patients in several splits: {leaked}'

  # 70/20/10 within +-7 points.
  for split, buckets in constants.SPLITS:
    share = 100 * len(splits[split]) / len(emitted)
    assert abs(share - 10 * buckets) <= 7, (split, share)

  with open(os.path.join(examples_dir,
                         layout.INGESTION_REPORT_FILE)) as f:
    report = json.load(f)
  assert set(report) >= {'counts', 'duplicates', 'rejected'}
  for split in constants.SPLIT_NAMES:
    counted = report['counts'][split]
    assert counted['total'] == len(splits[split])
    for label, name in enumerate(constants.LABEL_NAMES):
      assert counted[name] == sum(r['label'] == label for r in splits[split])
  rejected_paths = {r['path']: r['reason'] for r in report['rejected']}
  assert set(rejected) <= set(rejected_paths), rejected_paths
  assert all(rejected_paths[p] for p in rejected)
  reported_duplicates = {(d['path'], d['duplicate_of'])
                         for d in report['duplicates']}
  assert set(duplicates) <= reported_duplicates
  assert any('person1619_bacteria_426' in d for d, _ in reported_duplicates)
  assert '__MACOSX/' in report['ignored']['paths']

  states = executions(config.output_paths(str(output_dir))['metadata_path'])
  data_nodes = ['ImageExampleGen', 'ImportSchemaGen', 'StatisticsGen',
                'ExampleValidator', 'AnomalyGate']
  # What is served now: asked every run, never cached (nothing deployed
  # here, so the drift check says it did not compare).
  present_nodes = ['DeployedModel', 'DriftCheck']
  names = [name for name, _ in states]
  assert sorted(names) == sorted(data_nodes + present_nodes), states
  assert [n for n in names if n in data_nodes] == data_nodes  # in order
  assert names.index('DriftCheck') > names.index('StatisticsGen')
  assert {state for _, state in states} == {'COMPLETE'}
  runs = len(states)

  # Unchanged inputs: the data stages are served from cache.
  result = run_cli(args)
  assert result.returncode == 0, result.stderr[-5000:]
  states = executions(config.output_paths(str(output_dir))['metadata_path'])
  assert sorted(states[runs:]) == sorted(
      [(n, 'CACHED') for n in data_nodes] +
      [(n, 'COMPLETE') for n in present_nodes]), states

  # A new image deep in the tree: ingestion runs again and picks it up.
  new_image = data_dir / 'extra' / 'batch2' / 'pneumonia' / 'person9100_virus_1.jpeg'
  new_image.parent.mkdir(parents=True)
  new_image.write_bytes(tf.io.encode_jpeg(tf.io.decode_png(
      (data_dir / png).read_bytes())).numpy())
  result = run_cli(args)
  assert result.returncode == 0, result.stderr[-5000:]
  states = executions(config.output_paths(str(output_dir))['metadata_path'])
  assert ('ImageExampleGen', 'COMPLETE') in states[2 * runs:], states
  rerun_paths = {row['path'] for split in constants.SPLIT_NAMES
                 for row in _read_split(_latest_examples_dir(output_dir), split)}
  assert new_image.relative_to(data_dir).as_posix() in rerun_paths
  assert len(rerun_paths) == len(emitted) + 1


def test_help_explains_every_option():
  result = run_cli(['local_runner.py', '--help'])
  assert result.returncode == 0
  for option in ('--data-dir', '--output-dir', '--stop-after', '--workers',
                 '--beam-arg', '--no-cache', 'ingest', 'validate'):
    assert option in result.stdout, option


@pytest.mark.parametrize('stop_after', ['ingest'])
def test_stop_after_ingest_runs_only_ingestion(original_sample, tmp_path,
                                                stop_after):
  data_dir = tmp_path / 'data' / 'NORMAL'
  data_dir.mkdir(parents=True)
  for path in sorted((original_sample / 'chest_xray' / 'train' /
                      'NORMAL').glob('*.jpeg'))[:6]:
    shutil.copyfile(path, data_dir / path.name)
  result = run_cli(['local_runner.py', '--data-dir', data_dir.parent,
                    '--output-dir', tmp_path / 'out', '--stop-after',
                    stop_after, '--workers', '1'])
  assert result.returncode == 0, result.stderr[-5000:]
  states = executions(config.output_paths(str(tmp_path / 'out'))
                      ['metadata_path'])
  assert states == [('ImageExampleGen', 'COMPLETE')]
