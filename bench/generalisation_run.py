"""bench/generalisation's one run: train a variant for one seed with
`trainer.run.train_and_export`, score its SavedModel on both cohorts and
write `result.json`; and whether a recorded result has the same settings."""
import dataclasses
import json
import logging as std_logging
import os
import shutil
import time
from typing import Any, Dict

import keras

from bench import generalisation_scoring as scoring
from bench.generalisation_data import say, split_files
from contract import layout
from contract import options
from trainer import run


class _Prefix(std_logging.Filter):
  """Keeps the Trainer's INFO lines (and every warning), with the current
  variant and seed before them; drops other libraries' INFO chatter."""
  prefix = ''

  def filter(self, record):
    trainer = f'{os.sep}trainer{os.sep}' in record.pathname
    if not trainer and record.levelno < std_logging.WARNING:
      return False
    if self.prefix:
      record.msg = f'{self.prefix} {record.msg}'
    return True


PREFIX = _Prefix()


def same_settings(recorded: Dict[str, Any],
                  settings: options.TrainingSettings) -> bool:
  """Whether a result's recorded settings are `settings`. A setting added
  to TrainingSettings since (absent from the record) counts as its default;
  one removed since is ignored."""
  fields = {f.name for f in dataclasses.fields(options.TrainingSettings)}
  try:
    then = options.TrainingSettings.from_dict(
        {k: v for k, v in recorded.items() if k in fields})
  except (TypeError, ValueError):
    return False
  return then == settings


def run_one(variant: str, seed: int, settings: options.TrainingSettings,
            folder: str, examples: str, internal, external,
            label: str) -> Dict[str, Any]:
  run_dir = os.path.join(folder, 'run')
  model_dir = os.path.join(folder, 'model', 'Format-Serving')
  # A previous result.json stays until this run's replaces it.
  for old in (run_dir, os.path.dirname(model_dir)):
    shutil.rmtree(old, ignore_errors=True)
  load_before = os.getloadavg()
  say(f'{label} training {", ".join(settings.architectures)} at '
      f'{settings.image_size} px, up to {settings.epochs} epochs, '
      f'lr_schedule {settings.lr_schedule} (load average '
      f'{load_before[0]:.2f})')
  PREFIX.prefix = f'[{variant} seed {seed}]'
  start = time.perf_counter()
  try:
    rows = run.train_and_export(
        split_files(examples, 'train'), split_files(examples, 'eval'),
        settings, run_dir, model_dir)
  finally:
    PREFIX.prefix = ''
  wall = time.perf_counter() - start
  with open(os.path.join(model_dir, layout.MODEL_INFO_FILE)) as f:
    info = json.load(f)
  # Stability columns: the best single architecture (an ensemble's too).
  best = max(rows, key=lambda r: r['val_auc'])
  row = dict(best, seconds=sum(r['seconds'] for r in rows),
             images_per_second=best['images_per_second'])
  with open(os.path.join(run_dir, row['architecture'], 'history.json')) as f:
    history = json.load(f)
  inside = scoring.cohort_metrics(model_dir, *internal, info)
  outside = scoring.cohort_metrics(model_dir, *external, info)
  result = {
      'variant': variant, 'seed': seed, 'settings': settings.to_dict(),
      'internal_auc': inside['auc'], 'external_auc': outside['auc'],
      'gap': inside['auc'] - outside['auc'],
      'internal_sensitivity': inside['sensitivity'],
      'internal_specificity': inside['specificity'],
      'external_sensitivity': outside['sensitivity'],
      'external_specificity': outside['specificity'],
      'internal_ece': inside['ece'], 'external_ece': outside['ece'],
      'internal_ece_uncalibrated': inside['ece_uncalibrated'],
      'external_ece_uncalibrated': outside['ece_uncalibrated'],
      'internal_brier': inside['brier'], 'external_brier': outside['brier'],
      'shipped': info['architecture'], 'members': info.get('members'),
      'ensemble': info.get('ensemble'),
      'calibration': {k: v for k, v in (info.get('calibration') or {}).items()
                      if k in ('method', 'slope', 'intercept')},
      'internal_images': inside['images'],
      'external_images': outside['images'],
      'threshold': info['threshold'],
      'eval_operating_point': info['operating_point'],
      'val_auc': row['val_auc'], 'best_epoch': row['best_epoch'],
      'epochs_run': row['epochs_run'],
      'val_auc_by_epoch': [h['val_auc'] for h in history],
      'learning_rate_by_epoch': [h.get('learning_rate') for h in history],
      'worst_val_auc_fall': scoring.worst_fall(history),
      'train_minutes': row['seconds'] / 60, 'wall_minutes': wall / 60,
      'images_per_second': row['images_per_second'],
      'load_average_before': load_before[0],
      'load_average_after': os.getloadavg()[0],
  }
  with open(os.path.join(folder, 'result.json.partial'), 'w') as f:
    json.dump(result, f, indent=1)
  os.replace(os.path.join(folder, 'result.json.partial'),
             os.path.join(folder, 'result.json'))
  say(f'{label} done in {wall / 60:.1f} min: val AUC {row["val_auc"]:.4f} '
      f'(best epoch {row["best_epoch"]}/{row["epochs_run"]}); internal AUC '
      f'{inside["auc"]:.4f}, external AUC {outside["auc"]:.4f}, external '
      f'sensitivity {outside["sensitivity"]:.3f} / specificity '
      f'{outside["specificity"]:.3f} at threshold {info["threshold"]:.3f}; '
      f'shipped {info["architecture"]}; external ECE {outside["ece"]:.3f} '
      f'({outside["ece_uncalibrated"]:.3f} before its calibration)')
  # Models of finished runs need not stay in memory.
  keras.backend.clear_session()
  return result
