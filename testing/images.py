"""Real images from ../shared/data and tiny TFRecords built from them, for
tests and benchmarks."""
import csv
import os
import pathlib
import shutil
from typing import List, Sequence, Tuple

from components.image_example_gen import naming
from contract import names as constants
from testing import support

# The images are read in place, never copied (testing/support.py finds them).
DATA_ROOT = str(support.SHARED_DATA)


def require_data(path: str) -> None:
  """Skips (or, on CI, fails) when a real-data path under DATA_ROOT is
  missing."""
  support.require_shared_data(os.path.relpath(path, DATA_ROOT))


def original(channels: int) -> pathlib.Path:
  """The smallest real original with `channels` channels (by MANIFEST.csv)."""
  root = support.require_shared_data('kermany-original-sample')
  with open(root / 'MANIFEST.csv', newline='') as f:
    rows = [r for r in csv.DictReader(f) if int(r['channels']) == channels]
  assert rows, f'MANIFEST.csv lists no {channels}-channel original'
  row = min(rows, key=lambda r: int(r['bytes']))
  return root / row['path']


def real_images(n_normal: int, n_pneumonia: int,
                offset: int = 0) -> List[Tuple[bytes, int]]:
  """(JPEG bytes, label) of real kermany-224 train images, NORMAL first.

  `offset` skips that many files of each class (sorted by name), so two
  calls with different offsets give disjoint images.
  """
  root = support.require_shared_data('kermany-224') / 'chest_xray' / 'train'
  images = []
  for label, count in ((constants.NORMAL, n_normal),
                       (constants.PNEUMONIA, n_pneumonia)):
    folder = root / constants.LABEL_NAMES[label]
    paths = sorted(folder.glob('*.jpeg'))[offset:offset + count]
    assert len(paths) == count, f'too few images in {folder}'
    images += [(path.read_bytes(), label) for path in paths]
  return images


def serialize(raw: bytes, label: int) -> bytes:
  """A tf.Example as ingestion writes it (the features training reads)."""
  # Imported here only: the naming tests need no TensorFlow.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example(features=tf.train.Features(feature={
      constants.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[raw])),
      constants.LABEL_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[label])),
  })).SerializeToString()


def write_split(directory: pathlib.Path, name: str,
                images: Sequence[Tuple[bytes, int]],
                shards: int = 2) -> List[str]:
  """Writes `images` round-robin into `shards` gzipped TFRecord files."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory.mkdir(parents=True, exist_ok=True)
  options = tf.io.TFRecordOptions(compression_type='GZIP')
  files = [str(directory / f'{name}-{i:05d}-of-{shards:05d}.gz')
           for i in range(shards)]
  writers = [tf.io.TFRecordWriter(f, options) for f in files]
  for i, (raw, label) in enumerate(images):
    writers[i % shards].write(serialize(raw, label))
  for writer in writers:
    writer.close()
  return files


def copy_patients(kermany_224, data_dir, first=0, count=120):
  """One image each of patients first..first+count (in name order)."""
  for label in constants.LABEL_NAMES:
    patients = []
    for path in sorted((kermany_224 / 'chest_xray' / 'train' / label).glob(
        '*.jpeg')):
      patient = naming.parse_file_name(path.name).patient_id
      if patient in {p for p, _ in patients}:
        continue
      patients.append((patient, path))
      if len(patients) == first + count:
        break
    for _, path in patients[first:]:
      target = data_dir / label / path.name
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(path, target)
