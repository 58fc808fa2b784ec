"""TFDV statistics of the examples ingestion makes from real images, as
StatisticsGen computes them (with the curated schema), for drift tests."""
import pathlib

from components.image_example_gen import encoding
from components.image_example_gen import inspection
from components.image_example_gen import walk
from contract import names
from contract import settings as config


def schema():
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  return tfdv.load_schema_text(config.SCHEMA_PATH)


def example_statistics(root: pathlib.Path, out: pathlib.Path,
                       offset: int = 0, count: int = 20):
  """Statistics of `count` images of each class of the tree `root` (in
  name order, from `offset`), ingested as ImageExampleGen does; the
  examples are written to `out` (a new folder)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_data_validation as tfdv  # pylint: disable=g-import-not-at-top
  candidates, _ = walk.list_images(str(root))
  chosen = []
  for label in (names.NORMAL, names.PNEUMONIA):
    of_label = sorted((c for c in candidates if c.label == label),
                      key=lambda c: c.rel_path)
    chosen += of_label[offset:offset + count]
  path = out / 'examples.tfrecord'
  out.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for candidate in chosen:
      inspected = inspection.inspect_image(candidate)
      assert inspected.error is None, inspected
      writer.write(encoding.attach_image(encoding.to_example(inspected),
                                         str(root)).SerializeToString())
  return tfdv.generate_statistics_from_tfrecord(
      str(path), stats_options=tfdv.StatsOptions(schema=schema()))
