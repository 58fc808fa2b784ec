"""Tests of trainer.run: training, history, selection and export, end to end
on tiny TFRecords of real kermany-224 images at 32 px."""
# pylint: disable=protected-access
import contextlib
import dataclasses
import csv
import glob
import json
import logging
import math
import os
import pathlib

from absl import logging as absl_logging
import keras
import numpy as np
import pytest
import tensorflow as tf

from contract import layout
from contract import names as constants
from contract import options
from testing import images as shared_images
from trainer import architectures
from trainer import data
from trainer import models
from trainer import preprocessing
from trainer import resnet_weights
from trainer import run
from trainer import signatures
from trainer import training

SIZE = 32
EPOCHS = 2
BATCH = 8
ARCHITECTURES = ['baseline_cnn', 'improved_cnn']
METRICS = ('loss', 'accuracy', 'auc', 'val_loss', 'val_accuracy', 'val_auc')


class _Records(logging.Handler):

  def __init__(self):
    super().__init__(logging.INFO)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


@contextlib.contextmanager
def absl_log():
  """Collects the absl log's INFO messages (what the Trainer's log shows).

  The verbosity is set through absl, as runners do: saving a SavedModel
  re-applies absl's verbosity flag to the logger.
  """
  logger = logging.getLogger('absl')
  handler, verbosity = _Records(), absl_logging.get_verbosity()
  logger.addHandler(handler)
  absl_logging.set_verbosity(absl_logging.INFO)
  try:
    yield handler.messages
  finally:
    logger.removeHandler(handler)
    absl_logging.set_verbosity(verbosity)


class Run:
  """What one train_and_export call produced."""

  def __init__(self, root: pathlib.Path, settings, train_images,
               eval_images):
    self.root = root
    self.settings = settings
    self.train_images, self.eval_images = train_images, eval_images
    self.run_dir = root / 'run'
    self.serving_dir = root / 'model' / 'Format-Serving'
    self.rows = None
    self.log = []
    self.files_moved = []


def _train_and_export(root, settings, train_images, eval_images):
  """Runs train_and_export; the TFRecords are moved away as soon as each
  split is loaded, so training must run on the decoded cache alone."""
  result = Run(root, settings, train_images, eval_images)
  train_files = shared_images.write_split(root / 'train', 'train',
                                          train_images)
  eval_files = shared_images.write_split(root / 'eval', 'eval', eval_images)
  load_split = data.load_split

  def load_then_move(files, image_size, name):
    split = load_split(files, image_size, name)
    for f in files:
      os.rename(f, f + '.moved')
      result.files_moved.append(f)
    return split

  with pytest.MonkeyPatch.context() as patch, absl_log() as log:
    patch.setattr(data, 'load_split', load_then_move)
    result.rows = run.train_and_export(
        train_files, eval_files, settings, str(result.run_dir),
        str(result.serving_dir))
  result.log = log
  return result


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  # The cosine schedule (not the default) so that its history is tested.
  # One architecture ships (the ensemble: trainer/run_ensemble_test.py).
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=EPOCHS, batch_size=BATCH,
      architectures=ARCHITECTURES, log_every_seconds=0.0,
      lr_schedule='cosine', ensemble=False)
  train_images = shared_images.real_images(12, 20)
  eval_images = shared_images.real_images(6, 10, offset=20)
  return _train_and_export(tmp_path_factory.mktemp('trained'), settings,
                           train_images, eval_images)


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _read_csv(path):
  with open(path, newline='') as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def test_returns_one_row_per_architecture(trained):
  assert [r['architecture'] for r in trained.rows] == ARCHITECTURES
  for row in trained.rows:
    assert set(row) == set(run.COMPARISON_FIELDS)
    assert 0.0 <= row['val_auc'] <= 1.0
    assert row['epochs_run'] == EPOCHS
    assert row['parameters'] > 0


def test_training_ran_on_the_cache_only(trained):
  """Both splits were decoded once; their files were gone during training."""
  assert len(trained.files_moved) == 4
  assert not glob.glob(str(trained.root / '*' / '*.gz'))


