"""Probability calibration on the eval split: Platt or temperature scaling.

Class weights and early stopping on AUC leave the model's probabilities
ranking well but not reading as a risk. A monotone map of the logit z,

  p = sigmoid(slope * z + intercept)      (temperature: intercept 0),

fitted on the eval split by maximum likelihood (Platt's targets
(N+ + 1) / (N+ + 2) and 1 / (N- + 2), so a separable split keeps a finite
slope), changes no ranking (AUC, and the operating point's sensitivity and
specificity, stay as they are) but changes what `pneumonia_probability`
says. The serving graph applies the same map (trainer/signatures.py); the
operating threshold is chosen after it, on the calibrated eval scores.

It reads as a risk at the eval split's prevalence (our site's); another
site's prevalence differs, which is what site calibration of the threshold
is for.

How well it works is measured without using the same images twice: the
eval split is cut into two folds, each fold's probabilities come from a map
fitted on the other, and the reliability table (10 equal-width bins),
expected calibration error and Brier score are reported before and after;
the shipped map is then fitted on the whole split. Pure numpy.
"""
from typing import Any, Dict, List, NamedTuple, Sequence

import numpy as np

from contract import options

NONE, PLATT, TEMPERATURE = options.CALIBRATIONS
BINS = 10
FOLDS = 2
_LOGIT_CLIP = 50.0  # sigmoid is 1 - 2e-22 there; keeps the fit finite


class Calibration(NamedTuple):
  method: str
  slope: float = 1.0
  intercept: float = 0.0


IDENTITY = Calibration(NONE)


def sigmoid(z) -> np.ndarray:
  z = np.asarray(z, np.float64)
  return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))),
                  np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


def apply(calibration: Calibration, logits) -> np.ndarray:
  """Calibrated probabilities (float64) of logits."""
  return sigmoid(calibration.slope * np.asarray(logits, np.float64) +
                 calibration.intercept)


def fit(logits: Sequence[float], labels: Sequence[int],
        method: str) -> Calibration:
  """The map fitted by Newton's method on the log loss.

  Raises:
    ValueError: unknown method, or a fit whose slope is not positive (it
      would reverse the ranking: the split does not support a map).
  """
  if method not in options.CALIBRATIONS:
    raise ValueError(f'unknown calibration {method!r}; choose from '
                     f'{", ".join(options.CALIBRATIONS)}')
  if method == NONE:
    return IDENTITY
  z = np.clip(np.asarray(logits, np.float64), -_LOGIT_CLIP, _LOGIT_CLIP)
  y = np.asarray(labels, np.float64)
  positives = float(y.sum())
  negatives = float(y.size - positives)
  target = np.where(y == 1, (positives + 1) / (positives + 2),
                    1 / (negatives + 2))
  features = np.stack([z, np.ones_like(z)], axis=1)
  if method == TEMPERATURE:
    features = features[:, :1]
  params = np.zeros(features.shape[1])
  params[0] = 1.0

  def loss(theta):
    s = features @ theta
    # log(1 + e^s) - target * s, stable.
    return float(np.sum(np.logaddexp(0, s) - target * s))

  for _ in range(100):
    p = sigmoid(features @ params)
    gradient = features.T @ (p - target)
    hessian = (features * (p * (1 - p))[:, None]).T @ features
    hessian += 1e-9 * np.eye(len(params))
    step = np.linalg.solve(hessian, gradient)
    scale, before = 1.0, loss(params)
    while scale > 1e-6 and loss(params - scale * step) > before:
      scale /= 2
    params = params - scale * step
    if np.max(np.abs(scale * step)) < 1e-10:
      break
  slope = float(params[0])
  intercept = float(params[1]) if method == PLATT else 0.0
  if not slope > 0:
    raise ValueError(f'the {method} fit has slope {slope:.3g}: these scores '
                     'do not support a calibration map')
  return Calibration(method, slope, intercept)


def reliability(probabilities, labels, bins: int = BINS
                ) -> List[Dict[str, Any]]:
  """Per equal-width bin of predicted probability: count, mean predicted,
  observed share of PNEUMONIA (None for an empty bin)."""
  p = np.asarray(probabilities, np.float64)
  y = np.asarray(labels, np.float64)
  index = np.minimum((p * bins).astype(int), bins - 1)
  table = []
  for b in range(bins):
    inside = index == b
    count = int(inside.sum())
    table.append({'lower': b / bins, 'upper': (b + 1) / bins, 'count': count,
                  'mean_predicted': float(p[inside].mean()) if count else None,
                  'observed': float(y[inside].mean()) if count else None})
  return table


def expected_calibration_error(table: List[Dict[str, Any]]) -> float:
  total = sum(row['count'] for row in table)
  return float(sum(row['count'] * abs(row['mean_predicted'] - row['observed'])
                   for row in table if row['count']) / max(total, 1))


def _quality(probabilities, labels) -> Dict[str, Any]:
  table = reliability(probabilities, labels)
  return {'reliability': table,
          'expected_calibration_error': expected_calibration_error(table),
          'brier': float(np.mean((np.asarray(probabilities, np.float64) -
                                  np.asarray(labels, np.float64)) ** 2))}


def out_of_fold(logits, labels, method: str) -> np.ndarray:
  """Each example's probability from a map fitted on the other fold."""
  z = np.asarray(logits, np.float64)
  y = np.asarray(labels)
  fold = np.arange(z.size) % FOLDS
  calibrated = np.empty_like(z)
  for k in range(FOLDS):
    held = fold == k
    calibrated[held] = apply(fit(z[~held], y[~held], method), z[held])
  return calibrated


def calibrate(logits, labels, method: str):
  """(Calibration fitted on all of the split, model_info's record of it)."""
  z = np.asarray(logits, np.float64)
  y = np.asarray(labels)
  fitted = fit(z, y, method)
  record = {'method': method, 'slope': fitted.slope,
            'intercept': fitted.intercept, 'fitted_on': 'eval',
            'images': int(z.size), 'bins': BINS, 'folds': FOLDS,
            'before': _quality(sigmoid(z), y)}
  if method != NONE:
    record['after_out_of_fold'] = _quality(out_of_fold(z, y, method), y)
  return fitted, record
