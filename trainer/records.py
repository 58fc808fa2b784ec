"""What the Trainer records as it goes: per-epoch history and the
architecture comparison (JSON and CSV, and the comparison as Markdown)."""
import csv
import json
import math
import os
import time
from typing import Any, Dict, List, Optional

import keras

from contract import layout

HISTORY_FIELDS = ('epoch', 'phase', 'loss', 'accuracy', 'auc', 'val_loss',
                  'val_accuracy', 'val_auc', 'learning_rate', 'seconds',
                  'images_per_second')
COMPARISON_FIELDS = ('architecture', 'selected', 'val_auc', 'val_accuracy',
                     'val_loss', 'best_epoch', 'epochs_run', 'stopped_by',
                     'race_leader', 'train_auc',
                     'parameters', 'seconds', 'images_per_second')


class HistoryRecorder(keras.callbacks.Callback):
  """Appends each epoch's metrics to a list and rewrites JSON and CSV files,
  so an interrupted run keeps what it learned."""

  def __init__(self, rows: List[Dict[str, Any]], directory: str, phase: int,
               images_per_epoch: int):
    super().__init__()
    self._rows, self._dir, self._phase = rows, directory, phase
    self._images = images_per_epoch

  def on_epoch_begin(self, epoch, logs=None):
    self._start = self._train_end = time.perf_counter()

  def on_test_begin(self, logs=None):
    self._train_end = time.perf_counter()  # validation is not training

  def on_epoch_end(self, epoch, logs=None):
    seconds = time.perf_counter() - self._start
    train_seconds = max(self._train_end - self._start, 1e-9)
    row = {'epoch': epoch + 1, 'phase': self._phase,
           'seconds': round(seconds, 3),
           'images_per_second': round(self._images / train_seconds, 2)}
    row.update({k: float(v) for k, v in (logs or {}).items()
                if k in HISTORY_FIELDS})
    # The rate at the epoch's end: a schedule's value at the next step; under
    # plateau the rate the epoch ran at (this runs before any reduction).
    row['learning_rate'] = float(keras.ops.convert_to_numpy(
        self.model.optimizer.learning_rate))
    self._rows.append(row)
    write_table(os.path.join(self._dir, layout.HISTORY_STEM), self._rows,
                HISTORY_FIELDS)


def finite(value) -> float:
  """value, or -1 when missing or NaN (never chosen as the best)."""
  return -1.0 if value is None or math.isnan(value) else float(value)


def write_table(path_without_ext: str, rows: List[Dict[str, Any]],
                fields) -> None:
  """Writes rows as <path>.json and <path>.csv."""
  with open(path_without_ext + '.json', 'w') as f:
    json.dump(rows, f, indent=1)
  with open(path_without_ext + '.csv', 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(fields), extrasaction='ignore')
    writer.writeheader()
    writer.writerows(rows)


def comparison_markdown(rows: List[Dict[str, Any]]) -> str:
  header = ('| architecture | val AUC | val accuracy | val loss | best epoch '
            '| epochs run | stopped by | parameters | minutes | selected |')
  lines = [header, '|' + '---|' * 10]
  for r in rows:
    lines.append(
        f"| {r['architecture']} | {r['val_auc']:.4f} | {r['val_accuracy']:.4f}"
        f" | {r['val_loss']:.4f} | {r['best_epoch']} | {r['epochs_run']} | "
        f"{layout.stopped_by_text(r)} | "
        f"{r['parameters']:,} | {r['seconds'] / 60:.1f} | "
        f"{'**yes**' if r['selected'] else ''} |")
  return '\n'.join(lines) + '\n'


def ensemble_markdown(record: Optional[Dict[str, Any]]) -> str:
  """A line under the comparison for the ensemble candidate, if tried."""
  if not record:
    return ''
  return (f"\nMean probability of {', '.join(record['members'])}: eval AUC "
          f"{record['eval_auc']:.4f} against {record['best_single_eval_auc']:.4f}"
          f" for {record['best_single']} alone (exact, {record['images']} "
          f"images): {'**shipped**' if record['chosen'] else 'not shipped'}."
          '\n')
