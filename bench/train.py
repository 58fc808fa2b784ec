"""Training input pipeline: ours vs its limit and vs a notebook-style loader.

baseline_cnn at 224 px, batch 32, on real 224-px images
(../shared/data/kermany-224). One fresh model per measurement, same seed;
each measures the second of two epochs (the first warms up tracing and,
for ours, fills nothing: the decode-once cache is filled before training).

(a) ours (cached decode + Albumentations in tf.data, in parallel) vs the
    same model fed in-memory tensors with no augmentation: the limit.
    Goal >= 0.9.
(b) our per-epoch time vs a notebook-style Python generator that reads and
    decodes every JPEG each epoch and applies Albumentations per image.
    Goal <= 0.5.

  python -m bench.train [--images 640] [--batch-size 32] [--originals]

--originals runs the same comparison on the full-resolution original sample
(../shared/data/kermany-original-sample, 240 files, ~2000 px), where a
notebook loader pays a large decode every epoch.
"""
import argparse
import os
import tempfile
import time

from absl import logging
import cv2
import keras
import numpy as np
import tensorflow as tf

from components.image_example_gen import naming
from contract import names as constants
from trainer import augment
from trainer import data
from trainer import models
from testing.support import require_shared_data

IMAGE_SIZE = 224
ARCHITECTURE = 'baseline_cnn'


class EpochTimer(keras.callbacks.Callback):

  def on_epoch_begin(self, epoch, logs=None):
    self.start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds = time.perf_counter() - self.start


def _model(steps: int) -> keras.Model:
  keras.utils.set_random_seed(0)
  model = models.build_model(ARCHITECTURE, IMAGE_SIZE, steps)
  model.compile(optimizer=keras.optimizers.Adam(1e-3),
                loss='binary_crossentropy',
                metrics=[keras.metrics.AUC(name='auc')])
  return model


def _second_epoch_seconds(fit_input, steps: int, **fit_kwargs) -> float:
  timer = EpochTimer()
  _model(steps).fit(fit_input, epochs=2, steps_per_epoch=steps, verbose=0,
                    callbacks=[timer], **fit_kwargs)
  return timer.seconds


def _pick(folder, count):
  """Image paths and labels, both classes in the dataset's proportion."""
  paths = []
  for label in constants.LABEL_NAMES:
    paths += [(str(p), constants.LABEL_NAMES.index(label)) for p in sorted(
        (folder / label).glob('*.jpeg'))]
  rng = np.random.default_rng(0)
  rng.shuffle(paths)
  return paths[:count]


def _write_tfrecords(items, path):
  with tf.io.TFRecordWriter(path, tf.io.TFRecordOptions(
      compression_type='GZIP')) as writer:
    for file_path, label in items:
      with open(file_path, 'rb') as f:
        raw = f.read()
      writer.write(tf.train.Example(features=tf.train.Features(feature={
          constants.IMAGE_KEY: tf.train.Feature(
              bytes_list=tf.train.BytesList(value=[raw])),
          constants.LABEL_KEY: tf.train.Feature(
              int64_list=tf.train.Int64List(value=[label])),
      })).SerializeToString())


def notebook_generator(items, batch_size: int, seed: int):
  """The usual notebook loader: decode each JPEG every epoch, augment each
  image in Python, one batch at a time, in the training thread."""
  pipelines = augment.build_pipelines()
  rng = np.random.default_rng(seed)
  while True:
    order = rng.permutation(len(items))
    for start in range(0, len(order) - batch_size + 1, batch_size):
      images, labels = [], []
      for i in order[start:start + batch_size]:
        path, label = items[i]
        image = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE),
                           interpolation=cv2.INTER_AREA)
        image = image.astype(np.float32)[..., None] / 255.0
        image = pipelines[label](image=image)['image']
        images.append(np.clip(image, 0.0, 1.0))
        labels.append(label)
      yield np.stack(images), np.array(labels, dtype=np.int64)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--images', type=int, default=640)
  parser.add_argument('--batch-size', type=int, default=32)
  parser.add_argument('--originals', action='store_true',
                      help='use the full-resolution original sample')
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  folder = (require_shared_data('kermany-original-sample', 'chest_xray',
                                'train') if args.originals else
            require_shared_data('kermany-224', 'chest_xray', 'train'))
  items = _pick(folder, args.images)
  assert all(naming.parse_file_name(p) for p, _ in items)
  steps = len(items) // args.batch_size
  print(f'{ARCHITECTURE} at {IMAGE_SIZE} px, batch {args.batch_size}, '
        f'{steps * args.batch_size} images per epoch from {folder}; '
        f'{os.cpu_count()} CPUs, TF {tf.__version__}; second of two epochs '
        'each')

  with tempfile.TemporaryDirectory() as tmp:
    records = os.path.join(tmp, 'train.tfrecord.gz')
    _write_tfrecords(items, records)
    start = time.perf_counter()
    split = data.load_split([records], IMAGE_SIZE, 'train')
    decode_once = time.perf_counter() - start

  ours = _second_epoch_seconds(
      data.training_stream(split, args.batch_size, seed=0), steps)
  images = np.stack([x for x, _ in split.dataset.as_numpy_iterator()])
  labels = np.array([y for _, y in split.dataset.as_numpy_iterator()])
  limit = _second_epoch_seconds(
      tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(
          len(labels), seed=0).repeat().batch(args.batch_size), steps)
  notebook = _second_epoch_seconds(
      notebook_generator(items, args.batch_size, seed=0), steps)

  per_epoch = steps * args.batch_size
  rows = [('model only, in-memory tensors (limit)', limit),
          ('ours: cached decode + parallel Albumentations', ours),
          ('notebook: decode + Albumentations per image, in a generator',
           notebook)]
  print(f'one-off decode of {split.size} images into the cache: '
        f'{decode_once:.1f} s')
  for label, seconds in rows:
    print(f'  {label:62s} {seconds:6.2f} s/epoch {per_epoch / seconds:6.1f} '
          'img/s')
  print(f'(a) ours / limit throughput: {limit / ours:.2f}  (goal >= 0.9)')
  print(f'(b) ours / notebook epoch time: {ours / notebook:.2f}  '
        '(goal <= 0.5)')


if __name__ == '__main__':
  main()
