"""The DirectRunner with 2 worker processes ingests exactly what 1 does."""
import glob
import os

import tensorflow as tf

from components.image_example_gen import component
from contract import settings as config
from contract import layout
from contract import names as constants


def _ingest(data_dir, out_dir, workers):
  component.ingest_outside_pipeline(str(data_dir), str(out_dir),
                                    config.direct_runner_args(
                                        workers, 'multi_processing'))
  result = {}
  for split in constants.SPLIT_NAMES:
    files = glob.glob(os.path.join(out_dir, f'Split-{split}', '*'))
    records = tf.data.TFRecordDataset(files, compression_type='GZIP')
    result[split] = sorted(r.numpy() for r in records)
  with open(os.path.join(out_dir, layout.INGESTION_REPORT_FILE)) as f:
    return result, f.read()


def test_two_worker_processes_match_one(original_sample, tmp_path):
  one, report_one = _ingest(original_sample, tmp_path / 'one', workers=1)
  two, report_two = _ingest(original_sample, tmp_path / 'two', workers=2)
  assert sum(len(v) for v in one.values()) == 239  # one duplicate pair
  for split in constants.SPLIT_NAMES:
    assert one[split], split
    # Byte-identical serialized examples, in the same split.
    assert one[split] == two[split], split
  assert report_one == report_two
