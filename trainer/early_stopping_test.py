"""Early stopping in the real train_architecture: it stops a run whose
validation AUC falls, and keeps the best epoch's weights (issue 14 item 3)."""
import json
import os

import keras
import numpy as np
import pytest

from contract import options
from testing import images as shared_images
from trainer import data
from trainer import models
from trainer import race
from trainer import records
from trainer import run
from trainer import training

SIZE = 32
BATCH = 8


def _read_json(path):
  with open(path) as f:
    return json.load(f)


class _ValidationScript(keras.callbacks.Callback):
  """Decides, before each epoch's validation, whether the real val AUC comes
  out high or low: it points the output layer along the eval split's class
  difference of the features it reads (scaled so the logits spread over the
  AUC metric's thresholds), or against it. The val AUC fit then logs is the
  model's own on the eval split; only its direction is chosen."""

  def __init__(self, evaluation: data.Split, high_epochs):
    super().__init__()
    pairs = list(evaluation.dataset.as_numpy_iterator())
    self._images = np.stack([image for image, _ in pairs])
    self._labels = np.array([label for _, label in pairs], dtype=np.float32)
    self._high, self.aucs = set(high_epochs), []

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch + 1

  def on_test_begin(self, logs=None):
    output = self.model.get_layer(models.OUTPUT_LAYER)
    features = keras.Model(self.model.inputs, output.input)(
        self._images, training=False).numpy()
    positive = self._labels == 1
    direction = (features[positive].mean(0) - features[~positive].mean(0))
    logits = (features - features.mean(0)) @ direction
    assert logits.std() > 0, 'the eval features do not differ'
    kernel = 3 * direction[:, None] / logits.std()
    bias = -features.mean(0) @ kernel
    auc = self.auc(keras.ops.sigmoid(features @ kernel + bias))
    assert auc != 0.5 or self._epoch not in self._high, 'no best AUC'
    if (auc > 0.5) != (self._epoch in self._high):
      kernel, bias, auc = -kernel, -bias, 1 - auc
    output.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    self.aucs.append(auc)

  def auc(self, probabilities) -> float:
    """The AUC fit computes (keras.metrics.AUC) of eval-split scores."""
    metric = keras.metrics.AUC()
    metric.update_state(self._labels, np.reshape(probabilities, -1))
    return float(metric.result())


def _train_scripted(name, high_epochs, settings, train, evaluation, run_dir,
                    race_=None):
  """The real train_architecture with the val AUC's direction scripted per
  epoch: (model, comparison row, the script)."""
  script = _ValidationScript(evaluation, high_epochs=high_epochs)
  for_phase = training.schedules.for_phase

  # The phase's schedule callbacks join fit's own; the script rides along.
  def with_script(*args, **kwargs):
    rate, callbacks = for_phase(*args, **kwargs)
    return rate, callbacks + [script]

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(training.schedules, 'for_phase', with_script)
    with run.deterministic_ops(True):
      model, row = training.train_architecture(
          name, train, evaluation, settings, str(run_dir), None, race_)
  return model, row, script


def _splits(tmp_path):
  """(train, eval): 16 real images each, disjoint."""
  return [data.load_split(shared_images.write_split(
      tmp_path / name, name, shared_images.real_images(8, 8, offset=offset)),
                          SIZE, name)
          for name, offset in (('train', 0), ('eval', 8))]


def _history(run_dir, name):
  return _read_json(os.path.join(run_dir, name, 'history.json'))