@pytest.mark.parametrize('name', ARCHITECTURES)
def test_history_has_one_row_per_epoch(trained, name):
  arch_dir = trained.run_dir / name
  history = _read_json(arch_dir / 'history.json')
  assert [row['epoch'] for row in history] == list(range(1, EPOCHS + 1))
  assert {row['phase'] for row in history} == {1}
  for row in history:
    for metric in METRICS:
      assert math.isfinite(row[metric]), (metric, row)
    assert 0.0 <= row['accuracy'] <= 1.0 and 0.0 <= row['val_auc'] <= 1.0
    assert row['images_per_second'] > 0 and row['seconds'] > 0
  fields, rows = _read_csv(arch_dir / 'history.csv')
  assert fields == list(run.HISTORY_FIELDS)
  assert len(rows) == EPOCHS
  for csv_row, json_row in zip(rows, history):
    for metric in METRICS:
      assert float(csv_row[metric]) == pytest.approx(json_row[metric])


@pytest.mark.parametrize('name', ARCHITECTURES)
def test_a_checkpoint_per_epoch(trained, name):
  checkpoints = sorted(os.listdir(trained.run_dir / name / 'checkpoints'))
  assert checkpoints == [f'epoch-{e:03d}.weights.h5'
                         for e in range(1, EPOCHS + 1)]


@pytest.mark.parametrize('name', ARCHITECTURES)
def test_tensorboard_event_files(trained, name):
  events = glob.glob(str(trained.run_dir / name / 'tensorboard' / '**' /
                         'events.out.tfevents.*'), recursive=True)
  assert events
  assert any('validation' in e for e in events)


def test_comparison_tables_in_run_dir_and_beside_the_model(trained):
  beside = trained.serving_dir.parent
  assert beside == trained.root / 'model'
  for ext in ('json', 'csv', 'md'):
    in_run = (trained.run_dir / f'comparison.{ext}').read_text()
    assert (beside / f'comparison.{ext}').read_text() == in_run
  rows = _read_json(trained.run_dir / 'comparison.json')
  assert rows == json.loads(json.dumps(trained.rows))
  fields, csv_rows = _read_csv(trained.run_dir / 'comparison.csv')
  assert fields == list(run.COMPARISON_FIELDS)
  assert [r['architecture'] for r in csv_rows] == ARCHITECTURES
  markdown = (trained.run_dir / 'comparison.md').read_text()
  for name in ARCHITECTURES:
    assert f'| {name} |' in markdown
  assert markdown.count('**yes**') == 1


def test_exactly_the_best_val_auc_is_selected(trained):
  rows = _read_json(trained.run_dir / 'comparison.json')
  selected = [r for r in rows if r['selected']]
  assert len(selected) == 1
  assert selected[0]['val_auc'] == max(r['val_auc'] for r in rows)
  _, csv_rows = _read_csv(trained.run_dir / 'comparison.csv')
  assert [r['selected'] for r in csv_rows] == [
      str(r['selected']) for r in rows]


@pytest.mark.parametrize('name', ARCHITECTURES)
def test_comparison_row_is_the_best_epoch_of_the_history(trained, name):
  history = _read_json(trained.run_dir / name / 'history.json')
  row = next(r for r in trained.rows if r['architecture'] == name)
  best = max(history, key=lambda h: (h['val_auc'], -h['epoch']))
  assert row['best_epoch'] == best['epoch']
  assert row['val_auc'] == best['val_auc']
  assert row['val_loss'] == best['val_loss']
  assert row['train_auc'] == best['auc']


