"""Training one architecture: its phases, early stopping on validation AUC,
a checkpoint every epoch, the per-epoch history (JSON, CSV, TensorBoard),
the race against the architectures trained before it (trainer/race.py), and
the best epoch's weights at the end.

The layout of the Trainer's model_run_dir is declared in contract/layout.py.
"""
import os
import time
from typing import Any, Dict, List, Optional

from absl import logging
import keras

from contract import layout
from contract import options
from trainer import architectures
from trainer import batchnorm
from trainer import data
from trainer import head_features
from trainer import models
from trainer import progress
from trainer import race as race_lib
from trainer import records
from trainer import schedules


def compile_model(model: keras.Model, learning_rate,
                  label_smoothing: float) -> None:
  """learning_rate: a float or a keras LearningRateSchedule."""
  model.compile(
      optimizer=keras.optimizers.Adam(learning_rate),
      loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
      metrics=[keras.metrics.BinaryAccuracy(name='accuracy'),
               keras.metrics.AUC(name='auc')])


def _save_every_epoch(model: keras.Model, checkpoint_dir: str):
  """The full model's weights after every epoch, whichever model fits (the
  head alone in a cached head phase)."""
  def save(epoch, logs=None):
    model.save_weights(os.path.join(
        checkpoint_dir, f'epoch-{epoch + 1:03d}.weights.h5'))
  return keras.callbacks.LambdaCallback(on_epoch_end=save)


def _inputs(model, phase, train, evaluation, settings, head):
  """(the model fit trains, its train stream, its validation batches): the
  full model on augmented images, or in a head phase with
  `cache_head_features` the head on backbone features computed once."""
  batch_size = settings.batch_size
  seed = settings.seed + phase.number - 1
  if phase.trains == architectures.HEAD and settings.cache_head_features:
    features = head_features.extract(head.extractor, train, batch_size)
    eval_features = head_features.extract(head.extractor, evaluation,
                                          batch_size)
    return (head.model,
            head_features.training_stream(features, batch_size, seed),
            data.evaluation_batches(eval_features, batch_size))
  # A new stream per phase, seeded apart, so phase 2 does not replay the
  # augmentation draws of phase 1.
  return (model, data.training_stream(
      train, batch_size, seed,
      augmentation_policy=settings.augmentation_policy),
          data.evaluation_batches(evaluation, batch_size))


