"""Tests of ImageTreeDriver: the fingerprint covers the whole image tree."""
import os
import pathlib
from unittest import mock

import pytest
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from components.image_example_gen import driver

SPLITS = [example_gen_pb2.Input.Split(name='images', pattern='*')]


def _write(root: pathlib.Path, rel_path: str, data: bytes) -> pathlib.Path:
  path = root / rel_path
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(data)
  return path


@pytest.fixture
def tree(tmp_path) -> pathlib.Path:
  root = tmp_path / 'data'
  _write(root, 'chest_xray/train/NORMAL/IM-0001-0001.jpeg', b'n' * 10)
  _write(root, 'chest_xray/train/PNEUMONIA/person1_virus_1.jpeg', b'p' * 20)
  _write(root, 'chest_xray/test/PNEUMONIA/person2_bacteria_2.jpeg', b'q' * 30)
  return root


def _fields(fingerprint: str) -> dict:
  """{'tree': ..., 'num_files': ..., 'total_bytes': ..., 'sha256': ...}."""
  return dict(part.split(':', 1) for part in fingerprint.split(','))


def test_fingerprint_is_stable_and_describes_the_tree(tree):
  first = driver.tree_fingerprint(str(tree))
  assert driver.tree_fingerprint(str(tree)) == first
  fields = _fields(first)
  assert fields['tree'] == str(tree)
  assert fields['num_files'] == '3'
  assert fields['total_bytes'] == '60'
  assert len(fields['sha256']) == 64


def test_fingerprint_changes_when_a_file_is_added_deep(tree):
  before = driver.tree_fingerprint(str(tree))
  _write(tree, 'a/b/c/NORMAL/IM-0002-0001.jpeg', b'x')  # 4 folders deep
  after = driver.tree_fingerprint(str(tree))
  assert after != before
  assert _fields(after)['num_files'] == '4'


def test_fingerprint_changes_when_a_file_is_removed(tree):
  before = driver.tree_fingerprint(str(tree))
  (tree / 'chest_xray/test/PNEUMONIA/person2_bacteria_2.jpeg').unlink()
  after = driver.tree_fingerprint(str(tree))
  assert after != before
  assert _fields(after)['num_files'] == '2'


def test_fingerprint_changes_when_a_file_is_renamed(tree):
  before = driver.tree_fingerprint(str(tree))
  folder = tree / 'chest_xray/train/NORMAL'
  os.rename(folder / 'IM-0001-0001.jpeg', folder / 'IM-0001-0002.jpeg')
  after = driver.tree_fingerprint(str(tree))
  assert after != before
  # Same count and bytes: only the names tell them apart.
  assert _fields(after)['num_files'] == _fields(before)['num_files']
  assert _fields(after)['total_bytes'] == _fields(before)['total_bytes']


def test_fingerprint_changes_when_a_folder_is_renamed(tree):
  before = driver.tree_fingerprint(str(tree))
  os.rename(tree / 'chest_xray/test', tree / 'chest_xray/val')
  assert driver.tree_fingerprint(str(tree)) != before


def test_fingerprint_changes_when_a_file_is_rewritten_with_another_size(tree):
  path = tree / 'chest_xray/train/PNEUMONIA/person1_virus_1.jpeg'
  stat = path.stat()
  before = driver.tree_fingerprint(str(tree))
  path.write_bytes(b'p' * 21)
  # Even with the old modification time put back, the size gives it away.
  os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
  after = driver.tree_fingerprint(str(tree))
  assert after != before
  assert _fields(after)['total_bytes'] == '61'


def test_fingerprint_changes_when_mtime_moves_by_seconds(tree):
  path = tree / 'chest_xray/train/NORMAL/IM-0001-0001.jpeg'
  os.utime(path, (1_600_000_000, 1_600_000_000))
  before = driver.tree_fingerprint(str(tree))
  os.utime(path, (1_600_000_005, 1_600_000_005))
  assert driver.tree_fingerprint(str(tree)) != before