def test_model_info_names_the_selected_architecture(trained):
  info = _read_json(trained.serving_dir / layout.MODEL_INFO_FILE)
  selected = next(r for r in trained.rows if r['selected'])
  assert info['architecture'] == selected['architecture']
  assert info['image_size'] == SIZE
  assert info['threshold'] == pytest.approx(
      info['operating_point']['threshold'], abs=1e-6)
  assert 0.0 < info['threshold'] < 1.0
  assert info['operating_point']['target_sensitivity'] == (
      trained.settings.target_sensitivity)
  assert info['label_names'] == list(constants.LABEL_NAMES)
  assert info['training_settings'] == trained.settings.to_dict()
  assert [r['architecture'] for r in info['comparison']] == ARCHITECTURES


def _best_model(trained):
  """The selected architecture with its best epoch's checkpoint loaded."""
  selected = next(r for r in trained.rows if r['selected'])
  name = selected['architecture']
  steps = data.steps_per_epoch(
      data.Split(None, len(trained.train_images), {}), BATCH)
  model = models.build_model(name, SIZE, steps)
  model.load_weights(str(trained.run_dir / name / 'checkpoints' /
                         f"epoch-{selected['best_epoch']:03d}.weights.h5"))
  return model


def _serve(trained, raws):
  served = tf.saved_model.load(str(trained.serving_dir)).signatures[
      constants.SERVING_SIGNATURE](
          **{constants.SERVING_INPUT: tf.constant(raws)})
  return (served[constants.PROBABILITY_OUTPUT].numpy(),
          [s.decode() for s in served[constants.LABEL_OUTPUT].numpy()])


def test_exported_model_is_the_best_checkpoint(trained):
  """Serving gives what the best epoch's weights give on the same bytes."""
  model = _best_model(trained)
  raws = [raw for raw, _ in trained.eval_images[::3]]
  expected = np.array([
      float(model(preprocessing.preprocess_image(raw, SIZE)[None],
                  training=False)[0, 0]) for raw in raws])
  probability, _ = _serve(trained, raws)
  np.testing.assert_allclose(probability, expected, atol=1e-5, rtol=0)


def test_threshold_is_the_operating_point_of_the_best_model(trained,
                                                            tmp_path):
  info = _read_json(trained.serving_dir / layout.MODEL_INFO_FILE)
  split = data.load_split(shared_images.write_split(
      tmp_path, 'eval', trained.eval_images), SIZE, 'eval')
  target = trained.settings.target_sensitivity
  point = run.operating_point(_best_model(trained), split, BATCH, target)
  assert info['operating_point'] == pytest.approx(point._asdict())
  assert info['threshold'] == point.threshold
  assert point.sensitivity >= target
  assert (point.positives, point.negatives) == (10, 6)
  # The exported labels follow that threshold.
  probability, labels = _serve(trained, [r for r, _ in trained.eval_images])
  pneumonia = constants.LABEL_NAMES[constants.PNEUMONIA]
  assert [label == pneumonia for label in labels] == (
      probability >= info['threshold']).tolist()


def test_served_sensitivity_is_the_recorded_one_at_every_target(trained,
                                                                 tmp_path):
  # All 48 images: 30 PNEUMONIA scores, each the threshold of one target.
  images = trained.train_images + trained.eval_images
  split = data.load_split(shared_images.write_split(tmp_path, 'eval', images),
                          SIZE, 'eval')
  model = _best_model(trained)
  probability, _ = _serve(trained, [r for r, _ in images])
  truth = np.array([label for _, label in images])
  positives = probability[truth == constants.PNEUMONIA]
  # Each k/n target puts the threshold on the k-th highest positive score.
  for k in range(1, positives.size + 1):
    point = run.operating_point(model, split, BATCH, k / positives.size)
    served_sensitivity = float(np.mean(positives >= point.threshold))
    assert served_sensitivity == point.sensitivity, (k, point)


def test_history_records_the_warm_up_and_cosine_learning_rate(trained):
  # 32 images of batch 8: 4 steps per epoch, 2 epochs. Warm-up: the first
  # epoch (at most half of the 8 steps); the rate at its end is the peak,
  # at the end of the run the floor.
  peak = trained.settings.learning_rate
  assert trained.settings.lr_schedule == 'cosine'
  for name in ARCHITECTURES:
    history = _read_json(trained.run_dir / name / 'history.json')
    assert [h['learning_rate'] for h in history] == pytest.approx(
        [peak, peak * trained.settings.min_learning_rate_fraction],
        rel=1e-5)
  assert any(f'[{ARCHITECTURES[0]}] learning rate: cosine from 0.001, '
             'warm-up 4 steps' in m for m in trained.log)


