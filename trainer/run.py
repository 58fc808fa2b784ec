"""The Trainer's entry point: `run_fn` (dotted path trainer.run.run_fn).

Trains each selected architecture in turn (trainer/training.py: early
stopping on validation AUC, a checkpoint every epoch, per-epoch history, the
race), then exports the architecture with the best validation AUC as the
Trainer's SavedModel and writes a comparison table of all of them beside it.

The layout of the Trainer's model_run_dir is declared in contract/layout.py.
"""
import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List, Optional

from absl import logging
import keras
import tensorflow as tf
from tensorflow.python.framework import config as tf_config  # pylint: disable=g-direct-tensorflow-import

from contract import layout
from contract import names as constants
from contract import options
from trainer import architectures
from trainer import calibration
from trainer import data
from trainer import race as race_lib
from trainer import records
from trainer import resnet_weights
from trainer import selection
from trainer import signatures
from trainer import threshold as threshold_lib
from trainer import training
from trainer import warmup

SERVING_TOLERANCE = threshold_lib.SERVING_TOLERANCE
# Re-exported: tests and readers know them as run.*.
HISTORY_FIELDS = records.HISTORY_FIELDS
COMPARISON_FIELDS = records.COMPARISON_FIELDS


@contextlib.contextmanager
def local_directory(uri: str):
  """A local folder for `uri`; copied to it afterwards when `uri` is remote
  (h5 checkpoints and CSV need a local file system)."""
  if '://' not in uri:
    os.makedirs(uri, exist_ok=True)
    yield uri
    return
  local = tempfile.mkdtemp(prefix='trainer-')
  try:
    yield local
  finally:
    for root, _, files in os.walk(local):
      for name in files:
        source = os.path.join(root, name)
        target = uri.rstrip('/') + '/' + os.path.relpath(source, local)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(source, target, overwrite=True)
    shutil.rmtree(local, ignore_errors=True)


@contextlib.contextmanager
def deterministic_ops(enabled: bool):
  """tf.config.experimental.enable_op_determinism() inside, when `enabled`;
  the process's previous state afterwards (the flag is process-wide)."""
  # The query and the reset are not in tf.config's public API (TF 2.16).
  before = tf_config.is_op_determinism_enabled()
  if enabled and not before:
    tf.config.experimental.enable_op_determinism()
  try:
    yield
  finally:
    if enabled and not before:
      tf_config.disable_op_determinism()


def operating_point(model: keras.Model, evaluation: data.Split,
                    batch_size: int,
                    target_sensitivity: float) -> threshold_lib.OperatingPoint:
  """The threshold reaching the target sensitivity on the eval split, for
  one uncalibrated model (scored as the Trainer scores what it ships)."""
  choice = selection.choose({model.name: model}, model.name, evaluation,
                            batch_size, try_ensemble=False)
  return threshold_lib.choose_threshold(
      calibration.apply(calibration.IDENTITY, choice.logits), choice.labels,
      target_sensitivity, margin=SERVING_TOLERANCE)


def calibrated_operating_point(choice: selection.Choice,
                               settings: options.TrainingSettings):
  """(calibration map, its model_info record, operating point chosen on the
  calibrated eval scores)."""
  try:
    fitted, record = calibration.calibrate(choice.logits, choice.labels,
                                           settings.calibration)
  except ValueError as e:  # a map that would reverse the ranking
    logging.warning('No calibration: %s', e)
    fitted, record = calibration.calibrate(choice.logits, choice.labels,
                                           calibration.NONE)
    record['skipped'] = str(e)
  scores = calibration.apply(fitted, choice.logits)
  point = threshold_lib.choose_threshold(
      scores, choice.labels, settings.target_sensitivity,
      margin=SERVING_TOLERANCE)
  return fitted, record, point


def _files(patterns) -> List[str]:
  files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'no input files match {list(patterns)}')
  return files


