"""train_and_export with the ensemble candidate and Platt calibration: what
it ships is what it recorded, and serving gives exactly that."""
import json

import numpy as np
import pytest
import tensorflow as tf

from contract import layout
from contract import names as constants
from contract import options
from testing import images as shared_images
from trainer import calibration
from trainer import data
from trainer import ensemble
from trainer import models
from trainer import preprocessing
from trainer import run
from trainer import selection

SIZE, EPOCHS, BATCH = 32, 2, 8
ARCHITECTURES = ('baseline_cnn', 'improved_cnn')


@pytest.fixture(scope='module')
def shipped(tmp_path_factory):
  root = tmp_path_factory.mktemp('ensemble')
  settings = options.training_settings(
      'quick', image_size=SIZE, epochs=EPOCHS, batch_size=BATCH,
      architectures=ARCHITECTURES, log_every_seconds=0.0,
      calibration=calibration.PLATT, ensemble=True)
  train_images = shared_images.real_images(12, 20)
  eval_images = shared_images.real_images(8, 12, offset=20)
  train_files = shared_images.write_split(root / 'train', 'train',
                                          train_images)
  eval_files = shared_images.write_split(root / 'eval', 'eval', eval_images)
  serving_dir = root / 'model' / 'Format-Serving'
  rows = run.train_and_export(train_files, eval_files, settings,
                              str(root / 'run'), str(serving_dir))
  with open(serving_dir / layout.MODEL_INFO_FILE) as f:
    info = json.load(f)
  split = data.load_split(eval_files, SIZE, 'eval')
  steps = data.steps_per_epoch(data.Split(None, len(train_images), {}), BATCH)
  members = {}
  for row in rows:  # each architecture at its best epoch's checkpoint
    model = models.build_model(row['architecture'], SIZE, steps)
    model.load_weights(str(root / 'run' / row['architecture'] / 'checkpoints'
                           / f"epoch-{row['best_epoch']:03d}.weights.h5"))
    members[row['architecture']] = model
  return dict(rows=rows, info=info, split=split, members=members,
              serving_dir=serving_dir, eval_files=eval_files)


def _recomputed_logits(shipped):
  """[examples, members] eval logits from the checkpoints, and labels."""
  scorer = ensemble.Scorer(list(shipped['members'].values()))
  logits = ensemble.member_logits(
      scorer, data.evaluation_batches(shipped['split'], BATCH))
  labels = np.array([label for _, label in
                     shipped['split'].dataset.as_numpy_iterator()])
  return logits, labels


def test_the_ensemble_record_is_measured_on_the_members_checkpoints(shipped):
  record, info = shipped['info']['ensemble'], shipped['info']
  logits, labels = _recomputed_logits(shipped)
  best = next(r for r in shipped['rows']
              if r['val_auc'] == max(x['val_auc'] for x in shipped['rows']))
  assert record['members'] == list(ARCHITECTURES)
  assert record['best_single'] == best['architecture']
  assert record['eval_auc'] == pytest.approx(selection.exact_auc(
      ensemble.mean_probability_logit_np(logits), labels), abs=1e-6)
  for k, name in enumerate(ARCHITECTURES):
    assert record['member_eval_auc'][name] == pytest.approx(
        selection.exact_auc(logits[:, k], labels), abs=1e-6)
  # The rule, and what was shipped because of it.
  assert record['chosen'] == (record['eval_auc'] >
                              record['best_single_eval_auc'])
  if record['chosen']:
    assert info['architecture'] == selection.ENSEMBLE
    assert info['members'] == list(ARCHITECTURES)
    assert not any(r['selected'] for r in shipped['rows'])
  else:
    assert info['architecture'] == best['architecture']
    assert info['members'] == [best['architecture']]
    assert [r['architecture'] for r in shipped['rows'] if r['selected']] == [
        best['architecture']]


def test_serving_gives_the_calibrated_probability_of_what_was_shipped(
    shipped):
  info = shipped['info']
  logits, labels = _recomputed_logits(shipped)
  names = list(ARCHITECTURES)
  z = (ensemble.mean_probability_logit_np(logits)
       if info['architecture'] == selection.ENSEMBLE
       else logits[:, names.index(info['architecture'])])
  record = info['calibration']
  fitted = calibration.Calibration(record['method'], record['slope'],
                                   record['intercept'])
  assert fitted.method == calibration.PLATT and fitted.slope > 0
  expected = calibration.apply(fitted, z)
  loaded = tf.saved_model.load(str(shipped['serving_dir']))
  # The eval split's records, in the split's order (its images' contents:
  # trainer/data.load_split), through serving.
  records = [r.numpy() for r in tf.data.TFRecordDataset(
      shipped['eval_files'], compression_type='GZIP')]
  raws, _ = preprocessing.parse_examples(tf.constant(records))
  records = [record for _, record in sorted(
      zip([data.content_key(raw).numpy() for raw in raws], records))]
  out = loaded.signatures[constants.EXAMPLES_SIGNATURE](
      **{constants.EXAMPLES_INPUT: tf.constant(records)})
  probability = out[constants.PROBABILITY_OUTPUT].numpy()
  np.testing.assert_allclose(probability, expected, atol=run.SERVING_TOLERANCE,
                             rtol=0)
  # The threshold was chosen on these calibrated scores, and labels follow.
  point = run.threshold_lib.choose_threshold(
      expected, labels, info['operating_point']['target_sensitivity'],
      margin=run.SERVING_TOLERANCE)
  assert info['threshold'] == pytest.approx(point.threshold, abs=1e-9)
  pneumonia = constants.LABEL_NAMES[constants.PNEUMONIA]
  served_labels = [v.decode() == pneumonia
                   for v in out[constants.LABEL_OUTPUT].numpy()]
  assert served_labels == (probability >= np.float32(info['threshold'])
                           ).tolist()
  assert float(np.mean(probability[labels == 1] >= np.float32(
      info['threshold']))) >= info['operating_point']['target_sensitivity']


def test_the_calibration_record_holds_both_reliability_tables(shipped):
  record = shipped['info']['calibration']
  assert record['fitted_on'] == 'eval' and record['images'] == 20
  for key in ('before', 'after_out_of_fold'):
    table = record[key]['reliability']
    assert len(table) == calibration.BINS
    assert sum(row['count'] for row in table) == 20
    assert 0 <= record[key]['expected_calibration_error'] <= 1