def test_training_settings_are_written(trained):
  assert _read_json(trained.run_dir / 'training_settings.json') == (
      trained.settings.to_dict())


def test_progress_lines_in_the_log(trained):
  for name in ARCHITECTURES:
    lines = [m for m in trained.log if m.startswith(f'[{name}]')]
    progress = [m for m in lines if 'epoch' in m and 'img/s' in m]
    # log_every_seconds=0: a line per step, and one at each epoch's end.
    steps = [m for m in progress if ' step ' in m]
    ends = [m for m in progress if ' done in ' in m]
    assert len(ends) == EPOCHS, lines
    assert len(steps) == EPOCHS * 4, lines
    assert f'epoch 1/{EPOCHS}' in steps[0] and 'step 1/4' in steps[0]
  assert any('Decoded the train split once: 32 images' in m
             for m in trained.log)
  assert any('Exported' in m for m in trained.log)


@pytest.mark.parametrize('pretrained', [False, True])
def test_phases_of_the_cnns_are_one(pretrained):
  settings = options.training_settings('quick', epochs=3)
  for name in ('baseline_cnn', 'improved_cnn'):
    assert architectures.get(name).phases(settings, pretrained) == [
        (1, 3, settings.learning_rate, architectures.ALL)]


def test_resnet50_pretrained_phases_head_then_fine_tune():
  settings = options.training_settings('quick', epochs=3)
  phases = architectures.get('resnet50').phases(settings, True)
  assert phases == [
      (1, 1, settings.learning_rate, architectures.HEAD),
      (2, 2, settings.fine_tune_learning_rate, architectures.TOP)]
  assert settings.fine_tune_learning_rate < settings.learning_rate
  assert sum(phase.epochs for phase in phases) == 3


@pytest.mark.parametrize('epochs', [1, 2, 30])
def test_resnet50_from_random_weights_is_one_phase_of_every_layer(epochs):
  settings = options.training_settings('quick', epochs=epochs,
                                       from_scratch_learning_rate=3e-4)
  assert architectures.get('resnet50').phases(settings, False) == [
      (1, epochs, 3e-4, architectures.ALL)]


@pytest.mark.parametrize('epochs, head', [(1, 1), (2, 1), (6, 2), (30, 10)])
def test_resnet50_pretrained_phase_lengths(epochs, head):
  settings = options.training_settings('quick', epochs=epochs)
  phases = architectures.get('resnet50').phases(settings, True)
  assert (phases[0].number, phases[0].epochs) == (1, head)
  assert sum(phase.epochs for phase in phases) == epochs
  if epochs == 1:
    assert len(phases) == 1
  else:
    assert [phase.number for phase in phases] == [1, 2]


def test_missing_resnet_weights_fail_before_any_decoding(tmp_path):
  missing = tmp_path / 'missing' / resnet_weights.NOTOP_FILE
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=1, batch_size=BATCH,
      architectures=['resnet50'], resnet_weights=str(missing))
  absent = [str(tmp_path / 'no-such-train.gz')]
  with pytest.raises(resnet_weights.WeightsUnavailableError,
                     match=str(missing)):
    run.train_and_export(absent, absent, settings, str(tmp_path / 'run'),
                         str(tmp_path / 'model' / 'Format-Serving'))
  assert not (tmp_path / 'run').exists()
  # Without ResNet50 the same call gets as far as reading the files.
  settings = dataclasses.replace(settings, architectures=['baseline_cnn'])
  with pytest.raises(tf.errors.NotFoundError):
    run.train_and_export(absent, absent, settings, str(tmp_path / 'run2'),
                         str(tmp_path / 'model2' / 'Format-Serving'))


