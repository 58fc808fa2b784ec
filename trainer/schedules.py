"""How the learning rate moves within a training phase (`lr_schedule`).

* `constant`: the phase's learning rate at every step (the recipe before
  issue 10).
* `cosine`: linear warm-up over `warmup_epochs`, then cosine decay, step by
  step, to `min_learning_rate_fraction` of the phase's rate at its last step.
* `plateau`: the same warm-up, then the rate is multiplied by
  `plateau_factor` whenever val AUC has not improved for `plateau_patience`
  epochs (Keras' ReduceLROnPlateau), never below the same floor.

Each phase (ResNet50's fine-tuning phase too) starts its own schedule from its
own learning rate. `for_phase` returns what `optimizer=` takes and the extra
callbacks the schedule needs.
"""
import math
from typing import List, Tuple, Union

import keras

from contract import options


def warmup_steps(settings: options.TrainingSettings, epochs: int,
                 steps_per_epoch: int) -> int:
  """Warm-up steps of a phase: `warmup_epochs`, at most half the phase."""
  if settings.lr_schedule == 'constant':
    return 0
  total = epochs * steps_per_epoch
  return int(min(round(settings.warmup_epochs * steps_per_epoch), total // 2))


@keras.saving.register_keras_serializable(package='pneumonia')
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
  """peak * (step + 1) / warmup for the first `warmup` steps, then a cosine
  from `peak` to `peak * floor` at step `total - 1`."""

  def __init__(self, peak: float, warmup: int, total: int, floor: float):
    self.peak, self.warmup, self.total = float(peak), int(warmup), int(total)
    self.floor = float(floor)

  def __call__(self, step):
    step = keras.ops.cast(step, 'float32')
    warm = self.peak * (step + 1.0) / max(self.warmup, 1)
    span = max(self.total - 1 - self.warmup, 1)
    done = keras.ops.clip((step - self.warmup) / span, 0.0, 1.0)
    cosine = self.peak * (self.floor + (1.0 - self.floor) * 0.5 *
                          (1.0 + keras.ops.cos(math.pi * done)))
    return keras.ops.where(step < self.warmup, warm, cosine)

  def get_config(self):
    return {'peak': self.peak, 'warmup': self.warmup, 'total': self.total,
            'floor': self.floor}


class LinearWarmup(keras.callbacks.Callback):
  """Sets the optimizer's rate to peak * (step + 1) / steps for the first
  `steps` steps of the fit, then to `peak` (plateau's warm-up)."""

  def __init__(self, peak: float, steps: int):
    super().__init__()
    self._peak, self._steps, self._step = float(peak), int(steps), 0

  def on_train_batch_begin(self, batch, logs=None):
    if self._step <= self._steps:
      rate = self._peak * min(self._step + 1, self._steps) / max(
          self._steps, 1)
      self.model.optimizer.learning_rate = rate
    self._step += 1


def for_phase(settings: options.TrainingSettings, learning_rate: float,
              epochs: int, steps_per_epoch: int
              ) -> Tuple[Union[float, keras.optimizers.schedules
                               .LearningRateSchedule],
                         List[keras.callbacks.Callback]]:
  """(the optimizer's learning_rate, extra callbacks) of one phase."""
  schedule = settings.lr_schedule
  if schedule not in options.LR_SCHEDULES:
    raise ValueError(f'unknown lr_schedule {schedule!r}')
  if schedule == 'constant':
    return learning_rate, []
  warmup = warmup_steps(settings, epochs, steps_per_epoch)
  floor = settings.min_learning_rate_fraction
  if schedule == 'cosine':
    return WarmupCosine(learning_rate, warmup, epochs * steps_per_epoch,
                        floor), []
  callbacks: List[keras.callbacks.Callback] = []
  if warmup:
    callbacks.append(LinearWarmup(learning_rate, warmup))
  callbacks.append(keras.callbacks.ReduceLROnPlateau(
      monitor='val_auc', mode='max', factor=settings.plateau_factor,
      patience=settings.plateau_patience, min_lr=learning_rate * floor,
      verbose=0))
  return learning_rate, callbacks