def train_and_export(train_files: List[str], eval_files: List[str],
                     settings: options.TrainingSettings, run_dir: str,
                     serving_model_dir: str) -> List[Dict[str, Any]]:
  """Trains every selected architecture, exports the best; returns the
  comparison rows."""
  # Fail before any work if initial weights cannot be had.
  weights = (resnet_weights.resolve(settings.resnet_weights)
             if architectures.needs_weights(settings.architectures) else None)
  image_size = settings.image_size
  with local_directory(run_dir) as local_run_dir:
    with open(os.path.join(local_run_dir, layout.TRAINING_SETTINGS_FILE),
              'w') as f:
      json.dump(settings.to_dict(), f, indent=1, sort_keys=True)
    train = data.load_split(train_files, image_size, 'train')
    if settings.shuffle_labels:
      train = data.permute_labels(train, settings.seed)
    # The warm-up images are read with the split, not after training: the
    # input files need not outlive loading (a test moves them away).
    warmup_images = warmup.first_images(eval_files)
    evaluation = data.load_split(eval_files, image_size, 'eval')
    trained, rows = {}, []
    race = race_lib.Race(settings.race_after_epochs)
    with deterministic_ops(settings.deterministic):
      for name in settings.architectures:
        model, row = training.train_architecture(
            name, train, evaluation, settings, local_run_dir, weights, race)
        trained[name] = model
        rows.append(row)
    best = max(rows, key=lambda r: records.finite(r['val_auc']))
    choice = selection.choose(trained, best['architecture'], evaluation,
                              settings.batch_size, settings.ensemble,
                              settings.test_time_views)
    best['selected'] = choice.architecture != selection.ENSEMBLE
    table = (records.comparison_markdown(rows) +
             records.ensemble_markdown(choice.record))
    logging.info('Architecture comparison (validation split):\n%s', table)
    records.write_table(os.path.join(local_run_dir, layout.COMPARISON_STEM),
                        rows, COMPARISON_FIELDS)
    with open(layout.comparison_file(local_run_dir, 'md'), 'w') as f:
      f.write(table)

  fitted, calibration_record, point = calibrated_operating_point(choice,
                                                                 settings)
  if fitted.method != calibration.NONE:
    logging.info(
        '%s calibration on the eval split: slope %.4f, intercept %.4f; '
        'expected calibration error %.4f before, %.4f after (out of fold).',
        fitted.method, fitted.slope, fitted.intercept,
        calibration_record['before']['expected_calibration_error'],
        calibration_record['after_out_of_fold'][
            'expected_calibration_error'])
  logging.info('Operating threshold %.4f on the eval split: sensitivity %.3f '
               '(target %.2f), specificity %.3f (%d PNEUMONIA, %d NORMAL).',
               point.threshold, point.sensitivity, point.target_sensitivity,
               point.specificity, point.positives, point.negatives)
  signatures.export(
      choice.scorer, serving_model_dir, image_size, point.threshold,
      info={'architecture': choice.architecture, 'members': choice.members,
            'ensemble': choice.record, 'calibration': calibration_record,
            'comparison': rows, 'operating_point': point._asdict(),
            'training_settings': settings.to_dict(),
            'label_names': list(constants.LABEL_NAMES)},
      calibration=fitted, warmup_images=warmup_images)
  # The comparison also lives beside the exported model.
  beside = os.path.dirname(serving_model_dir.rstrip('/'))
  for ext in layout.TABLE_EXTENSIONS:
    tf.io.gfile.copy(layout.comparison_file(run_dir, ext),
                     layout.comparison_file(beside, ext), overwrite=True)
  logging.info('Exported %s (%s) to %s', choice.architecture,
               ', '.join(choice.members), serving_model_dir)
  return rows


def run_fn(fn_args) -> None:
  """TFX Trainer entry point (GenericExecutor)."""
  settings = options.TrainingSettings.from_dict(
      fn_args.custom_config['training'])
  train_and_export(_files(fn_args.train_files), _files(fn_args.eval_files),
                   settings, fn_args.model_run_dir, fn_args.serving_model_dir)