def test_files_expands_patterns_and_rejects_no_match(tmp_path):
  for name in ('b.gz', 'a.gz', 'c.txt'):
    (tmp_path / name).write_bytes(b'')
  assert run._files([str(tmp_path / '*.gz')]) == [
      str(tmp_path / 'a.gz'), str(tmp_path / 'b.gz')]
  with pytest.raises(ValueError, match='no input files'):
    run._files([str(tmp_path / '*.tfrecord')])


def _trainable_weight_count(line: str) -> int:
  return int(line.rsplit(', ', 1)[1].split()[0])


def test_resnet50_from_random_weights_trains_every_layer_from_epoch_1(
    tmp_path):
  """Random weights: one phase, every layer at the from-scratch rate."""
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=2, batch_size=BATCH,
      architectures=['resnet50'], resnet_weights='none',
      from_scratch_learning_rate=5e-4, log_every_seconds=1000.0)
  result = _train_and_export(tmp_path, settings,
                             shared_images.real_images(8, 8),
                             shared_images.real_images(4, 4, offset=8))
  history = _read_json(result.run_dir / 'resnet50' / 'history.json')
  assert [(h['epoch'], h['phase']) for h in history] == [(1, 1), (2, 1)]
  assert sorted(os.listdir(result.run_dir / 'resnet50' / 'checkpoints')) == [
      'epoch-001.weights.h5', 'epoch-002.weights.h5']
  assert [r['selected'] for r in result.rows] == [True]
  info = _read_json(result.serving_dir / layout.MODEL_INFO_FILE)
  assert info['architecture'] == 'resnet50'
  phase_lines = [m for m in result.log if m.startswith('[resnet50] phase')]
  assert len(phase_lines) == 1, phase_lines
  assert 'phase 1 (all trains): 2 epochs at learning rate 0.0005' in (
      phase_lines[0])
  # 53 convolutions and 53 BatchNorms (kernel/bias, gamma/beta) + the head.
  assert _trainable_weight_count(phase_lines[0]) == 53 * 2 + 53 * 2 + 2


