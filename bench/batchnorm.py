"""Why validation AUC swings between epochs: the same weights scored with
Keras' moving-average BatchNorm statistics and with statistics recomputed
from training images (trainer/batchnorm.py), side by side after every epoch.

A benchmark, not a test. One architecture trains on kermany-224's train
split (ingested by patient once, as bench/generalisation does) with the
moving averages, as before the setting `batchnorm_sample_images`. After each
epoch the eval split is scored (exact AUC, not Keras' 200-bin estimate)

  * as validation sees it today: the moving averages;
  * with every BatchNorm layer's statistics recomputed from N unaugmented
    train images under the current weights (then put back, so training is
    not changed by being measured);
  * in training mode (each eval batch normalised by its own statistics).

  python -m bench.batchnorm [--image-size 224] [--epochs 5] [--images 512]
"""
import argparse
import time

import keras
import numpy as np
from sklearn import metrics

from bench import generalisation_data as bench_data
from bench.generalisation_data import say
from contract import options
from testing.support import SHARED_DATA
from trainer import batchnorm
from trainer import data
from trainer import models
from trainer import run
from trainer import training


class _Compare(keras.callbacks.Callback):

  def __init__(self, model, evaluation: data.Split, sample, batch_size):
    super().__init__()
    self._net, self._sample, self._batch = model, sample, batch_size
    pairs = list(evaluation.dataset.as_numpy_iterator())
    self._images = np.stack([image for image, _ in pairs])
    self._labels = np.array([label for _, label in pairs])
    self.rows = []

  def _auc(self, training_mode=False) -> float:
    if training_mode:
      scores = np.concatenate([
          self._net(self._images[i:i + self._batch], training=True).numpy()
          for i in range(0, len(self._images), self._batch)])
    else:
      scores = self._net.predict(self._images, batch_size=64, verbose=0)
    return metrics.roc_auc_score(self._labels, scores[:, 0])

  def on_epoch_end(self, epoch, logs=None):
    layers = batchnorm.updating_layers(self._net)
    kept = [(l.moving_mean.numpy(), l.moving_variance.numpy())
            for l in layers]
    moving = self._auc()
    start = time.perf_counter()
    batchnorm.recompute(self._net, self._sample)
    seconds = time.perf_counter() - start
    recomputed = self._auc()
    for layer, (mean, variance) in zip(layers, kept):
      layer.moving_mean.assign(mean)
      layer.moving_variance.assign(variance)
    own = self._auc(training_mode=True)
    self.rows.append((epoch + 1, logs['val_auc'], moving, recomputed, own,
                      seconds))
    say(f'epoch {epoch + 1}: exact val AUC moving averages {moving:.4f}, '
        f'recomputed {recomputed:.4f}, training mode {own:.4f} '
        f'(recomputing took {seconds:.1f} s)')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--architecture', default='improved_cnn',
                      choices=options.ARCHITECTURES)
  parser.add_argument('--image-size', type=int, default=224)
  parser.add_argument('--epochs', type=int, default=5)
  parser.add_argument('--images', type=int, default=512,
                      help='train images the statistics are recomputed from')
  parser.add_argument('--seed', type=int, default=42)
  parser.add_argument('--data-dir', default=str(SHARED_DATA / 'kermany-224'))
  parser.add_argument('--output-dir', default='output/bench/generalisation')
  args = parser.parse_args(argv)
  examples = bench_data.ingest_once(args.data_dir, f'{args.output_dir}/'
                                    'examples-kermany-224')
  train, evaluation = (data.load_split(bench_data.split_files(examples, s),
                                       args.image_size, s)
                       for s in ('train', 'eval'))
  settings = options.training_settings('full', image_size=args.image_size)
  steps = data.steps_per_epoch(train, settings.batch_size)
  keras.utils.set_random_seed(args.seed)
  model = models.build_model(args.architecture, args.image_size, steps,
                             resnet_weights=None)
  training.compile_model(model, settings.learning_rate, 0.0)
  sample = batchnorm.sample(train, args.images, settings.batch_size,
                            args.seed)
  compare = _Compare(model, evaluation, sample, settings.batch_size)
  with run.deterministic_ops(True):
    model.fit(data.training_stream(train, settings.batch_size, args.seed),
              epochs=args.epochs, steps_per_epoch=steps,
              validation_data=data.evaluation_batches(evaluation,
                                                      settings.batch_size),
              class_weight=data.class_weights(train), verbose=0,
              callbacks=[compare])
  print(f'\n{args.architecture}, {args.image_size} px, constant learning rate '
        f'{settings.learning_rate:g}, seed {args.seed}; eval split '
        f'{evaluation.size} images; statistics recomputed from '
        f'{len(sample) * settings.batch_size} train images\n')
  print('| epoch | Keras val AUC (200 bins) | exact, moving averages | exact, '
        'recomputed | exact, training mode | recompute s |')
  print('|---|---|---|---|---|---|')
  for row in compare.rows:
    print('| {} | {:.4f} | {:.4f} | {:.4f} | {:.4f} | {:.1f} |'.format(*row))


if __name__ == '__main__':
  main()
