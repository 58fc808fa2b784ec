"""bench/generalisation's data: kermany-224 ingested once by patient, its
internal test split, and the external cohort (scored only, never trained
or tuned on)."""
import hashlib
import os
import shutil
import time
from typing import List, Tuple

import numpy as np
import tensorflow as tf

from components.image_example_gen import component
from components.image_example_gen import walk
from contract import layout
from contract import names as constants
from contract import settings as config


def say(message: str) -> None:
  print(f'[bench {time.strftime("%H:%M:%S")}] {message}', flush=True)


def ingest_once(data_dir: str, cache: str) -> str:
  """kermany-224 ingested by patient into `cache` (once; reused after)."""
  if os.path.exists(os.path.join(cache, layout.INGESTION_REPORT_FILE)):
    say(f'reusing ingested examples in {cache}')
    return cache
  partial = cache + '.partial'
  shutil.rmtree(partial, ignore_errors=True)
  say(f'ingesting {data_dir} into {cache} (once)')
  start = time.perf_counter()
  component.ingest_outside_pipeline(data_dir, partial,
                                    config.direct_runner_args(1))
  os.rename(partial, cache)
  say(f'ingested in {time.perf_counter() - start:.0f} s')
  return cache


def split_files(examples: str, split: str) -> List[str]:
  files = sorted(tf.io.gfile.glob(os.path.join(examples, f'Split-{split}',
                                               '*')))
  if not files:
    raise SystemExit(f'no {split} files in {examples}')
  return files


def test_split(examples: str) -> Tuple[List[bytes], np.ndarray]:
  """(image bytes, labels) of the internal test split."""
  return split_images(examples, 'test')


def split_images(examples: str, split: str) -> Tuple[List[bytes], np.ndarray]:
  """(image bytes, labels) of one split."""
  raws, labels = [], []
  dataset = tf.data.TFRecordDataset(split_files(examples, split),
                                    compression_type='GZIP').batch(256)
  for batch in dataset:
    features = tf.io.parse_example(batch, {
        constants.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        constants.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)})
    raws += list(features[constants.IMAGE_KEY].numpy())
    labels += list(features[constants.LABEL_KEY].numpy())
  return raws, np.array(labels)


def external_cohort(folder: str) -> Tuple[List[bytes], np.ndarray, int]:
  """(image bytes, labels, files) of the external cohort, each distinct
  image once (byte-identical copies are one image, as ingestion counts)."""
  candidates, _ = walk.list_images(folder)
  seen, raws, labels = set(), [], []
  for candidate in sorted(candidates, key=lambda c: c.rel_path):
    with open(candidate.path, 'rb') as f:
      raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in seen:
      seen.add(digest)
      raws.append(raw)
      labels.append(candidate.label)
  if not raws:
    raise SystemExit(f'no images under {folder}')
  return raws, np.array(labels), len(candidates)