def test_resnet50_from_a_weights_file_keeps_head_then_fine_tune(tmp_path):
  """Initial weights (a local file, as --resnet-weights PATH): the head on
  the frozen backbone, then conv5 at the fine-tuning rate."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(7)
  weights_file = tmp_path / 'resnet50_notop.weights.h5'
  keras.applications.ResNet50(include_top=False, weights=None, pooling='avg',
                              input_shape=(SIZE, SIZE, 3)).save_weights(
                                  str(weights_file))
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=2, batch_size=BATCH,
      architectures=['resnet50'], resnet_weights=str(weights_file),
      log_every_seconds=1000.0)
  # Training only: the export of a ResNet50 is the random-weights test's.
  splits = [data.load_split(shared_images.write_split(
      tmp_path / name, name, images), SIZE, name) for name, images in (
          ('train', shared_images.real_images(8, 8)),
          ('eval', shared_images.real_images(4, 4, offset=8)))]
  run_dir = tmp_path / 'run'
  with absl_log() as log, run.deterministic_ops(settings.deterministic):
    training.train_architecture('resnet50', *splits, settings, str(run_dir),
                           resnet_weights.resolve(settings.resnet_weights))
  history = _read_json(run_dir / 'resnet50' / 'history.json')
  assert [(h['epoch'], h['phase']) for h in history] == [(1, 1), (2, 2)]
  phase_lines = [m for m in log if m.startswith('[resnet50] phase')]
  assert len(phase_lines) == 2, phase_lines
  assert 'phase 1 (head trains): 1 epochs at learning rate 0.001, 2 ' \
      'trainable' in phase_lines[0]
  assert 'phase 2 (top trains): 1 epochs at learning rate 1e-05' in (
      phase_lines[1])
  # conv5: 10 convolutions (kernel, bias) + the head; BatchNorms stay frozen.
  assert _trainable_weight_count(phase_lines[1]) == 10 * 2 + 2


def _checkpoint_tensors(run_dir: pathlib.Path):
  """{checkpoint file:dataset name: array} of every checkpoint of a run."""
  import h5py  # pylint: disable=g-import-not-at-top
  tensors = {}
  for path in sorted(run_dir.glob('*/checkpoints/*.weights.h5')):
    with h5py.File(path, 'r') as f:
      f.visititems(lambda name, item, path=path: tensors.__setitem__(
          f'{path.relative_to(run_dir)}:{name}', item[()])
                   if isinstance(item, h5py.Dataset) else None)
  return tensors


def test_two_runs_in_one_process_give_identical_weights(tmp_path):
  """deterministic=True (the default): op determinism and every seed set.
  Two runs give bit-identical weights at every epoch, the same history and
  the same served probabilities; the process's determinism flag is restored
  afterwards."""
  from tensorflow.python.framework import config as tf_config  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=2, batch_size=BATCH,
      architectures=['improved_cnn'], log_every_seconds=1000.0)
  assert settings.deterministic
  train_images = shared_images.real_images(8, 8)
  eval_images = shared_images.real_images(4, 4, offset=8)
  flags = []
  train_architecture = training.train_architecture

  def recording(*args, **kwargs):
    flags.append(tf_config.is_op_determinism_enabled())
    return train_architecture(*args, **kwargs)

  results = []
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(training, 'train_architecture', recording)
    for k in range(2):
      results.append(_train_and_export(tmp_path / f'run{k}', settings,
                                       train_images, eval_images))
  assert flags == [True, True]
  assert not tf_config.is_op_determinism_enabled()
  first, second = (_checkpoint_tensors(r.run_dir) for r in results)
  assert len(first) > 20 and first.keys() == second.keys()
  different = [n for n in first if not np.array_equal(first[n], second[n])]
  assert not different
  histories = [_read_json(r.run_dir / 'improved_cnn' / 'history.json')
               for r in results]
  for metric in METRICS + ('learning_rate',):
    assert [h[metric] for h in histories[0]] == [
        h[metric] for h in histories[1]], metric
  raws = [raw for raw, _ in eval_images]
  np.testing.assert_array_equal(_serve(results[0], raws)[0],
                                _serve(results[1], raws)[0])


def test_an_architecture_trains_the_same_whatever_trained_before_it(
    tmp_path):
  """improved_cnn alone and improved_cnn after baseline_cnn (no race): the
  same weights at every epoch and the same history, so the training order
  (and the race, which only stops architectures) cannot change a model."""
  eval_images = shared_images.real_images(4, 4, offset=8)
  results = [_train_and_export(
      tmp_path / f'run{k}', options.training_settings(
          'quick', image_size=SIZE, epochs=2, batch_size=BATCH,
          architectures=names, race_after_epochs=0, ensemble=False,
          log_every_seconds=1000.0),
      shared_images.real_images(8, 8), eval_images)
             for k, names in enumerate([['improved_cnn'],
                                        ['baseline_cnn', 'improved_cnn']])]
  alone, second = (
      {name: value for name, value in _checkpoint_tensors(r.run_dir).items()
       if name.startswith('improved_cnn')} for r in results)
  assert len(alone) > 20 and alone.keys() == second.keys()
  assert not [n for n in alone if not np.array_equal(alone[n], second[n])]
  histories = [_read_json(r.run_dir / 'improved_cnn' / 'history.json')
               for r in results]
  assert [h['val_auc'] for h in histories[0]] == [
      h['val_auc'] for h in histories[1]]


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_compiled_loss_carries_the_label_smoothing(smoothing):
  model = keras.Sequential([keras.Input((2,)),
                            keras.layers.Dense(1, activation='sigmoid')])
  training.compile_model(model, 1e-3, smoothing)
  assert model.loss.label_smoothing == smoothing
  # Smoothed targets: a confident right answer is no longer nearly free.
  loss = float(model.loss(np.array([[1.0]]), np.array([[0.999]])))
  assert (loss > 0.2) == (smoothing > 0)