def train_architecture(name: str, train: data.Split, evaluation: data.Split,
                       settings: options.TrainingSettings, run_dir: str,
                       weights: Optional[str],
                       race: Optional[race_lib.Race] = None):
  """Trains one architecture; returns (Keras model, comparison row). With a
  `race`, it stops when behind the race's leader and then joins the race."""
  batch_size, seed = settings.batch_size, settings.seed
  steps = data.steps_per_epoch(train, batch_size)
  keras.utils.set_random_seed(seed)
  model = models.build_model(
      name, settings.image_size, steps, l2=settings.l2,
      dropout=settings.dropout, resnet_weights=weights,
      intensity_normalisation=settings.intensity_normalisation,
      border_crop=settings.border_crop)
  arch_dir = os.path.join(run_dir, name)
  checkpoint_dir = os.path.join(arch_dir, layout.CHECKPOINTS_DIR)
  os.makedirs(checkpoint_dir, exist_ok=True)
  class_weight = data.class_weights(train) if settings.class_weights else None
  logging.info('[%s] %d parameters, %d steps/epoch of %d, BatchNorm momentum '
               '%.3f, class weights %s', name, model.count_params(), steps,
               batch_size, models.bn_momentum_for(steps), class_weight)

  rows: List[Dict[str, Any]] = []
  start = time.perf_counter()
  epoch = 0
  pretrained = weights is not None
  phases = architectures.get(name).phases(settings, pretrained)
  racing = (race or race_lib.Race(0)).callback(name)
  head = (head_features.split(model) if any(
      p.trains == architectures.HEAD for p in phases) else None)
  bn_sample = (batchnorm.sample(train, settings.batchnorm_sample_images,
                                batch_size, seed)
               if settings.batchnorm_sample_images else None)
  for phase in phases:
    if models.prepare_phase(model, name, phase, pretrained):
      logging.info('[%s] phase %d (%s trains): %d epochs at learning rate %g, '
                   '%d trainable weights', name, phase.number, phase.trains,
                   phase.epochs, phase.learning_rate,
                   len(model.trainable_weights))
    learning_rate, schedule_callbacks = schedules.for_phase(
        settings, phase.learning_rate, phase.epochs, steps)
    logging.info('[%s] learning rate: %s from %g, warm-up %d steps', name,
                 settings.lr_schedule, phase.learning_rate,
                 schedules.warmup_steps(settings, phase.epochs, steps))
    fitted, train_batches, eval_batches = _inputs(
        model, phase, train, evaluation, settings, head)
    compile_model(fitted, learning_rate, settings.label_smoothing)
    # A head on a frozen backbone is not yet the model: only the last phase
    # races.
    raced = [racing] if phase is phases[-1] else []
    # First, so that validation, the checkpoint and every callback see the
    # recomputed statistics.
    statistics = ([batchnorm.RecomputeBeforeValidation(fitted, bn_sample,
                                                       steps)]
                  if bn_sample and batchnorm.updating_layers(fitted) else [])
    fitted.fit(
        train_batches, epochs=epoch + phase.epochs, initial_epoch=epoch,
        steps_per_epoch=steps, validation_data=eval_batches,
        class_weight=class_weight, verbose=0,
        callbacks=statistics + [
            keras.callbacks.EarlyStopping(
                monitor='val_auc', mode='max',
                patience=settings.patience,
                restore_best_weights=True),
            _save_every_epoch(model, checkpoint_dir),
            keras.callbacks.TensorBoard(os.path.join(arch_dir,
                                                     layout.TENSORBOARD_DIR)),
            records.HistoryRecorder(rows, arch_dir, phase.number,
                                    steps * batch_size),
            progress.ProgressLogger(name, settings.epochs, steps, batch_size,
                                    settings.log_every_seconds, epoch),
            # Last: the history records the rate the epoch ran at, before a
            # plateau reduction.
        ] + raced + schedule_callbacks)
    epoch = rows[-1]['epoch']
  seconds = time.perf_counter() - start
  if racing.stopped_at:
    stopped_by = layout.STOPPED_BY_RACE
  elif len(rows) < sum(phase.epochs for phase in phases):
    stopped_by = layout.STOPPED_BY_PATIENCE
  else:
    stopped_by = layout.STOPPED_BY_EPOCHS

  best = max(rows, key=lambda r: (records.finite(r.get('val_auc')),
                                  -r['epoch']))
  model.load_weights(os.path.join(
      checkpoint_dir, f"epoch-{best['epoch']:03d}.weights.h5"))
  row = {
      'architecture': name, 'selected': False,
      'val_auc': best.get('val_auc', float('nan')),
      'val_accuracy': best.get('val_accuracy', float('nan')),
      'val_loss': best.get('val_loss', float('nan')),
      'train_auc': best.get('auc', float('nan')),
      'best_epoch': best['epoch'], 'epochs_run': len(rows),
      'stopped_by': stopped_by,
      'race_leader': race.leader if racing.stopped_at else '',
      'parameters': int(model.count_params()), 'seconds': round(seconds, 1),
      'images_per_second': round(sum(r['images_per_second'] for r in rows) /
                                 len(rows), 2),
  }
  logging.info('[%s] best epoch %d of %d: val_auc %.4f (%.1f min; stopped '
               'by %s)', name, row['best_epoch'], row['epochs_run'],
               row['val_auc'], seconds / 60, stopped_by)
  if race is not None:
    race.finish(name, rows)
  return model, row
