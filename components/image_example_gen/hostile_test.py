"""Ingestion and the driver's fingerprint on a hostile data folder (issue 11).

One tree holds good images and every hostile entry, each built here: broken
symbolic links, a link loop, a FIFO, a link to /dev/zero, a sparse file over
the size cap, links leading outside the data root, decompression bombs
written from their headers, images below the minimum size and with an EXIF
orientation. The executor runs on it once; each test then checks that the
run completed, that the bad entry is named with its reason and that no good
image was lost. Images are a few KB; the run takes seconds.
"""
import json
import os
import pathlib
from typing import Dict, NamedTuple

import pytest
import tensorflow as tf
from tfx.types import artifact_utils

from components.image_example_gen import component
from components.image_example_gen import driver
from components.image_example_gen import ingestion_report
from components.image_example_gen import walk
from contract import layout
from contract import names as constants
from contract import options
from testing import hostile

# Anything that blocks (a FIFO opened, /dev/zero read) fails, not hangs.
pytestmark = pytest.mark.timeout(300)

_LIMITS = options.ImageLimits()


class Tree(NamedTuple):
  root: pathlib.Path
  outside: pathlib.Path
  kept: set  # source paths of the good images
  rejected: Dict[str, str]  # source path -> part of its reason
  followed: Dict[str, str]  # link path -> real path


def _write(path: pathlib.Path, raw: bytes) -> pathlib.Path:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(raw)
  return path


def build_tree(base: pathlib.Path) -> Tree:
  """The hostile tree under base/data, with its targets outside it."""
  root, outside = base / 'data', base / 'outside'
  normal, pneumonia = root / 'NORMAL', root / 'PNEUMONIA'
  kept, rejected, followed = set(), {}, {}
  good = [('NORMAL/IM-0001-0001.jpeg', hostile.jpeg(72, 70, seed=1)),
          ('NORMAL/IM-0002-0001.png', hostile.png(70, 66, 3, seed=2)),
          # Upright, said so explicitly: kept.
          ('NORMAL/IM-0003-0001.jpeg',
           hostile.with_exif_orientation(hostile.jpeg(80, 64, seed=3), 1)),
          ('PNEUMONIA/person1_bacteria_1.jpeg', hostile.jpeg(70, 90, 3, 4)),
          # Exactly the minimum side: kept.
          ('PNEUMONIA/person2_virus_2.jpeg',
           hostile.jpeg(_LIMITS.min_side, _LIMITS.min_side, seed=5))]
  for rel_path, raw in good:
    _write(root / rel_path, raw)
    kept.add(rel_path)

  # 1. Broken links: a candidate is rejected, a stray one is ignored.
  normal.joinpath('IM-9200-0001.jpeg').symlink_to('/nonexistent/x')
  rejected['NORMAL/IM-9200-0001.jpeg'] = 'broken symbolic link'
  root.joinpath('stray.jpeg').symlink_to(base / 'missing.jpeg')
  normal.joinpath('IM-9201-0001.jpeg').symlink_to('IM-9201-0001.jpeg')
  rejected['NORMAL/IM-9201-0001.jpeg'] = 'symbolic link loop'
  # 2. A folder loop: walked once, the second way in ignored.
  normal.joinpath('loop').symlink_to('.')
  # 3. Only regular files, under the size cap.
  os.mkfifo(pneumonia / 'person9300_virus_1.jpeg')
  rejected['PNEUMONIA/person9300_virus_1.jpeg'] = (
      'not a regular file: a FIFO')
  pneumonia.joinpath('person9301_virus_1.jpeg').symlink_to('/dev/zero')
  rejected['PNEUMONIA/person9301_virus_1.jpeg'] = (
      'not a regular file: a character device (a link to /dev/zero)')
  with open(normal / 'IM-9302-0001.jpeg', 'wb') as f:
    f.truncate(_LIMITS.max_file_bytes + 1)  # sparse: no disk, no time
  rejected['NORMAL/IM-9302-0001.jpeg'] = (
      f'too large: {_LIMITS.max_file_bytes + 1:,} bytes')
  # 4. Links leading outside the data root: followed and recorded.
  target = _write(outside / 'files' / 'x.jpeg', hostile.jpeg(66, 66, seed=6))
  normal.joinpath('IM-0100-0001.jpeg').symlink_to(target)
  kept.add('NORMAL/IM-0100-0001.jpeg')
  followed['NORMAL/IM-0100-0001.jpeg'] = str(target)
  folder = outside / 'more'
  _write(folder / 'person100_virus_1.jpeg', hostile.jpeg(68, 66, seed=7))
  pneumonia.joinpath('more').symlink_to(folder, target_is_directory=True)
  kept.add('PNEUMONIA/more/person100_virus_1.jpeg')
  followed['PNEUMONIA/more/'] = str(folder)
  # 5. Decompression bombs, from their headers only.
  _write(normal / 'IM-9500-0001.png', hostile.bomb_png(23000, 23000))
  rejected['NORMAL/IM-9500-0001.png'] = 'declares 23000 x 23000 = 529,000,000'
  _write(pneumonia / 'person9501_bacteria_1.jpeg',
         hostile.with_jpeg_size(hostile.jpeg(64, 64, seed=8), 8000, 8000))
  rejected['PNEUMONIA/person9501_bacteria_1.jpeg'] = 'too many pixels'
  # 6. Too small.
  _write(normal / 'IM-9600-0001.png', hostile.png(1, 1))
  rejected['NORMAL/IM-9600-0001.png'] = 'too small: 1 x 1 pixels'
  _write(pneumonia / 'person9601_virus_1.jpeg', hostile.jpeg(80, 63, seed=9))
  rejected['PNEUMONIA/person9601_virus_1.jpeg'] = 'too small: 63 x 80'
  # 7. EXIF orientation other than upright.
  _write(pneumonia / 'person9700_bacteria_1.jpeg',
         hostile.with_exif_orientation(hostile.jpeg(90, 70, seed=10), 6,
                                       big_endian=False))
  rejected['PNEUMONIA/person9700_bacteria_1.jpeg'] = 'EXIF orientation 6'
  return Tree(root, outside, kept, rejected, followed)