def test_sub_second_same_size_rewrite_changes_fingerprint(tree):
  path = tree / 'chest_xray/train/NORMAL/IM-0001-0001.jpeg'
  os.utime(path, ns=(1_600_000_000_100_000_000, 1_600_000_000_100_000_000))
  before = driver.tree_fingerprint(str(tree))
  path.write_bytes(b'N' * 10)  # new content, same size
  os.utime(path, ns=(1_600_000_000_900_000_000, 1_600_000_000_900_000_000))
  assert driver.tree_fingerprint(str(tree)) != before


@pytest.mark.parametrize('rel_path', [
    '__MACOSX/chest_xray/train/NORMAL/._IM-0001-0001.jpeg',
    'chest_xray/__MACOSX/IM-0003-0001.jpeg',
    '.hidden/IM-0003-0001.jpeg',
    'chest_xray/train/PNEUMONIA/.thumbs/person1_virus_1.jpeg',
    'chest_xray/train/.git/objects/ab/cdef',
])
def test_fingerprint_ignores_pruned_folders(tree, rel_path):
  before = driver.tree_fingerprint(str(tree))
  _write(tree, rel_path, b'junk' * 100)
  assert driver.tree_fingerprint(str(tree)) == before


def test_fingerprint_is_independent_of_creation_order(tmp_path):
  a, b = tmp_path / 'a', tmp_path / 'b'
  files = {'NORMAL/IM-0001-0001.jpeg': b'1', 'PNEUMONIA/x/y.jpeg': b'22',
           'z.txt': b'333'}
  for root, order in ((a, sorted(files)), (b, sorted(files, reverse=True))):
    for rel_path in order:
      path = _write(root, rel_path, files[rel_path])
      os.utime(path, (1_600_000_000, 1_600_000_000))
  assert (_fields(driver.tree_fingerprint(str(a)))['sha256'] ==
          _fields(driver.tree_fingerprint(str(b)))['sha256'])


def test_input_processor_fingerprint_is_the_tree_fingerprint(tree):
  image_driver = object.__new__(driver.ImageTreeDriver)
  processor = image_driver.get_input_processor(
      splits=SPLITS, range_config=None, input_base_uri=str(tree))
  # pylint: disable-next=protected-access
  assert isinstance(processor, driver._TreeInputProcessor)
  expected = driver.tree_fingerprint(str(tree))
  assert processor.get_input_fingerprint(0, None) == expected
  # Works without resolve_span_and_version, and sees later changes.
  _write(tree, 'a/b/c/d/NORMAL/IM-0009-0001.jpeg', b'new')
  assert processor.get_input_fingerprint(0, None) != expected
  assert processor.get_input_fingerprint(0, None) == driver.tree_fingerprint(
      str(tree))


def test_resolve_exec_properties_records_the_tree_fingerprint(tree):
  image_driver = driver.ImageTreeDriver(mock.MagicMock())
  input_config = example_gen_pb2.Input(splits=SPLITS)
  exec_properties = {
      'input_base': str(tree),
      'input_config': proto_utils.proto_to_json(input_config),
  }
  resolved = image_driver.resolve_exec_properties(exec_properties, None, None)
  assert resolved['input_fingerprint'] == driver.tree_fingerprint(str(tree))
  assert resolved['span'] == 0
  assert resolved['version'] is None
  resolved_config = proto_utils.json_to_proto(resolved['input_config'],
                                              example_gen_pb2.Input())
  assert resolved_config == input_config


def test_resolve_exec_properties_sees_a_deep_new_image(tree):
  image_driver = object.__new__(driver.ImageTreeDriver)

  def fingerprint():
    exec_properties = {
        'input_base': str(tree),
        'input_config': proto_utils.proto_to_json(
            example_gen_pb2.Input(splits=SPLITS)),
    }
    return image_driver.resolve_exec_properties(
        exec_properties, None, None)['input_fingerprint']

  before = fingerprint()
  _write(tree, 'chest_xray/train/PNEUMONIA/batch2/person9_virus_1.jpeg', b'z')
  assert fingerprint() != before
