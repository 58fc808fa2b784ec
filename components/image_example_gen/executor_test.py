"""Tests of the ImageExampleGen executor: listing, inspection, dedup, Beam, Do.

Every image is a small real JPEG/PNG (at least ImageLimits.min_side a side)
written with TensorFlow into pytest's tmp_path under a valid Kermany file
name; a few tests also read real originals from the shared data folder in
place.
"""
import collections
import csv
import hashlib
import itertools
import json
import os
import pathlib
import shutil
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
from apache_beam.testing import util as beam_util
import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.image_example_gen import component
from components.image_example_gen import dedup
from components.image_example_gen import encoding
from components.image_example_gen import ingest
from components.image_example_gen import ingestion_report
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import names as constants
from testing import images

N_TRAIN = 'chest_xray/train/NORMAL/'
P_TRAIN = 'chest_xray/train/PNEUMONIA/'
ORIGINALS = os.path.join(images.DATA_ROOT, 'kermany-original-sample')

_seeds = itertools.count(1)


def _encode(shape=(72, 70, 1), fmt='jpeg', seed=None) -> bytes:
  """A real encoded image of random pixels (different seed, different bytes)."""
  seed = next(_seeds) if seed is None else seed
  pixels = np.random.default_rng(seed).integers(0, 256, size=shape,
                                                dtype=np.uint8)
  encode = tf.io.encode_png if fmt == 'png' else tf.io.encode_jpeg
  return encode(pixels).numpy()


def _write(root: pathlib.Path, rel_path: str, raw: bytes) -> pathlib.Path:
  path = root / rel_path
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(raw)
  return path


def _sha(raw: bytes) -> str:
  return hashlib.sha256(raw).hexdigest()


def _candidate(root: pathlib.Path, rel_path: str, label: int,
               raw: Optional[bytes] = None) -> walk.Candidate:
  if raw is not None:
    _write(root, rel_path, raw)
  return walk.Candidate(str(root / rel_path), rel_path, label)


def _example_row(example: tf.train.Example) -> Tuple:
  """The (source_path, label, patient, subtype, h, w, c, sha256) of an example.

  Also checks that the stored sha256 is the digest of the stored bytes.
  """
  feature = example.features.feature

  def one_bytes(key):
    values = feature[key].bytes_list.value
    assert len(values) == 1, (key, values)
    return values[0]

  def one_int(key):
    values = feature[key].int64_list.value
    assert len(values) == 1, (key, values)
    return values[0]

  sha = one_bytes(constants.SHA256_KEY).decode()
  assert _sha(one_bytes(constants.IMAGE_KEY)) == sha
  return (one_bytes(constants.SOURCE_PATH_KEY).decode(),
          one_int(constants.LABEL_KEY),
          one_bytes(constants.PATIENT_ID_KEY).decode(),
          one_bytes(constants.SUBTYPE_KEY).decode(),
          one_int(constants.HEIGHT_KEY), one_int(constants.WIDTH_KEY),
          one_int(constants.CHANNELS_KEY), sha)


# --- a planted tree: ~30 good images of 17 patients, plus every problem ------

class Plan:
  """What ingestion of the planted tree must produce."""

  def __init__(self, root: pathlib.Path):
    self.root = root
    # rel_path -> (label, patient, subtype, height, width, channels, sha256)
    self.kept: Dict[str, Tuple] = {}
    self.duplicates: List[Dict[str, str]] = []
    self.rejected: Dict[str, str] = {}  # path -> substring of the reason
    self.ignored: List[str] = []

  def image(self, rel_path, patient, subtype, shape=(72, 70, 1), fmt='jpeg'):
    raw = _encode(shape, fmt)
    _write(self.root, rel_path, raw)
    label = constants.NORMAL if subtype == 'normal' else constants.PNEUMONIA
    self.kept[rel_path] = (label, patient, subtype, *shape, _sha(raw))
    return raw

  def rows(self):
    return sorted((path, *values) for path, values in self.kept.items())


