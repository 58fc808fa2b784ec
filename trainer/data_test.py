"""Tests of trainer.data: the decoded-once cache and the tf.data pipelines.

Inputs are small gzipped TFRecord files of tf.Examples (`image_raw` +
`label`) written into pytest's tmp_path from real kermany-224 images, read in
place (testing/images.py writes them).
"""
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from contract import names as constants
from testing.images import real_images
from testing.images import write_split
from trainer import data
from trainer import preprocessing

SIZE = 32
N_NORMAL, N_PNEUMONIA = 8, 16
BATCH = 8


def _elements(dataset: tf.data.Dataset):
  """[(image ndarray, label int)] in dataset order."""
  return [(image, int(label)) for image, label in dataset.as_numpy_iterator()]


def _key(image: np.ndarray, label: int):
  return (label, image.tobytes())


def _cached_keys(split: data.Split):
  return {_key(image, label) for image, label in _elements(split.dataset)}


@pytest.fixture(scope='module')
def images():
  return real_images(N_NORMAL, N_PNEUMONIA)


@pytest.fixture
def split(images, tmp_path):
  files = write_split(tmp_path / 'train', 'train', images, shards=3)
  return data.load_split(files, SIZE, 'train')


def test_load_split_counts(split, images):
  assert split.size == len(images) == N_NORMAL + N_PNEUMONIA
  assert split.label_counts == {constants.NORMAL: N_NORMAL,
                                constants.PNEUMONIA: N_PNEUMONIA}


def test_elements_are_exactly_preprocess_image_of_the_same_bytes(split,
                                                                 images):
  spec = split.dataset.element_spec
  assert spec[0].shape == (SIZE, SIZE, 1) and spec[0].dtype == tf.float32
  assert spec[1].dtype == tf.int64
  got = sorted(_key(image, label) for image, label in _elements(split.dataset))
  expected = sorted(
      _key(preprocessing.preprocess_image(raw, SIZE).numpy(), label)
      for raw, label in images)
  assert got == expected


def test_decodes_once_the_cache_serves_later_passes(images, tmp_path):
  files = write_split(tmp_path / 'train', 'train', images)
  split = data.load_split(files, SIZE, 'train')
  for f in files:  # nothing left to read or decode
    pathlib.Path(f).rename(f + '.moved')
  first = _elements(split.dataset)
  second = _elements(split.dataset)
  assert len(first) == len(images)
  for (a, la), (b, lb) in zip(first, second):
    assert la == lb
    np.testing.assert_array_equal(a, b)
  expected = sorted(
      _key(preprocessing.preprocess_image(raw, SIZE).numpy(), label)
      for raw, label in images)
  assert sorted(_key(*e) for e in first) == expected
  # Evaluation batches and the training stream read the same cache.
  assert sum(1 for _ in data.evaluation_batches(split, BATCH)) == 3
  next(iter(data.training_stream(split, BATCH, seed=1)))
  # Whereas decoding again would have needed the files.
  with pytest.raises(tf.errors.NotFoundError):
    data.load_split(files, SIZE, 'train')


def test_the_order_does_not_depend_on_shards_or_record_order(images,
                                                            tmp_path):
  """The same images in other shards and another order (as two ingestions
  write them) load as the same sequence, so a seeded shuffle of it and the
  whole training run repeat; a split's order is its images' contents."""
  loaded = [data.load_split(write_split(tmp_path / name, 'train', ordered,
                                        shards=shards), SIZE, 'train')
            for name, ordered, shards in (('a', images, 2),
                                          ('b', images[::-1], 3))]
  first, second = (_elements(split.dataset) for split in loaded)
  assert [label for _, label in first] == [label for _, label in second]
  for (a, _), (b, _) in zip(first, second, strict=True):
    np.testing.assert_array_equal(a, b)
  # Not simply the order written: image order was reversed for 'b'.
  shuffled = [next(iter(data.training_stream(split, len(images), seed=3,
                                             augment_images=False)))
              for split in loaded]
  np.testing.assert_array_equal(shuffled[0][0], shuffled[1][0])


def test_steps_per_epoch(split):
  assert data.steps_per_epoch(split, 8) == 3
  assert data.steps_per_epoch(split, 5) == 5
  assert data.steps_per_epoch(split, 100) == 1


def test_class_weights_are_inverse_to_frequency(split):
  weights = data.class_weights(split)
  assert set(weights) == {constants.NORMAL, constants.PNEUMONIA}
  counts = split.label_counts
  # Each class carries the same total weight...
  assert weights[0] * counts[0] == pytest.approx(weights[1] * counts[1])
  # ...and the mean weight over the examples is 1.
  total = sum(weights[label] * n for label, n in counts.items())
  assert total / split.size == pytest.approx(1.0)
  assert weights == pytest.approx({0: 1.5, 1: 0.75})


