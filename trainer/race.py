"""Architectures race: one that is behind the leader at the same epoch stops.

The Trainer trains its architectures one after another. From the second on,
each races against the leader, the architecture trained so far with the
highest validation AUC: at the end of every epoch from `race_after_epochs`
on, when the challenger's best validation AUC so far is below the leader's
best by the same epoch, the challenger stops. It is behind a model that was
no further along, so it is not expected to be selected, and on a CPU its
remaining epochs are the largest cost of the run (ResNet50 trained from
random weights). This is a bet, the rule of a median-stopping race with one
rival: a challenger that learns slowly and would have overtaken later is
lost. `race_after_epochs` 0 trains every architecture to the end.
"""
import math
from typing import Any, Dict, List, Optional

from absl import logging
import keras


def _finite(value) -> float:
  return -1.0 if value is None or math.isnan(value) else float(value)


def best_so_far(history: List[Dict[str, Any]]) -> List[float]:
  """[best val AUC up to epoch 1, up to epoch 2, ...] of a history."""
  curve, best = [], -1.0
  for row in history:
    best = max(best, _finite(row.get('val_auc')))
    curve.append(best)
  return curve


def behind(challenger_best: float, leader_curve: List[float], epoch: int,
           after_epochs: int) -> bool:
  """Whether a challenger whose best val AUC after `epoch` epochs is
  `challenger_best` stops: from `after_epochs` on, when it is below the
  leader's best by the same epoch (the leader's final best once the
  leader's history ends)."""
  if after_epochs <= 0 or not leader_curve or epoch < after_epochs:
    return False
  return challenger_best < leader_curve[min(epoch, len(leader_curve)) - 1]


class Race:
  """The leader so far, and a callback per challenger."""

  def __init__(self, after_epochs: int):
    self.after_epochs = after_epochs
    self.leader: Optional[str] = None
    self.leader_curve: List[float] = []

  def callback(self, name: str) -> 'RaceCallback':
    return RaceCallback(self, name)

  def finish(self, name: str, history: List[Dict[str, Any]]) -> None:
    """Records an architecture's history; it leads if its best is higher."""
    curve = best_so_far(history)
    if curve and (not self.leader_curve or
                  curve[-1] > self.leader_curve[-1]):
      self.leader, self.leader_curve = name, curve


class RaceCallback(keras.callbacks.Callback):
  """Stops training when the challenger is behind the leader; `stopped_at`
  says at which epoch (None: it was not). Epochs count across phases."""

  def __init__(self, race: Race, name: str):
    super().__init__()
    self._race, self._name = race, name
    self._best = -1.0
    self.stopped_at: Optional[int] = None

  def on_epoch_end(self, epoch, logs=None):
    self._best = max(self._best, _finite((logs or {}).get('val_auc')))
    race, number = self._race, epoch + 1
    if race.leader is None or not behind(self._best, race.leader_curve,
                                         number, race.after_epochs):
      return
    self.stopped_at = number
    self.model.stop_training = True
    logging.info('[%s] stopped after epoch %d: best val AUC %.4f, below '
                 '%s\'s %.4f by the same epoch (race_after_epochs %d)',
                 self._name, number, self._best, race.leader,
                 race.leader_curve[min(number, len(race.leader_curve)) - 1],
                 race.after_epochs)
