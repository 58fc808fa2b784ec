"""The view model's training section: the architectures compared, the
settings they were trained with and which have training curves."""
import dataclasses
from typing import Any, List, Optional, Tuple

from components.run_report import figures
from components.run_report.run import Run

# training_settings.json entries shown, in this order.
SETTINGS = ('profile', 'architectures', 'image_size', 'epochs', 'batch_size',
            'learning_rate', 'patience', 'class_weights',
            'target_sensitivity', 'shuffle_labels', 'seed')


@dataclasses.dataclass(frozen=True)
class Architecture:
  """A row of comparison.json (validation split)."""
  name: Any
  val_auc: Any
  val_accuracy: Any
  val_loss: Any
  train_auc: Any
  best_epoch: Any
  epochs_run: Any
  parameters: Any
  minutes: Optional[float]
  selected: bool  # the one exported


@dataclasses.dataclass(frozen=True)
class Training:
  comparison: List[Architecture]  # empty: no comparison.json
  settings: Optional[List[Tuple[str, Any]]]  # None: no training settings
  shuffled_labels: bool  # a negative control (trained on permuted labels)
  curves: List[str]  # architectures with a training history, in order


def _architecture(row: dict) -> Architecture:
  seconds = row.get('seconds')
  return Architecture(
      name=row.get('architecture'), val_auc=row.get('val_auc'),
      val_accuracy=row.get('val_accuracy'), val_loss=row.get('val_loss'),
      train_auc=row.get('train_auc'), best_epoch=row.get('best_epoch'),
      epochs_run=row.get('epochs_run'), parameters=row.get('parameters'),
      minutes=seconds / 60 if figures.is_number(seconds) else None,
      selected=bool(row.get('selected')))


def build(run: Run) -> Training:
  settings = run.training_settings
  return Training(
      comparison=[_architecture(row) for row in run.comparison or []],
      settings=[(key, settings[key]) for key in SETTINGS if key in settings]
      if settings else None,
      shuffled_labels=bool(settings and settings.get('shuffle_labels')),
      curves=list(run.histories or {}))