def test_class_weights_skip_absent_classes():
  single = data.Split(None, 10, {constants.NORMAL: 0,
                                 constants.PNEUMONIA: 10})
  assert data.class_weights(single) == {constants.PNEUMONIA: 1.0}
  balanced = data.Split(None, 10, {constants.NORMAL: 5,
                                   constants.PNEUMONIA: 5})
  assert data.class_weights(balanced) == {0: 1.0, 1: 1.0}


def test_evaluation_batches_are_the_cached_images_unaugmented(split):
  cached = _elements(split.dataset)
  batches = list(data.evaluation_batches(split, 10).as_numpy_iterator())
  assert [len(labels) for _, labels in batches] == [10, 10, 4]
  images = np.concatenate([b[0] for b in batches])
  labels = np.concatenate([b[1] for b in batches])
  assert images.shape == (split.size, SIZE, SIZE, 1)
  np.testing.assert_array_equal(images, np.stack([c[0] for c in cached]))
  assert labels.tolist() == [c[1] for c in cached]
  # Twice the same, in the same order.
  again = np.concatenate(
      [b[0] for b in data.evaluation_batches(split, 10).as_numpy_iterator()])
  np.testing.assert_array_equal(again, images)


def _first_batches(split, seed, augment_images=True, count=3,
                   policy='anatomy'):
  stream = data.training_stream(split, BATCH, seed,
                                augment_images=augment_images,
                                augmentation_policy=policy)
  return list(stream.take(count).as_numpy_iterator())


def test_training_stream_without_augmentation_yields_cached_images(split):
  cached = _cached_keys(split)
  epochs = 2
  batches = _first_batches(split, seed=7, augment_images=False,
                           count=epochs * split.size // BATCH)
  keys = []
  for images, labels in batches:
    assert images.shape == (BATCH, SIZE, SIZE, 1)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    keys += [_key(image, int(label)) for image, label in zip(images, labels)]
  assert set(keys) <= cached
  # Each epoch is a permutation of the split: every image exactly once.
  per_epoch = split.size
  for epoch in range(epochs):
    assert sorted(keys[epoch * per_epoch:(epoch + 1) * per_epoch]) == sorted(
        cached)
  # ... shuffled: not in cache order, and reshuffled for the next epoch.
  cache_order = [_key(i, l) for i, l in _elements(split.dataset)]
  assert keys[:per_epoch] != cache_order
  assert keys[:per_epoch] != keys[per_epoch:]


def test_training_stream_augments_some_images(split):
  cached = _cached_keys(split)
  cached_images = {image for _, image in cached}
  batches = _first_batches(split, seed=7, count=3)
  changed = 0
  for images, labels in batches:
    assert images.shape == (BATCH, SIZE, SIZE, 1)
    assert images.dtype == np.float32
    assert set(labels.tolist()) <= {0, 1}
    assert images.min() >= 0.0 and images.max() <= 1.0
    changed += sum(image.tobytes() not in cached_images for image in images)
  assert changed > 0


def test_training_stream_applies_the_named_policy(split):
  anatomy = _first_batches(split, seed=7, count=2)
  acquisition = _first_batches(split, seed=7, count=2, policy='acquisition')
  for (a, la), (b, lb) in zip(anatomy, acquisition):
    np.testing.assert_array_equal(la, lb)  # same order, other transforms
    assert b.shape == a.shape and b.dtype == np.float32
    assert b.min() >= 0.0 and b.max() <= 1.0
  assert not all(np.array_equal(a, b)
                 for (a, _), (b, _) in zip(anatomy, acquisition))


def test_same_seed_same_batches_different_seed_different(split):
  first = _first_batches(split, seed=11)
  again = _first_batches(split, seed=11)
  other = _first_batches(split, seed=12)
  for (a, la), (b, lb) in zip(first, again):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
  assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, other))


def test_same_seed_same_order_without_augmentation(split):
  first = _first_batches(split, seed=11, augment_images=False)
  again = _first_batches(split, seed=11, augment_images=False)
  other = _first_batches(split, seed=12, augment_images=False)
  for (a, _), (b, _) in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, other))


def test_empty_split_raises_value_error(tmp_path):
  files = write_split(tmp_path / 'eval', 'eval', [], shards=1)
  with pytest.raises(ValueError, match='eval split is empty'):
    data.load_split(files, SIZE, 'eval')
