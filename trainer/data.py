"""tf.data input pipelines of the Trainer.

Each split is decoded and resized once per run (`load_split` holds it in
memory, in an order that does not depend on ingestion's sharding, before
training starts) and reused by every architecture and
every epoch. Only the train split is shuffled and augmented (Albumentations,
class-conditional, in parallel, seeded by element position so runs repeat).

Why a cache rather than a TFX Transform: the decoded size depends on
`--image-size`, a training option; a Transform would add a Beam stage that
re-materialises the dataset on disk (~1 GB of float32 per 5,000 images at
224 px) for every size tried, and its graph would still have to decode JPEG
at serving time. The cache costs one decode pass per run (2.1 s for the
4,675 train+eval images of kermany-224 here) and RAM (~0.2 MB per 224-px
image).
"""
import math
import time
from typing import Dict, List, NamedTuple

from absl import logging
import numpy as np
import tensorflow as tf

from contract import names as constants
from contract import options
from trainer import augment
from trainer import preprocessing

AUTOTUNE = tf.data.AUTOTUNE


class Split(NamedTuple):
  dataset: tf.data.Dataset  # (image [S,S,1] float32, label int64), cached
  size: int
  label_counts: Dict[int, int]


def content_key(raw: tf.Tensor) -> tf.Tensor:
  """A fingerprint of an image's bytes: the order of a split (below)."""
  return tf.strings.reduce_join(tf.strings.as_string(
      tf.cast(tf.fingerprint(raw[tf.newaxis])[0], tf.int32), width=3))


def load_split(files: List[str], image_size: int, name: str) -> Split:
  """Decodes a split of gzipped tf.Example TFRecords once, into memory, in
  the order of the images' contents (a fingerprint of their bytes).

  Not in file order: ingestion's multi-threaded Beam writers put a record in
  either shard from one run to the next (two ingestions of kermany-224 here
  gave 1,811/1,831 and 1,832/1,810 train records), and a seeded shuffle of a
  different order is a different training run.
  """
  start = time.perf_counter()
  decoded = (
      tf.data.TFRecordDataset(files, compression_type='GZIP',
                              num_parallel_reads=AUTOTUNE)
      .batch(64)
      .map(preprocessing.parse_examples, num_parallel_calls=AUTOTUNE)
      .unbatch()
      .map(lambda raw, label: (preprocessing.preprocess_image(raw, image_size),
                               label, content_key(raw)),
           num_parallel_calls=AUTOTUNE))
  items = sorted(decoded.as_numpy_iterator(), key=lambda item: item[2])
  if not items:
    raise ValueError(f'the {name} split is empty ({len(files)} files); '
                     'ingest more patients')
  labels = np.array([label for _, label, _ in items], dtype=np.int64)
  images = np.stack([image for image, _, _ in items])
  del items
  dataset = tf.data.Dataset.from_tensor_slices((images, labels))
  counts = {label: int((labels == label).sum())
            for label in range(len(constants.LABEL_NAMES))}
  logging.info('Decoded the %s split once: %d images (%s) at %d px in %.1f s.',
               name, labels.size, ', '.join(
                   f'{counts[i]} {n}' for i, n in
                   enumerate(constants.LABEL_NAMES)), image_size,
               time.perf_counter() - start)
  return Split(dataset, int(labels.size), counts)


def permute_labels(split: Split, seed: int) -> Split:
  """The same images with their labels randomly permuted (class counts kept).

  A negative control: a model trained on it must not pass evaluation.
  """
  labels = np.array([label for _, label in split.dataset.as_numpy_iterator()])
  permuted = np.random.default_rng(seed).permutation(labels)
  dataset = tf.data.Dataset.zip((
      split.dataset.map(lambda image, label: image),
      tf.data.Dataset.from_tensor_slices(permuted))).cache()
  logging.warning('Training labels are PERMUTED (shuffle_labels=True): this '
                  'model is a negative control and must not be blessed.')
  return Split(dataset, split.size, split.label_counts)


def steps_per_epoch(split: Split, batch_size: int) -> int:
  return max(1, math.ceil(split.size / batch_size))


def class_weights(split: Split) -> Dict[int, float]:
  """Weights inversely proportional to class frequency (mean weight 1)."""
  present = {label: n for label, n in split.label_counts.items() if n}
  return {label: split.size / (len(present) * n)
          for label, n in present.items()}


def training_stream(split: Split, batch_size: int, seed: int,
                    augment_images: bool = True,
                    augmentation_policy: str = (
                        options.TrainingSettings.augmentation_policy)
                    ) -> tf.data.Dataset:
  """Endless shuffled, augmented batches of the train split
  (`augmentation_policy`: a name of trainer/augment_policies.py)."""
  dataset = (split.dataset
             .shuffle(split.size, seed=seed, reshuffle_each_iteration=True)
             .repeat()
             .enumerate())
  if augment_images:
    augment_fn = augment.make_augment_fn(
        seed, augment.policies_for(augmentation_policy))
    dataset = dataset.map(
        lambda index, item: (augment_fn(item[0], item[1], index), item[1]),
        num_parallel_calls=AUTOTUNE, deterministic=True)
  else:
    dataset = dataset.map(lambda index, item: item)
  return dataset.batch(batch_size).prefetch(AUTOTUNE)


def evaluation_batches(split: Split, batch_size: int) -> tf.data.Dataset:
  """The split as it is (no augmentation), batched."""
  return split.dataset.batch(batch_size).prefetch(AUTOTUNE)
