"""The operating threshold: missing a pneumonia is worse than a false alarm.

On the split it is chosen on (the eval split, or the calibration half of an
external cohort: `--threshold-from`), the HIGHEST threshold whose
sensitivity (recall of PNEUMONIA, predicting PNEUMONIA when probability >=
threshold) reaches the target is picked, with the specificity that costs. A
higher threshold can only lower sensitivity, so the highest one that still
reaches the target is the one with the best specificity among those that do.

On the ground floor, pure numpy, so that the Trainer (trainer/threshold.py)
and the SiteCalibration component both use this one rule.
"""
import math
from typing import NamedTuple, Sequence

import numpy as np

# Training-path and serving-path probabilities agree to this (a test in
# trainer/run_test.py holds it); the margin both the Trainer and
# SiteCalibration subtract from the threshold they choose.
SERVING_TOLERANCE = 1e-5
# Fewest PNEUMONIA images the threshold may be chosen on when it comes from
# an external cohort's calibration half (`--threshold-from external`): with
# 20, a target of 0.95 is "miss at most one".
MIN_THRESHOLD_POSITIVES = 20


class OperatingPoint(NamedTuple):
  threshold: float
  target_sensitivity: float
  sensitivity: float  # on the split it was chosen on
  specificity: float
  positives: int
  negatives: int


def choose_threshold(scores: Sequence[float], labels: Sequence[int],
                     target_sensitivity: float,
                     margin: float = 0.0) -> OperatingPoint:
  """Highest threshold t with mean(scores[labels == 1] >= t) >= target.

  Args:
    scores: predicted probabilities of PNEUMONIA.
    labels: 1 for PNEUMONIA, 0 for NORMAL.
    target_sensitivity: in (0, 1].
    margin: subtracted from t (sensitivity and specificity are reported at
      the lowered threshold). The Trainer scores through the training path,
      TF Serving through the serving graph; the two agree to
      SERVING_TOLERANCE, so a margin of that size keeps the examples that
      define t on the PNEUMONIA side when served.

  Raises:
    ValueError: no PNEUMONIA example to measure sensitivity on, or a bad
      target.
  """
  if not 0.0 < target_sensitivity <= 1.0:
    raise ValueError(f'target sensitivity must be in (0, 1], got '
                     f'{target_sensitivity}')
  scores = np.asarray(scores, dtype=np.float64)
  labels = np.asarray(labels)
  positives = np.sort(scores[labels == 1])[::-1]  # highest first
  negatives = scores[labels == 0]
  if positives.size == 0:
    raise ValueError('cannot choose a threshold: no PNEUMONIA example')
  # The k highest positive scores must be >= t; t = the k-th highest score.
  k = math.ceil(target_sensitivity * positives.size - 1e-9)
  threshold = max(0.0, float(positives[k - 1]) - margin)
  sensitivity = float(np.mean(positives >= threshold))
  specificity = (float(np.mean(negatives < threshold)) if negatives.size
                 else float('nan'))
  return OperatingPoint(threshold, float(target_sensitivity), sensitivity,
                        specificity, int(positives.size), int(negatives.size))
