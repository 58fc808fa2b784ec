"""The view model's training section: the architectures compared, the
settings they were trained with and which have training curves."""
import dataclasses
from typing import Any, List, Optional, Tuple

from components.run_report import figures
from components.run_report.run import Run
from contract import layout

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
  stopped_by: str  # why training ended, in words (contract/layout.py)
  parameters: Any
  minutes: Optional[float]
  selected: bool  # the one exported


@dataclasses.dataclass(frozen=True)
class Ensemble:
  """model_info's `ensemble`: the mean probability of all architectures,
  tried against the best single one on the eval split."""
  members: List[str]
  eval_auc: Any
  best_single: Any
  best_single_eval_auc: Any
  chosen: bool  # shipped


@dataclasses.dataclass(frozen=True)
class Calibration:
  """model_info's `calibration`, fitted on the eval split."""
  method: str
  slope: Any
  intercept: Any
  images: Any
  ece_before: Any
  ece_after: Any  # out of fold; None without a map
  brier_before: Any
  brier_after: Any
  skipped: Optional[str]  # why no map was fitted, if it was refused


@dataclasses.dataclass(frozen=True)
class Training:
  comparison: List[Architecture]  # empty: no comparison.json
  settings: Optional[List[Tuple[str, Any]]]  # None: no training settings
  shuffled_labels: bool  # a negative control (trained on permuted labels)
  curves: List[str]  # architectures with a training history, in order
  ensemble: Optional[Ensemble] = None  # None: not tried
  calibration: Optional[Calibration] = None  # None: not recorded


def _architecture(row: dict) -> Architecture:
  seconds = row.get('seconds')
  return Architecture(
      name=row.get('architecture'), val_auc=row.get('val_auc'),
      val_accuracy=row.get('val_accuracy'), val_loss=row.get('val_loss'),
      train_auc=row.get('train_auc'), best_epoch=row.get('best_epoch'),
      epochs_run=row.get('epochs_run'), stopped_by=layout.stopped_by_text(row),
      parameters=row.get('parameters'),
      minutes=seconds / 60 if figures.is_number(seconds) else None,
      selected=bool(row.get('selected')))


def _ensemble(info: dict) -> Optional[Ensemble]:
  record = info.get('ensemble')
  if not isinstance(record, dict):
    return None
  return Ensemble(members=list(record.get('members') or []),
                  eval_auc=record.get('eval_auc'),
                  best_single=record.get('best_single'),
                  best_single_eval_auc=record.get('best_single_eval_auc'),
                  chosen=bool(record.get('chosen')))


def _calibration(info: dict) -> Optional[Calibration]:
  record = info.get('calibration')
  if not isinstance(record, dict):
    return None
  before = record.get('before') or {}
  after = record.get('after_out_of_fold') or {}
  return Calibration(
      method=record.get('method') or 'none', slope=record.get('slope'),
      intercept=record.get('intercept'), images=record.get('images'),
      ece_before=before.get('expected_calibration_error'),
      ece_after=after.get('expected_calibration_error'),
      brier_before=before.get('brier'), brier_after=after.get('brier'),
      skipped=record.get('skipped'))


def build(run: Run) -> Training:
  settings = run.training_settings
  info = run.model_info or {}
  return Training(
      ensemble=_ensemble(info), calibration=_calibration(info),
      comparison=[_architecture(row) for row in run.comparison or []],
      settings=[(key, settings[key]) for key in SETTINGS if key in settings]
      if settings else None,
      shuffled_labels=bool(settings and settings.get('shuffle_labels')),
      curves=list(run.histories or {}))
