"""Progress of long training in the log: epoch, step, images/s and ETA."""
import datetime
import time

from absl import logging
import keras


def _duration(seconds: float) -> str:
  return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class ProgressLogger(keras.callbacks.Callback):
  """Logs a line every `every_seconds` and at each epoch's end."""

  def __init__(self, name: str, epochs: int, steps_per_epoch: int,
               batch_size: int, every_seconds: float = 30.0,
               initial_epoch: int = 0):
    super().__init__()
    self._name, self._epochs, self._steps = name, epochs, steps_per_epoch
    self._batch, self._every = batch_size, every_seconds
    self._initial_epoch = initial_epoch

  def on_train_begin(self, logs=None):
    self._train_start = time.perf_counter()
    self._epochs_done = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch
    self._epoch_start = self._last_log = time.perf_counter()
    self._train_end = None

  def on_test_begin(self, logs=None):
    self._train_end = time.perf_counter()  # validation is not training

  def _rate(self, steps: int) -> float:
    end = self._train_end or time.perf_counter()
    return steps * self._batch / max(end - self._epoch_start, 1e-9)

  def on_train_batch_end(self, batch, logs=None):
    now = time.perf_counter()
    if now - self._last_log < self._every:
      return
    self._last_log = now
    done = batch + 1
    rate = self._rate(done)
    epoch_left = (self._steps - done) * self._batch / max(rate, 1e-9)
    logging.info('[%s] epoch %d/%d step %d/%d  %.1f img/s  epoch ETA %s  '
                 'loss %.4f', self._name, self._epoch + 1, self._epochs, done,
                 self._steps, rate, _duration(epoch_left),
                 (logs or {}).get('loss', float('nan')))

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    self._epochs_done += 1
    elapsed = time.perf_counter() - self._train_start
    left = self._epochs - self._initial_epoch - self._epochs_done
    per_epoch = elapsed / self._epochs_done
    logging.info(
        '[%s] epoch %d/%d done in %s (%.1f img/s): loss %.4f auc %.4f | '
        'val_loss %.4f val_auc %.4f | ETA (if not stopped early) %s',
        self._name, epoch + 1, self._epochs,
        _duration(time.perf_counter() - self._epoch_start),
        self._rate(self._steps), logs.get('loss', float('nan')),
        logs.get('auc', float('nan')), logs.get('val_loss', float('nan')),
        logs.get('val_auc', float('nan')), _duration(left * per_epoch))
