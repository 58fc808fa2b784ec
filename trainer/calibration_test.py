"""Platt and temperature scaling: what they recover, and when they refuse."""
import numpy as np
import pytest

from trainer import calibration


def _cohort(n, slope, intercept, seed=0):
  """Logits whose true risk is sigmoid(slope * z + intercept)."""
  rng = np.random.default_rng(seed)
  z = rng.normal(0, 2, n)
  labels = (rng.random(n) < calibration.sigmoid(slope * z + intercept))
  return z, labels.astype(int)


def test_platt_recovers_the_map_that_generated_the_labels():
  z, labels = _cohort(40000, 0.5, -1.0)
  fitted = calibration.fit(z, labels, calibration.PLATT)
  assert fitted.slope == pytest.approx(0.5, abs=0.03)
  assert fitted.intercept == pytest.approx(-1.0, abs=0.05)


def test_temperature_has_no_intercept():
  z, labels = _cohort(20000, 0.5, 0.0)
  fitted = calibration.fit(z, labels, calibration.TEMPERATURE)
  assert fitted.intercept == 0.0
  assert fitted.slope == pytest.approx(0.5, abs=0.03)


def test_none_is_the_identity():
  z = np.array([-3.0, 0.0, 2.5])
  assert calibration.fit(z, [0, 1, 1], calibration.NONE) == (
      calibration.IDENTITY)
  np.testing.assert_allclose(calibration.apply(calibration.IDENTITY, z),
                             1 / (1 + np.exp(-z)))


def test_the_map_keeps_the_ranking():
  z, labels = _cohort(2000, 0.3, 0.7)
  fitted = calibration.fit(z, labels, calibration.PLATT)
  assert np.array_equal(np.argsort(calibration.apply(fitted, z),
                                   kind='stable'),
                        np.argsort(z, kind='stable'))


def test_a_separable_split_keeps_a_finite_slope():
  z = np.concatenate([np.linspace(-8, -1, 50), np.linspace(1, 8, 150)])
  labels = np.array([0] * 50 + [1] * 150)
  fitted = calibration.fit(z, labels, calibration.PLATT)
  assert 0 < fitted.slope < 20 and np.isfinite(fitted.intercept)


def test_scores_that_rank_backwards_are_refused():
  z, labels = _cohort(2000, -1.0, 0.0)
  with pytest.raises(ValueError, match='slope'):
    calibration.fit(z, labels, calibration.PLATT)


def test_unknown_method_is_refused():
  with pytest.raises(ValueError, match='unknown calibration'):
    calibration.fit([0.0, 1.0], [0, 1], 'isotonic')


def test_extreme_logits_do_not_overflow():
  z = np.array([-1e4, -60.0, 60.0, 1e4])
  p = calibration.apply(calibration.Calibration('platt', 0.5, 0.1), z)
  assert np.all(np.isfinite(p)) and p[0] < 1e-10 and p[-1] > 1 - 1e-10


def test_reliability_table_counts_every_example_once():
  p = np.array([0.0, 0.05, 0.15, 0.95, 1.0, 0.5])
  table = calibration.reliability(p, [0, 0, 1, 1, 1, 0])
  assert [row['count'] for row in table] == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
  assert table[0]['observed'] == 0.0 and table[9]['observed'] == 1.0
  assert table[2]['mean_predicted'] is None


def test_an_overconfident_model_is_better_calibrated_out_of_fold():
  # The model's logit is 4x the true one: far too sure of itself.
  z, labels = _cohort(6000, 0.25, 0.0, seed=3)
  fitted, record = calibration.calibrate(z, labels, calibration.PLATT)
  before = record['before']['expected_calibration_error']
  after = record['after_out_of_fold']['expected_calibration_error']
  assert before > 0.1 and after < 0.03, (before, after)
  assert (record['after_out_of_fold']['brier'] <
          record['before']['brier'])
  assert record['slope'] == fitted.slope and record['images'] == 6000
  assert sum(r['count'] for r in record['before']['reliability']) == 6000


def test_no_calibration_records_only_before():
  z, labels = _cohort(100, 1.0, 0.0)
  fitted, record = calibration.calibrate(z, labels, calibration.NONE)
  assert fitted == calibration.IDENTITY
  assert 'after_out_of_fold' not in record and record['method'] == 'none'