@pytest.fixture(scope='module')
def tree(tmp_path_factory) -> Tree:
  return build_tree(tmp_path_factory.mktemp('hostile'))


@pytest.fixture(scope='module')
def ingested(tree, tmp_path_factory):
  """(report, source paths per split) of one executor run on the tree."""
  out = tmp_path_factory.mktemp('hostile_out') / 'Examples'
  examples = component.ingest_outside_pipeline(str(tree.root), str(out))
  with open(ingestion_report.report_path(examples.uri)) as f:
    report = json.load(f)
  paths = []
  for split in artifact_utils.decode_split_names(examples.split_names):
    files = tf.io.gfile.glob(os.path.join(examples.uri, f'Split-{split}',
                                          '*.gz'))
    for record in tf.data.TFRecordDataset(files, compression_type='GZIP'):
      feature = tf.train.Example.FromString(record.numpy()).features.feature
      paths.append(
          feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode())
  return report, paths


def test_the_run_completes_and_keeps_every_good_image_once(tree, ingested):
  report, paths = ingested
  assert sorted(paths) == sorted(tree.kept)
  assert report['counts']['all']['total'] == len(tree.kept)


def test_every_bad_entry_is_rejected_with_its_reason(tree, ingested):
  report, _ = ingested
  reasons = {r['path']: r['reason'] for r in report['rejected']}
  assert sorted(reasons) == sorted(tree.rejected)
  for path, needle in tree.rejected.items():
    assert needle in reasons[path], (path, reasons[path])
  assert 'max_file_bytes' in reasons['NORMAL/IM-9302-0001.jpeg']
  assert 'max_pixels' in reasons['NORMAL/IM-9500-0001.png']


def test_the_loop_and_the_stray_link_are_ignored(ingested):
  report, _ = ingested
  assert {'NORMAL/loop/', 'stray.jpeg'} <= set(report['ignored']['paths'])


def test_links_leading_outside_are_recorded_with_their_real_path(tree,
                                                                 ingested):
  report, _ = ingested
  assert report[layout.FOLLOWED_LINKS] == [
      {'path': path, 'real_path': real}
      for path, real in sorted(tree.followed.items())]


def test_the_listing_sees_each_image_once(tree):
  listing = walk.list_tree(str(tree.root))
  paths = [c.rel_path for c in listing.candidates]
  assert len(paths) == len(set(paths))
  assert sorted(paths) == sorted(tree.kept | set(tree.rejected))
  assert 'NORMAL/loop/' in listing.ignored


def test_the_fingerprint_survives_and_counts_each_file_once(tree):
  first = driver.tree_fingerprint(str(tree.root))
  assert driver.tree_fingerprint(str(tree.root)) == first
  fields = dict(part.split(':', 1) for part in first.split(','))
  files = [e for e in walk.walk_tree(str(tree.root))
           if e.kind in (walk.CANDIDATE, walk.IGNORED_FILE)]
  assert int(fields['num_files']) == len(files) == len(
      {e.rel_path for e in files})


def test_a_broken_link_whose_target_appears_changes_the_fingerprint(
    tmp_path):
  root = tmp_path / 'data'
  _write(root / 'NORMAL' / 'IM-0001-0001.jpeg', b'x' * 10)
  (root / 'NORMAL' / 'IM-0002-0001.jpeg').symlink_to(tmp_path / 'later')
  before = driver.tree_fingerprint(str(root))
  (tmp_path / 'later').write_bytes(b'y' * 20)
  after = driver.tree_fingerprint(str(root))
  assert after != before
  assert after.split(',')[2] == 'total_bytes:30'
