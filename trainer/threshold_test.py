"""Tests of trainer.threshold.choose_threshold on constructed scores.

The specification: the HIGHEST threshold t with
mean(scores[labels == 1] >= t) >= target; specificity counts negatives
strictly below t.
"""
import math

import numpy as np
import pytest

from trainer import threshold as threshold_lib


def _sensitivity(positives, t) -> float:
  return float(np.mean(np.asarray(positives) >= t))


def test_twenty_distinct_positives_target_095_is_the_19th_highest():
  positives = np.linspace(0.05, 0.99, 20)  # distinct
  rng = np.random.default_rng(0)
  shuffled = rng.permutation(positives)
  negatives = np.array([0.01, 0.2, 0.5, 0.9])
  scores = np.concatenate([shuffled, negatives])
  labels = np.array([1] * 20 + [0] * 4)

  point = threshold_lib.choose_threshold(scores, labels, 0.95)

  highest_first = np.sort(positives)[::-1]
  assert point.threshold == highest_first[18]  # the 19th highest
  assert _sensitivity(positives, point.threshold) >= 0.95
  # The next higher candidate, the 18th highest, misses the target.
  assert _sensitivity(positives, highest_first[17]) < 0.95
  assert point.sensitivity == pytest.approx(19 / 20)
  assert point.target_sensitivity == 0.95
  assert (point.positives, point.negatives) == (20, 4)
  expected_specificity = np.mean(negatives < point.threshold)
  assert point.specificity == pytest.approx(expected_specificity)


@pytest.mark.parametrize('target, expected', [
    (0.2, 0.9),  # one of five: the top score
    (0.4, 0.8),  # two needed; the tie at 0.8 gives four
    (0.8, 0.8),
    (0.81, 0.5),
    (1.0, 0.5),
])
def test_ties_among_positives(target, expected):
  positives = [0.8, 0.5, 0.9, 0.8, 0.8]
  point = threshold_lib.choose_threshold(positives + [0.1], [1] * 5 + [0],
                                         target)
  assert point.threshold == expected
  assert point.sensitivity == _sensitivity(positives, expected)
  assert point.sensitivity >= target


def test_target_one_is_the_lowest_positive_score():
  scores = [0.7, 0.3, 0.95, 0.41, 0.2, 0.05]
  labels = [1, 1, 1, 1, 0, 0]
  point = threshold_lib.choose_threshold(scores, labels, 1.0)
  assert point.threshold == 0.3
  assert point.sensitivity == 1.0


def test_specificity_counts_negatives_strictly_below():
  # The threshold lands on 0.6; a negative scoring exactly 0.6 is predicted
  # PNEUMONIA (>= threshold), so it is not a true negative.
  scores = [0.6, 0.9, 0.6, 0.1, 0.3, 0.7]
  labels = [1, 1, 0, 0, 0, 0]
  point = threshold_lib.choose_threshold(scores, labels, 1.0)
  assert point.threshold == 0.6
  assert point.specificity == pytest.approx(2 / 4)
  assert point.negatives == 4


def test_no_negatives_gives_nan_specificity():
  point = threshold_lib.choose_threshold([0.2, 0.4], [1, 1], 0.5)
  assert point.threshold == 0.4
  assert math.isnan(point.specificity)
  assert point.negatives == 0


@pytest.mark.parametrize('labels', [[0, 0, 0], []])
def test_no_positives_is_an_error(labels):
  with pytest.raises(ValueError, match='no PNEUMONIA'):
    threshold_lib.choose_threshold([0.1, 0.5, 0.9][:len(labels)], labels,
                                   0.95)


@pytest.mark.parametrize('target', [0.0, -0.1, 1.0001, 2.0, float('nan')])
def test_bad_target_is_an_error(target):
  with pytest.raises(ValueError, match='target sensitivity'):
    threshold_lib.choose_threshold([0.1, 0.9], [0, 1], target)


@pytest.mark.parametrize('seed', range(8))
def test_brute_force_no_higher_threshold_reaches_the_target(seed):
  rng = np.random.default_rng(seed)
  n = int(rng.integers(1, 60))
  # Coarse scores make ties common; some seeds use continuous ones.
  if seed % 2:
    scores = rng.integers(0, 12, n) / 11.0
  else:
    scores = rng.random(n)
  labels = rng.integers(0, 2, n)
  labels[rng.integers(0, n)] = 1  # at least one positive
  positives = scores[labels == 1]
  negatives = scores[labels == 0]
  targets = ([round(float(t), 3) for t in rng.random(5)] +
             [1.0, 0.95, 0.5] + [k / positives.size
                                 for k in range(1, positives.size + 1)])
  candidates = np.unique(np.concatenate([scores, [0.0, 1.0]]))
  for target in targets:
    target = max(target, 1e-3)
    point = threshold_lib.choose_threshold(scores, labels, target)
    t = point.threshold
    assert _sensitivity(positives, t) >= target, (seed, target)
    higher = np.concatenate([candidates[candidates > t],
                             [np.nextafter(t, np.inf)]])
    reaching = [c for c in higher if _sensitivity(positives, c) >= target]
    assert not reaching, (seed, target, t, reaching)
    assert point.sensitivity == _sensitivity(positives, t)
    if negatives.size:
      assert point.specificity == pytest.approx(np.mean(negatives < t))
    assert (point.positives, point.negatives) == (positives.size,
                                                 negatives.size)


@pytest.mark.parametrize('margin', [1e-5, 0.05])
def test_margin_lowers_the_threshold_and_reports_there(margin):
  # 0.6 is chosen without a margin; a negative at 0.58 is below 0.6 but not
  # below 0.6 - 0.05.
  scores = [0.6, 0.9, 0.58, 0.1, 0.3, 0.7]
  labels = [1, 1, 0, 0, 0, 0]
  plain = threshold_lib.choose_threshold(scores, labels, 1.0)
  point = threshold_lib.choose_threshold(scores, labels, 1.0, margin=margin)
  assert point.threshold == pytest.approx(plain.threshold - margin)
  assert point.sensitivity == 1.0
  negatives = np.array([0.58, 0.1, 0.3, 0.7])
  assert point.specificity == pytest.approx(
      np.mean(negatives < point.threshold))
  assert point.specificity == (0.75 if margin < 0.02 else 0.5)


def test_margin_never_goes_below_zero():
  point = threshold_lib.choose_threshold([0.01, 0.5], [1, 1], 1.0, margin=0.1)
  assert point.threshold == 0.0
  assert point.sensitivity == 1.0