def test_early_stopping_stops_and_keeps_the_best_epochs_weights(tmp_path):
  """Val AUC peaks at epoch 2 and is lower after it (_ValidationScript): with
  patience 2 the real train_architecture stops after epoch 4 of 10, and the
  model it returns holds the weights of epoch 2's checkpoint, not of the last
  epoch's."""
  patience, best_epoch, name = 2, 2, 'baseline_cnn'
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=10, batch_size=BATCH,
      architectures=[name], patience=patience, log_every_seconds=1000.0)
  train, evaluation = _splits(tmp_path)
  model, row, script = _train_scripted(name, [best_epoch], settings, train,
                                       evaluation, tmp_path / 'run')
  epochs_run = best_epoch + patience
  assert (row['best_epoch'], row['epochs_run']) == (best_epoch, epochs_run)
  assert epochs_run < settings.epochs
  history = _read_json(tmp_path / 'run' / name / 'history.json')
  assert [h['epoch'] for h in history] == list(range(1, epochs_run + 1))
  val_auc = [h['val_auc'] for h in history]
  # What fit logged is the scripted model's own AUC.
  assert val_auc == pytest.approx(script.aucs, abs=1e-4)
  best = val_auc[best_epoch - 1]
  assert all(best > v for v in val_auc[best_epoch:]), val_auc
  assert row['val_auc'] == best
  checkpoint_dir = tmp_path / 'run' / name / 'checkpoints'
  assert sorted(os.listdir(checkpoint_dir)) == [
      f'epoch-{e:03d}.weights.h5' for e in range(1, epochs_run + 1)]

  def checkpoint(epoch):
    saved = models.build_model(name, SIZE, data.steps_per_epoch(train, BATCH))
    saved.load_weights(str(checkpoint_dir / f'epoch-{epoch:03d}.weights.h5'))
    return saved.get_weights()

  weights = model.get_weights()
  for kept, saved in zip(weights, checkpoint(best_epoch), strict=True):
    np.testing.assert_array_equal(kept, saved)
  assert any(not np.array_equal(kept, last) for kept, last in
             zip(weights, checkpoint(epochs_run), strict=True))
  # And the model returned scores the best epoch's val AUC on the eval split.
  scores = model.predict(data.evaluation_batches(evaluation, BATCH),
                         verbose=0)
  assert script.auc(scores) == pytest.approx(best, abs=1e-4)



@pytest.mark.parametrize('after', [2, 0])
def test_race_stops_a_challenger_behind_the_leader(tmp_path, after):
  """The leader's val AUC is above 0.5 at every epoch, the challenger's
  below (_ValidationScript): with race_after_epochs 2 the real
  train_architecture stops the challenger after epoch 2 of 5 and says why
  and behind whom; with 0 it runs all 5. The leader itself is never raced."""
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=5, batch_size=BATCH, patience=10,
      architectures=['baseline_cnn', 'improved_cnn'], race_after_epochs=after,
      log_every_seconds=1000.0)
  train, evaluation = _splits(tmp_path)
  contest = race.Race(settings.race_after_epochs)
  _, leader, _ = _train_scripted('baseline_cnn', range(1, 6), settings,
                                 train, evaluation, tmp_path / 'run', contest)
  leader_history = _history(tmp_path / 'run', 'baseline_cnn')
  assert (leader['stopped_by'], leader['race_leader']) == ('epochs', '')
  assert leader['epochs_run'] == 5
  assert min(h['val_auc'] for h in leader_history) > 0.5
  assert contest.leader == 'baseline_cnn'

  _, challenger, _ = _train_scripted('improved_cnn', [], settings, train,
                                     evaluation, tmp_path / 'run', contest)
  history = _history(tmp_path / 'run', 'improved_cnn')
  assert max(h['val_auc'] for h in history) < 0.5
  if after:
    assert challenger['epochs_run'] == len(history) == after
    assert challenger['stopped_by'] == 'race'
    assert challenger['race_leader'] == 'baseline_cnn'
    assert 'race: behind baseline_cnn' in records.comparison_markdown(
        [leader, challenger])
  else:
    assert challenger['epochs_run'] == len(history) == 5
    assert (challenger['stopped_by'], challenger['race_leader']) == (
        'epochs', '')
  assert contest.leader == 'baseline_cnn'  # a lower best does not lead
