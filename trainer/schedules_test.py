"""Tests of trainer.schedules: warm-up, cosine decay, reduce-on-plateau, and
the validation of their settings."""
import keras
import numpy as np
import pytest

from contract import options
from trainer import schedules


def _settings(**overrides):
  return options.training_settings('quick', **overrides)


def _rates(schedule, steps):
  return [float(keras.ops.convert_to_numpy(schedule(step)))
          for step in range(steps)]


def test_constant_is_the_phase_rate_and_nothing_else():
  rate, callbacks = schedules.for_phase(_settings(lr_schedule='constant'),
                                        1e-3, 5, 10)
  assert rate == 1e-3 and callbacks == []
  assert schedules.warmup_steps(_settings(lr_schedule='constant'), 5, 10) == 0


def test_cosine_warms_up_linearly_then_decays_to_the_floor():
  settings = _settings(lr_schedule='cosine', warmup_epochs=1.0,
                       min_learning_rate_fraction=0.01)
  schedule, callbacks = schedules.for_phase(settings, 1e-3, 4, 10)
  assert callbacks == []
  rates = _rates(schedule, 40)
  # Warm-up: 10 steps, the 10th at the peak.
  np.testing.assert_allclose(rates[:10], [1e-4 * (k + 1) for k in range(10)],
                             rtol=1e-5)
  assert rates[10] == pytest.approx(1e-3, rel=1e-6)
  decay = rates[10:]
  assert all(a > b for a, b in zip(decay, decay[1:]))
  assert rates[-1] == pytest.approx(1e-5, rel=1e-4)
  assert max(rates) == pytest.approx(1e-3, rel=1e-6)
  # Past the end it stays at the floor.
  assert _rates(schedule, 50)[-1] == pytest.approx(1e-5, rel=1e-4)


@pytest.mark.parametrize('warmup_epochs, epochs, expected', [
    (1.0, 4, 10), (0.5, 4, 5), (0.0, 4, 0), (2.0, 2, 10), (1.0, 1, 5)])
def test_warmup_is_at_most_half_the_phase(warmup_epochs, epochs, expected):
  settings = _settings(lr_schedule='cosine', warmup_epochs=warmup_epochs)
  assert schedules.warmup_steps(settings, epochs, 10) == expected


def test_cosine_without_warmup_starts_at_the_peak():
  settings = _settings(lr_schedule='cosine', warmup_epochs=0.0)
  schedule, _ = schedules.for_phase(settings, 2e-3, 2, 5)
  rates = _rates(schedule, 10)
  assert rates[0] == pytest.approx(2e-3)
  assert rates[-1] == pytest.approx(2e-3 * settings.min_learning_rate_fraction,
                                    rel=1e-4)


def test_schedule_round_trips_its_config():
  schedule = schedules.WarmupCosine(1e-3, 7, 70, 0.05)
  again = schedules.WarmupCosine.from_config(schedule.get_config())
  assert _rates(again, 70) == _rates(schedule, 70)


def test_plateau_is_a_warm_up_and_keras_reduce_on_plateau():
  settings = _settings(lr_schedule='plateau', warmup_epochs=1.0,
                       plateau_factor=0.5, plateau_patience=2,
                       min_learning_rate_fraction=0.1)
  rate, callbacks = schedules.for_phase(settings, 1e-3, 4, 3)
  assert rate == 1e-3
  warmup, plateau = callbacks
  assert isinstance(warmup, schedules.LinearWarmup)
  assert isinstance(plateau, keras.callbacks.ReduceLROnPlateau)
  assert (plateau.monitor, plateau.mode, plateau.factor, plateau.patience) == (
      'val_auc', 'max', 0.5, 2)
  assert plateau.min_lr == pytest.approx(1e-4)


class _RateLog(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.rates = []

  def on_train_batch_begin(self, batch, logs=None):
    self.rates.append(float(keras.ops.convert_to_numpy(
        self.model.optimizer.learning_rate)))


def test_linear_warmup_reaches_the_peak_and_stays():
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='mse')
  log = _RateLog()
  x = np.zeros((8, 2), np.float32)
  model.fit(x, x[:, :1], batch_size=1, epochs=1, verbose=0,
            callbacks=[schedules.LinearWarmup(1e-3, 4), log])
  np.testing.assert_allclose(log.rates, [2.5e-4, 5e-4, 7.5e-4] + [1e-3] * 5,
                             rtol=1e-6)


@pytest.mark.parametrize('overrides, message', [
    ({'lr_schedule': 'linear'}, 'unknown lr_schedule'),
    ({'warmup_epochs': -1.0}, 'warmup_epochs'),
    ({'min_learning_rate_fraction': 0.0}, 'min_learning_rate_fraction'),
    ({'plateau_factor': 1.0}, 'plateau_factor')])
def test_bad_schedule_settings_are_refused(overrides, message):
  with pytest.raises(ValueError, match=message):
    _settings(**overrides)


def test_the_new_settings_are_recorded():
  values = _settings().to_dict()
  for name in ('lr_schedule', 'warmup_epochs', 'min_learning_rate_fraction',
               'plateau_factor', 'plateau_patience', 'deterministic',
               'from_scratch_learning_rate'):
    assert name in values, name
  assert options.TrainingSettings.from_dict(values) == _settings()
