"""A pretrained ResNet50's head phase: backbone features computed once
(`cache_head_features`, the default) against recomputed every epoch.

The real train_architecture at 224 px on real kermany-224 images, every
epoch a head epoch (resnet_head_epochs_fraction 1), from a local weights
file of random values: a pretrained start as far as the Trainer knows (no
ImageNet download here; the backbone's cost does not depend on its values).
The two settings run side by side in this one process, each timed whole
(feature extraction included); the fixed cost and the per-epoch cost are
printed so the ratio can be read for any number of head epochs (the full
profile's default is 10 of 30).

  python -m bench.head_phase [--images 320] [--epochs 3]
"""
import argparse
import json
import os
import pathlib
import tempfile
import time

from absl import logging
import keras

from contract import options
from testing import images as shared_images
from trainer import data
from trainer import resnet_weights
from trainer import training

IMAGE_SIZE = 224


def _timed(cache: bool, epochs: int, splits, weights: str, root: str):
  settings = options.training_settings(
      'full', image_size=IMAGE_SIZE, epochs=epochs, patience=epochs,
      architectures=['resnet50'], resnet_weights=weights,
      resnet_head_epochs_fraction=1.0, cache_head_features=cache,
      log_every_seconds=1e9)
  run_dir = os.path.join(root, f'cache-{cache}')
  start = time.perf_counter()
  _, row = training.train_architecture('resnet50', *splits, settings, run_dir,
                                       resnet_weights.resolve(weights))
  seconds = time.perf_counter() - start
  with open(os.path.join(run_dir, 'resnet50', 'history.json')) as f:
    history = json.load(f)
  return seconds, [h['seconds'] for h in history], row


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--images', type=int, default=320,
                      help='train images (eval: a quarter as many)')
  parser.add_argument('--epochs', type=int, default=3)
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)
  half, quarter = args.images // 2, args.images // 8
  with tempfile.TemporaryDirectory() as root:
    weights = os.path.join(root, 'resnet50_notop.weights.h5')
    keras.utils.set_random_seed(1)
    keras.applications.ResNet50(
        include_top=False, weights=None, pooling='avg',
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)).save_weights(weights)
    splits = [data.load_split(shared_images.write_split(
        pathlib.Path(root) / name, name, images), IMAGE_SIZE,
                              name) for name, images in (
        ('train', shared_images.real_images(half, half)),
        ('eval', shared_images.real_images(quarter, quarter, offset=half)))]
    results = {cache: _timed(cache, args.epochs, splits, weights, root)
               for cache in (False, True)}
  print(f'ResNet50 head phase, {IMAGE_SIZE} px, {splits[0].size} train + '
        f'{splits[1].size} eval images, {args.epochs} head epochs, batch 32\n')
  print('| backbone features | s in all | s per epoch (fit) | fixed s | '
        'val AUC |\n|---|---|---|---|---|')
  for cache, (seconds, epochs, row) in results.items():
    print(f"| {'computed once' if cache else 'every epoch'} | {seconds:.1f} "
          f"| {sum(epochs) / len(epochs):.1f} | {seconds - sum(epochs):.1f} "
          f"| {row['val_auc']:.4f} |")
  slow, fast = results[False][0], results[True][0]
  print(f'\ncached / every epoch = {fast / slow:.2f} at {args.epochs} head '
        'epochs')


if __name__ == '__main__':
  main()