def plant_tree(root: pathlib.Path) -> Plan:
  """Writes the planted tree below root and returns what must come out."""
  plan = Plan(root)
  # NORMAL: 12 images, 9 patients.
  plan.image(N_TRAIN + 'IM-0101-0001.jpeg', 'IM-0101', 'normal')
  plan.image(N_TRAIN + 'IM-0101-0002.jpeg', 'IM-0101', 'normal', (74, 69, 1))
  plan.image(N_TRAIN + 'IM-0102-0001.jpeg', 'IM-0102', 'normal')
  plan.image(N_TRAIN + 'IM-0103-0001-0001.jpeg', 'IM-0103', 'normal')
  plan.image(N_TRAIN + 'IM-0103-0001-0002.jpeg', 'IM-0103', 'normal')
  plan.image(N_TRAIN + 'NORMAL2-IM-0201-0001.jpeg', 'NORMAL2-IM-0201',
             'normal')
  plan.image(N_TRAIN + 'NORMAL2-IM-0201-0002.png', 'NORMAL2-IM-0201',
             'normal', (69, 71, 1), 'png')
  plan.image(N_TRAIN + 'NORMAL2-IM-0202-0001.jpeg', 'NORMAL2-IM-0202',
             'normal', (70, 72, 3))
  plan.image('chest_xray/val/NORMAL/IM-0104-0001.jpeg', 'IM-0104', 'normal')
  plan.image('chest_xray/test/normal/IM-0105-0001 (1).jpeg', 'IM-0105',
             'normal')
  plan.image(N_TRAIN + 'IM-0106-0001.JPG', 'IM-0106', 'normal')
  # A deeper copy sorts first alphabetically, but the shallower one is kept.
  raw = plan.image('z/NORMAL/IM-0107-0001.jpeg', 'IM-0107', 'normal')
  _write(root, N_TRAIN + 'IM-0107-0001.jpeg', raw)
  plan.duplicates.append({'path': N_TRAIN + 'IM-0107-0001.jpeg',
                          'duplicate_of': 'z/NORMAL/IM-0107-0001.jpeg'})
  # PNEUMONIA: 18 images, 8 patients.
  raw = plan.image(P_TRAIN + 'person1_bacteria_1.jpeg', 'person1', 'bacteria')
  # The nested chest_xray/chest_xray copy of the Kaggle archive.
  _write(root, 'chest_xray/' + P_TRAIN + 'person1_bacteria_1.jpeg', raw)
  plan.duplicates.append({'path': 'chest_xray/' + P_TRAIN +
                                  'person1_bacteria_1.jpeg',
                          'duplicate_of': P_TRAIN + 'person1_bacteria_1.jpeg'})
  plan.image(P_TRAIN + 'person1_bacteria_2.jpeg', 'person1', 'bacteria')
  plan.image(P_TRAIN + 'person1_virus_3.jpeg', 'person1', 'virus')
  # Kaggle's test folder: same number, pooled with train's person1.
  plan.image('chest_xray/test/PNEUMONIA/person1_virus_30.jpeg', 'person1',
             'virus')
  plan.image(P_TRAIN + 'person2_virus_4.jpeg', 'person2', 'virus')
  plan.image(P_TRAIN + 'person2_virus_4_1.jpeg', 'person2', 'virus')
  plan.image(P_TRAIN + 'person2_bacteria_18.jpeg', 'person2', 'bacteria')
  plan.image(P_TRAIN + 'person3_bacteria_5.jpeg', 'person3', 'bacteria',
             (76, 73, 3))
  plan.image(P_TRAIN + 'person3_bacteria_6.jpeg', 'person3', 'bacteria')
  plan.image(P_TRAIN + 'person4_virus_7(1).jpeg', 'person4', 'virus')
  plan.image(P_TRAIN + 'person4_virus_19.jpeg', 'person4', 'virus')
  # Like the real person1619_bacteria_4267/4268 pair: same bytes, two names.
  raw = plan.image(P_TRAIN + 'person5_bacteria_8.jpeg', 'person5', 'bacteria')
  _write(root, P_TRAIN + 'person5_bacteria_9.jpeg', raw)
  plan.duplicates.append({'path': P_TRAIN + 'person5_bacteria_9.jpeg',
                          'duplicate_of': P_TRAIN + 'person5_bacteria_8.jpeg'})
  plan.image(P_TRAIN + 'person6_bacteria_10.png', 'person6', 'bacteria',
             (68, 67, 3), 'png')
  plan.image('extra/deep/a/b/PNEUMONIA/c/person7_virus_11.jpeg', 'person7',
             'virus')
  plan.image(P_TRAIN + 'person7_virus_12.jpeg', 'person7', 'virus')
  plan.image(P_TRAIN + 'person8_bacteria_13.jpeg', 'person8', 'bacteria')
  plan.image(P_TRAIN + 'person8_bacteria_14.jpeg', 'person8', 'bacteria')
  plan.image(P_TRAIN + 'person8_virus_15.jpeg', 'person8', 'virus')
  # Rejected.
  raw = _encode()
  _write(root, N_TRAIN + 'IM-0108-0001.jpeg', raw)
  _write(root, P_TRAIN + 'person9_bacteria_20.jpeg', raw)
  plan.rejected[N_TRAIN + 'IM-0108-0001.jpeg'] = 'both NORMAL and PNEUMONIA'
  plan.rejected[P_TRAIN + 'person9_bacteria_20.jpeg'] = (
      'both NORMAL and PNEUMONIA')
  raw = _encode((92, 92, 1))
  _write(root, P_TRAIN + 'person10_virus_21.jpeg', raw[:len(raw) // 2])
  plan.rejected[P_TRAIN + 'person10_virus_21.jpeg'] = 'not a decodable image'
  _write(root, N_TRAIN + 'IM-0109-0001.jpeg', b'')
  plan.rejected[N_TRAIN + 'IM-0109-0001.jpeg'] = 'empty file'
  _write(root, N_TRAIN + 'IM-0110-0001.jpeg', b'this is not an image\n')
  plan.rejected[N_TRAIN + 'IM-0110-0001.jpeg'] = 'not a decodable image'
  _write(root, P_TRAIN + 'scan_17.jpeg', _encode())
  plan.rejected[P_TRAIN + 'scan_17.jpeg'] = 'matches no known patient form'
  _write(root, N_TRAIN + 'person11_bacteria_22.jpeg', _encode())
  plan.rejected[N_TRAIN + 'person11_bacteria_22.jpeg'] = (
      "name says 'bacteria' but folder says NORMAL")
  # Ignored: pruned folders (listed once, with a slash) and stray files.
  _write(root, '__MACOSX/' + N_TRAIN + '._IM-0101-0001.jpeg', b'\0resource')
  _write(root, '__MACOSX/' + P_TRAIN + 'person12_bacteria_1.jpeg', _encode())
  _write(root, P_TRAIN + '.cache/person13_virus_1.jpeg', _encode())
  _write(root, N_TRAIN + '.DS_Store', b'\0\0\0\1Bud1')
  _write(root, N_TRAIN + 'notes.txt', b'radiologist notes\n')
  _write(root, P_TRAIN + 'person1_bacteria_1.gif', b'GIF89a')
  _write(root, 'chest_xray/orphan/IM-0111-0001.jpeg', _encode())
  _write(root, 'README.md', b'# data\n')
  plan.ignored = ['README.md', '__MACOSX/',
                  'chest_xray/orphan/IM-0111-0001.jpeg',
                  N_TRAIN + '.DS_Store', N_TRAIN + 'notes.txt',
                  P_TRAIN + '.cache/', P_TRAIN + 'person1_bacteria_1.gif']
  assert len(plan.kept) == 30
  assert len({values[1] for values in plan.kept.values()}) == 17
  return plan


@pytest.fixture(scope='module')
def planted(tmp_path_factory) -> Plan:
  """The planted tree, shared read-only by the tests of this module."""
  return plant_tree(tmp_path_factory.mktemp('planted') / 'data')


# --- list_images --------------------------------------------------------------

def test_list_images_on_planted_tree(planted):
  candidates, ignored = walk.list_images(str(planted.root))
  listed = {c.rel_path: c.label for c in candidates}
  expected = {path: values[0] for path, values in planted.kept.items()}
  for dup in planted.duplicates:
    expected[dup['path']] = expected[dup['duplicate_of']]
  expected.update({
      N_TRAIN + 'IM-0108-0001.jpeg': 0,
      P_TRAIN + 'person9_bacteria_20.jpeg': 1,
      P_TRAIN + 'person10_virus_21.jpeg': 1,
      N_TRAIN + 'IM-0109-0001.jpeg': 0,
      N_TRAIN + 'IM-0110-0001.jpeg': 0,
      P_TRAIN + 'scan_17.jpeg': 1,
      N_TRAIN + 'person11_bacteria_22.jpeg': 0,
  })
  assert listed == expected
  assert len(candidates) == len(listed)  # no file listed twice
  assert sorted(ignored) == sorted(planted.ignored)
  for candidate in candidates:
    assert os.path.isfile(candidate.path)
    assert candidate.path == os.path.join(str(planted.root), candidate.rel_path)


def test_list_images_labels_come_from_nearest_ancestor(tmp_path):
  raw = _encode()
  _write(tmp_path, 'PNEUMONIA/x/normal/IM-0001-0001.jpeg', raw)
  _write(tmp_path, 'normal/y/Pneumonia/z/w/person1_virus_1.png', raw)
  _write(tmp_path, 'a/b/c/d/e/NORMAL/IM-0002-0001.jpeg', raw)
  candidates, ignored = walk.list_images(str(tmp_path))
  assert sorted((c.rel_path, c.label) for c in candidates) == [
      ('PNEUMONIA/x/normal/IM-0001-0001.jpeg', 0),
      ('a/b/c/d/e/NORMAL/IM-0002-0001.jpeg', 0),
      ('normal/y/Pneumonia/z/w/person1_virus_1.png', 1),
  ]
  assert ignored == []


def test_list_images_prunes_hidden_and_archive_folders(tmp_path):
  raw = _encode()
  _write(tmp_path, '__MACOSX/NORMAL/IM-0001-0001.jpeg', raw)
  _write(tmp_path, 'NORMAL/.thumbs/IM-0002-0001.jpeg', raw)
  _write(tmp_path, '.git/NORMAL/IM-0003-0001.jpeg', raw)
  _write(tmp_path, 'NORMAL/__pycache__/IM-0004-0001.jpeg', raw)
  _write(tmp_path, 'NORMAL/IM-0005-0001.jpeg', raw)
  candidates, ignored = walk.list_images(str(tmp_path))
  assert [c.rel_path for c in candidates] == ['NORMAL/IM-0005-0001.jpeg']
  assert sorted(ignored) == ['.git/', 'NORMAL/.thumbs/', 'NORMAL/__pycache__/',
                             '__MACOSX/']


def test_list_images_ignores_files_outside_label_folders(tmp_path):
  raw = _encode()
  _write(tmp_path, 'IM-0001-0001.jpeg', raw)
  _write(tmp_path, 'chest_xray/train/IM-0002-0001.jpeg', raw)
  _write(tmp_path, 'NORMAL2/IM-0003-0001.jpeg', raw)
  _write(tmp_path, 'NORMAL/IM-0004-0001.bmp', raw)
  _write(tmp_path, 'NORMAL/IM-0004-0001.jpeg.txt', raw)
  candidates, ignored = walk.list_images(str(tmp_path))
  assert candidates == []
  assert sorted(ignored) == ['IM-0001-0001.jpeg', 'NORMAL/IM-0004-0001.bmp',
                             'NORMAL/IM-0004-0001.jpeg.txt',
                             'NORMAL2/IM-0003-0001.jpeg',
                             'chest_xray/train/IM-0002-0001.jpeg']


def test_list_images_of_a_missing_folder_raises(tmp_path):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    walk.list_images(str(tmp_path / 'nope'))


# --- inspect_image ------------------------------------------------------------

def test_inspect_good_grayscale_jpeg(tmp_path):
  raw = _encode((72, 70, 1))
  candidate = _candidate(tmp_path, N_TRAIN + 'IM-0001-0001-0002.jpeg', 0, raw)
  inspected = inspection.inspect_image(candidate)
  pixels = tf.io.decode_jpeg(raw).numpy()
  assert inspected == inspection.Inspected(
      candidate, _sha(raw), None, 'IM-0001', 'normal', 72, 70, 1,
      file_format='jpeg', mean_intensity=round(float(pixels.mean()), 3))


def test_inspect_good_rgb_png(tmp_path):
  raw = _encode((67, 69, 3), 'png')
  candidate = _candidate(tmp_path, P_TRAIN + 'person5_virus_2.png', 1, raw)
  inspected = inspection.inspect_image(candidate)
  assert inspected.error is None
  assert (inspected.patient_id, inspected.subtype) == ('person5', 'virus')
  assert (inspected.height, inspected.width, inspected.channels) == (67, 69, 3)
  assert inspected.sha256 == _sha(raw)


def test_inspect_grayscale_png_and_rgb_jpeg(tmp_path):
  gray = inspection.inspect_image(_candidate(
      tmp_path, 'NORMAL/NORMAL2-IM-1427-0001.png', 0,
      _encode((65, 66, 1), 'png')))
  rgb = inspection.inspect_image(_candidate(
      tmp_path, 'PNEUMONIA/person1_bacteria_1.jpeg', 1, _encode((66, 65, 3))))
  assert (gray.error, gray.patient_id, gray.height, gray.width,
          gray.channels) == (None, 'NORMAL2-IM-1427', 65, 66, 1)
  assert (rgb.error, rgb.subtype, rgb.height, rgb.width, rgb.channels) == (
      None, 'bacteria', 66, 65, 3)


def test_inspect_truncated_jpeg(tmp_path):
  raw = _encode((92, 92, 1))
  candidate = _candidate(tmp_path, P_TRAIN + 'person1_virus_1.jpeg', 1,
                         raw[:len(raw) // 2])
  inspected = inspection.inspect_image(candidate)
  assert inspected.error.startswith('not a decodable image: ')
  assert 'function_node' not in inspected.error  # TF noise is cleaned up
  assert inspected.sha256 == _sha(raw[:len(raw) // 2])
  assert (inspected.patient_id, inspected.subtype) == ('person1', 'virus')
  assert (inspected.height, inspected.width, inspected.channels) == (0, 0, 0)


def test_inspect_empty_file(tmp_path):
  candidate = _candidate(tmp_path, N_TRAIN + 'IM-0001-0001.jpeg', 0, b'')
  inspected = inspection.inspect_image(candidate)
  assert inspected.error == 'empty file'
  assert inspected.sha256 == _sha(b'')


def test_inspect_text_file_named_jpeg(tmp_path):
  candidate = _candidate(tmp_path, N_TRAIN + 'IM-0001-0001.jpeg', 0,
                         b'hello, I am not a JPEG\n')
  inspected = inspection.inspect_image(candidate)
  assert inspected.error.startswith('not a decodable image: ')
  assert inspected.height == 0


def test_inspect_unknown_file_name(tmp_path):
  raw = _encode()
  candidate = _candidate(tmp_path, P_TRAIN + 'scan_17.jpeg', 1, raw)
  inspected = inspection.inspect_image(candidate)
  assert inspected.error is None
  assert 'scan_17.jpeg' in inspected.name_error
  assert 'matches no known patient form' in inspected.name_error
  assert inspected.sha256 == _sha(raw)
  assert inspected.patient_id == ''


def test_inspect_bacteria_name_in_normal_folder(tmp_path):
  candidate = _candidate(tmp_path, N_TRAIN + 'person3_bacteria_7.jpeg', 0,
                         _encode())
  inspected = inspection.inspect_image(candidate)
  assert inspected.name_error == (
      "name says 'bacteria' but folder says NORMAL")
  assert inspected.height == 0


def test_inspect_normal_name_in_pneumonia_folder(tmp_path):
  candidate = _candidate(tmp_path, P_TRAIN + 'IM-0001-0001.jpeg', 1, _encode())
  inspected = inspection.inspect_image(candidate)
  assert inspected.name_error == (
      "name says 'normal' but folder says PNEUMONIA")


def test_inspect_unreadable_file(tmp_path):
  candidate = walk.Candidate(str(tmp_path / 'NORMAL/IM-0001-0001.jpeg'),
                             'NORMAL/IM-0001-0001.jpeg', 0)
  inspected = inspection.inspect_image(candidate)
  assert inspected.sha256 == ''
  assert inspected.error.startswith('unreadable: ')


@pytest.mark.parametrize('rel_path', [
    'chest_xray/train/NORMAL/NORMAL2-IM-0736-0001.jpeg',  # 1-channel original
    'chest_xray/train/PNEUMONIA/person1693_bacteria_4485.jpeg',  # 3 channels
    'chest_xray/train/PNEUMONIA/person282_virus_579.jpeg',
])
def test_inspect_real_originals_match_manifest(rel_path):
  manifest = os.path.join(ORIGINALS, 'MANIFEST.csv')
  images.require_data(manifest)
  with open(manifest, newline='') as f:
    row = {r['path']: r for r in csv.DictReader(f)}[rel_path]
  label = constants.LABEL_NAMES.index(row['label'])
  inspected = inspection.inspect_image(walk.Candidate(
      os.path.join(ORIGINALS, rel_path), rel_path, label))
  assert inspected.error is None
  assert inspected.sha256 == row['sha256']
  assert inspected.patient_id == row['patient_id']
  assert (inspected.height, inspected.width, inspected.channels) == (
      int(row['height']), int(row['width']), int(row['channels']))


# --- resolve_duplicates -------------------------------------------------------

def _inspected(rel_path, label, sha='a' * 64, error=None, name_error=None):
  return inspection.Inspected(walk.Candidate('/data/' + rel_path, rel_path,
                                             label), sha, error,
                              'person1', 'bacteria', 4, 4, 1, name_error)


def _resolve(sha, items):
  """(kept rel_paths, duplicates, rejected) of one sha256 group."""
  kept, duplicates, rejected = [], [], []
  for out in dedup.resolve_duplicates((sha, iter(items))):
    if isinstance(out, beam.pvalue.TaggedOutput):
      {'duplicate': duplicates, 'rejected': rejected}[out.tag].append(
          out.value)
    else:
      kept.append(out.candidate.rel_path)
  return kept, duplicates, rejected


def test_resolve_duplicates_keeps_the_shallowest_copy():
  paths = ['chest_xray/chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg',
           'chest_xray/train/PNEUMONIA/person1_bacteria_2.jpeg',
           'chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg',
           'zz/PNEUMONIA/a/b/c/person1_bacteria_1.jpeg']
  for order in (paths, paths[::-1]):
    kept, duplicates, rejected = _resolve(
        'a' * 64, [_inspected(p, 1) for p in order])
    # Same depth: alphabetically first wins.
    assert kept == ['chest_xray/train/PNEUMONIA/person1_bacteria_1.jpeg']
    assert sorted(d['path'] for d in duplicates) == sorted(
        set(paths) - set(kept))
    assert {d['duplicate_of'] for d in duplicates} == set(kept)
    assert rejected == []


def test_resolve_duplicates_shallow_beats_alphabetical():
  kept, duplicates, _ = _resolve('a' * 64, [
      _inspected('a/b/PNEUMONIA/person1_bacteria_1.jpeg', 1),
      _inspected('z/PNEUMONIA/person1_bacteria_1.jpeg', 1)])
  assert kept == ['z/PNEUMONIA/person1_bacteria_1.jpeg']
  assert duplicates == [{'path': 'a/b/PNEUMONIA/person1_bacteria_1.jpeg',
                         'duplicate_of': 'z/PNEUMONIA/person1_bacteria_1.jpeg'}]


def test_resolve_duplicates_single_file_is_kept():
  kept, duplicates, rejected = _resolve(
      'b' * 64, [_inspected('NORMAL/IM-0001-0001.jpeg', 0)])
  assert (kept, duplicates, rejected) == (['NORMAL/IM-0001-0001.jpeg'], [], [])


def test_resolve_duplicates_rejects_both_labels():
  paths = ['NORMAL/IM-0001-0001.jpeg', 'PNEUMONIA/person1_bacteria_1.jpeg',
           'x/PNEUMONIA/person1_bacteria_1.jpeg']
  kept, duplicates, rejected = _resolve(
      'c' * 64, [_inspected(p, 0 if 'NORMAL' in p else 1) for p in paths])
  assert kept == [] and duplicates == []
  assert sorted(r['path'] for r in rejected) == sorted(paths)
  for r in rejected:
    assert 'both NORMAL and PNEUMONIA' in r['reason']
    for path in paths:
      assert path in r['reason']


def test_resolve_duplicates_rejects_undecodable_groups():
  error = 'not a decodable image: jpeg::Uncompress failed'
  paths = ['NORMAL/IM-0001-0001.jpeg', 'a/NORMAL/IM-0001-0001.jpeg']
  kept, duplicates, rejected = _resolve(
      'd' * 64, [_inspected(p, 0, error=error) for p in paths])
  assert kept == [] and duplicates == []
  assert sorted(rejected, key=lambda r: r['path']) == [
      {'path': p, 'reason': error} for p in sorted(paths)]


def test_a_refused_copy_does_not_reject_the_good_original():
  # A JPEG's bytes named .dcm are refused as DICOM; the .jpeg is kept.
  good, copy = 'NORMAL/IM-0001-0001.jpeg', 'NORMAL/IM-0001-0002.dcm'
  error = "not a DICOM file: no 'DICM' prefix at byte 128"
  kept, duplicates, rejected = _resolve('f' * 64, [
      _inspected(copy, 0, error=error), _inspected(good, 0)])
  assert (kept, duplicates) == ([good], [])
  assert rejected == [{'path': copy, 'reason': error}]


def test_resolve_duplicates_rejects_unreadable_files_one_by_one():
  kept, duplicates, rejected = _resolve('', [
      _inspected('NORMAL/IM-0001-0001.jpeg', 0, '', 'unreadable: a'),
      _inspected('PNEUMONIA/person1_virus_1.jpeg', 1, '', 'unreadable: b')])
  assert kept == [] and duplicates == []
  assert sorted(rejected, key=lambda r: r['path']) == [
      {'path': 'NORMAL/IM-0001-0001.jpeg', 'reason': 'unreadable: a'},
      {'path': 'PNEUMONIA/person1_virus_1.jpeg', 'reason': 'unreadable: b'}]


def test_badly_named_copy_does_not_reject_the_good_original():
  good = 'PNEUMONIA/person1_bacteria_1.jpeg'
  copy = 'PNEUMONIA/person1_bacteria_1 - Copy.jpeg'
  kept, _, rejected = _resolve('e' * 64, [
      _inspected(good, 1),
      _inspected(copy, 1, name_error=f'file name {copy!r} matches no known '
                 'patient form')])
  assert kept == [good]
  assert good not in [r['path'] for r in rejected]


def test_real_duplicate_pair_is_kept_once(tmp_path):
  # person1619_bacteria_4267/4268 are byte-identical in the real dataset.
  folder = os.path.join(ORIGINALS, 'chest_xray', 'train', 'PNEUMONIA')
  images.require_data(folder)
  names = ['person1619_bacteria_4267.jpeg', 'person1619_bacteria_4268.jpeg']
  for name in names:
    (tmp_path / 'PNEUMONIA').mkdir(exist_ok=True)
    shutil.copyfile(os.path.join(folder, name), tmp_path / 'PNEUMONIA' / name)
  candidates, _ = walk.list_images(str(tmp_path))
  inspected = [inspection.inspect_image(c) for c in candidates]
  assert len({i.sha256 for i in inspected}) == 1
  kept, duplicates, rejected = _resolve(inspected[0].sha256, inspected)
  assert kept == ['PNEUMONIA/person1619_bacteria_4267.jpeg']
  assert duplicates == [{'path': 'PNEUMONIA/person1619_bacteria_4268.jpeg',
                         'duplicate_of':
                             'PNEUMONIA/person1619_bacteria_4267.jpeg'}]
  assert rejected == []


# --- to_example, build_report, summarize --------------------------------------

def test_to_example_holds_metadata_and_attach_image_the_bytes(tmp_path):
  raw = _encode((66, 68, 3), 'png')
  inspected = inspection.inspect_image(
      _candidate(tmp_path, 'x/PNEUMONIA/person42_virus_7 (1).png', 1, raw))
  example = encoding.to_example(inspected)
  assert constants.IMAGE_KEY not in example.features.feature
  example = encoding.attach_image(example, str(tmp_path))
  assert set(example.features.feature) == {
      constants.IMAGE_KEY, constants.LABEL_KEY, constants.PATIENT_ID_KEY,
      constants.SUBTYPE_KEY, constants.SOURCE_PATH_KEY, constants.SHA256_KEY,
      constants.HEIGHT_KEY, constants.WIDTH_KEY, constants.CHANNELS_KEY,
      constants.FILE_FORMAT_KEY, constants.MEAN_INTENSITY_KEY}
  feature = example.features.feature
  assert feature[constants.FILE_FORMAT_KEY].bytes_list.value == [b'png']
  assert feature[constants.MEAN_INTENSITY_KEY].float_list.value[0] == (
      pytest.approx(tf.io.decode_png(raw).numpy().mean(), abs=1e-3))
  assert example.features.feature[constants.IMAGE_KEY].bytes_list.value == [
      raw]
  assert _example_row(example) == ('x/PNEUMONIA/person42_virus_7 (1).png', 1,
                                   'person42', 'virus', 66, 68, 3, _sha(raw))


def test_attach_image_refuses_a_file_changed_since_inspection(tmp_path):
  rel_path = 'PNEUMONIA/person42_virus_7.png'
  inspected = inspection.inspect_image(
      _candidate(tmp_path, rel_path, 1, _encode((66, 68, 3), 'png')))
  (tmp_path / rel_path).write_bytes(_encode((66, 68, 1), 'png'))
  with pytest.raises(encoding.ImageChangedError, match='person42_virus_7'):
    encoding.attach_image(encoding.to_example(inspected), str(tmp_path))


def test_build_report_and_summarize():
  keys = [('train', 'NORMAL', 'IM-0001'), ('train', 'PNEUMONIA', 'person1'),
          ('train', 'PNEUMONIA', 'person1'), ('eval', 'NORMAL', 'IM-0002'),
          ('test', 'PNEUMONIA', 'person3')]
  duplicates = [{'path': 'b', 'duplicate_of': 'a'},
                {'path': 'a2', 'duplicate_of': 'a'}]
  rejected = [{'path': 'r', 'reason': 'empty file'}]
  ignored = [f'junk/{i:03d}.txt' for i in range(60)][::-1]
  report = ingestion_report.build_report(keys, duplicates, rejected, ignored)
  assert report['counts'] == {
      'train': {'NORMAL': 1, 'PNEUMONIA': 2, 'total': 3},
      'eval': {'NORMAL': 1, 'PNEUMONIA': 0, 'total': 1},
      'test': {'NORMAL': 0, 'PNEUMONIA': 1, 'total': 1},
      'all': {'NORMAL': 2, 'PNEUMONIA': 3, 'total': 5},
  }
  assert report['patients'] == {'eval': 1, 'test': 1, 'train': 2}
  assert [d['path'] for d in report['duplicates']] == ['a2', 'b']
  assert report['rejected'] == rejected
  assert report['ignored']['count'] == 60
  assert report['ignored']['paths'] == sorted(ignored)[:50]
  json.dumps(report)  # the report is written as JSON
  assert ingestion_report.summarize(report) == (
      'Ingested 5 images: train 3 (1 NORMAL, 2 PNEUMONIA); '
      'eval 1 (1 NORMAL, 0 PNEUMONIA); test 1 (0 NORMAL, 1 PNEUMONIA); '
      '2 duplicates dropped, 1 files rejected, 60 entries ignored.')


def test_build_report_of_nothing():
  report = ingestion_report.build_report([], [], [], [])
  assert report['counts'] == {
      split: {'NORMAL': 0, 'PNEUMONIA': 0, 'total': 0}
      for split in ('train', 'eval', 'test', 'all')}
  assert report['patients'] == {}
  assert report['ignored'] == {'count': 0, 'paths': []}
  assert ingestion_report.summarize(report).startswith(
      'Ingested 0 images: train 0 ')


def test_report_path():
  assert ingestion_report.report_path('/out/Examples/7') == (
      '/out/Examples/7/ingestion_report.json')


def test_patient_split_config():
  config = component.patient_split_config()
  assert [(s.name, s.hash_buckets) for s in config.split_config.splits] == [
      ('train', 7), ('eval', 2), ('test', 1)]
  assert config.split_config.partition_feature_name == 'patient_id'


# --- the Beam graph, in process -----------------------------------------------

def _reasons_match(expected: Dict[str, str]):
  """Beam matcher: rejected paths are exactly expected's, reasons contain it."""

  def check(actual):
    actual = dict(actual)
    if sorted(actual) != sorted(expected):
      raise beam_util.BeamAssertException(
          f'rejected paths {sorted(actual)} != {sorted(expected)}')
    wrong = {p: actual[p] for p, needle in expected.items()
             if needle not in actual[p]}
    if wrong:
      raise beam_util.BeamAssertException(f'unexpected reasons: {wrong}')

  return check


def test_ingest_images_beam_graph(planted):
  with beam.Pipeline() as p:
    ingested = ingest.ingest_images(p, str(planted.root))
    with_images = ingested.examples | beam.Map(encoding.attach_image,
                                               str(planted.root))
    beam_util.assert_that(with_images | beam.Map(_example_row),
                          beam_util.equal_to(planted.rows()),
                          label='CheckExamples')
    beam_util.assert_that(ingested.duplicates,
                          beam_util.equal_to(planted.duplicates),
                          label='CheckDuplicates')
    beam_util.assert_that(
        ingested.rejected | beam.Map(lambda r: (r['path'], r['reason'])),
        _reasons_match(planted.rejected), label='CheckRejected')
  assert sorted(ingested.ignored) == sorted(planted.ignored)


# --- Executor.Do --------------------------------------------------------------

def _read_split(uri: str, split: str) -> List[tf.train.Example]:
  files = tf.io.gfile.glob(os.path.join(uri, f'Split-{split}', '*.gz'))
  assert files, f'no gzipped TFRecords in Split-{split}'
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return [tf.train.Example.FromString(r.numpy()) for r in dataset]


def test_executor_do(planted, tmp_path):
  examples = component.ingest_outside_pipeline(str(planted.root),
                                               str(tmp_path / 'Examples'))

  assert artifact_utils.decode_split_names(examples.split_names) == [
      'train', 'eval', 'test']
  rows = {split: [_example_row(e) for e in _read_split(examples.uri, split)]
          for split in ('train', 'eval', 'test')}
  # Every kept image exactly once, with the planted metadata.
  assert sorted(itertools.chain(*rows.values())) == planted.rows()
  # No patient in two splits (person1 is in Kaggle's train and test folders).
  split_of = collections.defaultdict(set)
  for split, split_rows in rows.items():
    for row in split_rows:
      split_of[row[2]].add(split)
  assert {p: s for p, s in split_of.items() if len(s) > 1} == {}
  assert len(split_of) == 17
  # This planted tree hashes patients into all three splits.
  assert all(rows.values()), {s: len(r) for s, r in rows.items()}

  with open(ingestion_report.report_path(examples.uri)) as f:
    report = json.load(f)
  for split, split_rows in rows.items():
    labels = collections.Counter(constants.LABEL_NAMES[r[1]]
                                 for r in split_rows)
    assert report['counts'][split] == {
        'NORMAL': labels['NORMAL'], 'PNEUMONIA': labels['PNEUMONIA'],
        'total': len(split_rows)}
    assert report['patients'][split] == len({r[2] for r in split_rows})
  assert report['counts']['all'] == {'NORMAL': 12, 'PNEUMONIA': 18,
                                     'total': 30}
  assert report['duplicates'] == sorted(planted.duplicates,
                                        key=lambda d: d['path'])
  assert [r['path'] for r in report['rejected']] == sorted(planted.rejected)
  for r in report['rejected']:
    assert planted.rejected[r['path']] in r['reason'], r
  assert report['ignored'] == {'count': len(planted.ignored),
                               'paths': sorted(planted.ignored)}

  summary = examples.get_string_custom_property('ingestion_summary')
  assert summary == ingestion_report.summarize(report)
  assert summary.startswith('Ingested 30 images: train ')
  assert summary.endswith('3 duplicates dropped, 7 files rejected, '
                          '7 entries ignored.')
