"""95 % bootstrap confidence intervals of a slice's metrics, from what TFMA
already wrote: no second pass over the examples, no extra Evaluator time.

TFMA keeps, per slice, two summaries that are exact for the metrics here:
- the confusion matrix at the operating threshold (tp, fn, tn, fp): every
  image falls in one of its four cells, and sensitivity, specificity,
  precision and accuracy depend on nothing else;
- the calibration histogram (CalibrationPlot: 1,000 score bins of width
  0.001, plus one below 0 and one above 1) with the images and positives
  in each bin: the (label, score bin) of every image, enough for the AUC
  up to ties inside a bin (counted half, as the Mann-Whitney AUC does).

A resample draws the slice's n images with replacement, i.e. multinomial
counts over those cells; the interval is the 2.5th and 97.5th percentile
of the metric over RESAMPLES resamples (percentile bootstrap), with a fixed
seed, so the run report's card and the pushed one agree. Resamples in which
a metric is undefined (no positive drawn, say) are left out.
"""
import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
# Fewer defined resamples than this share: no interval (a slice of one or
# two images, or one class only).
MIN_DEFINED = 0.5
# The confusion-matrix metrics and their (numerator, denominator) cells.
RATES = {
    'sensitivity': (('tp',), ('tp', 'fn')),
    'specificity': (('tn',), ('tn', 'fp')),
    'precision': (('tp',), ('tp', 'fp')),
    'accuracy': (('tp', 'tn'), ('tp', 'fn', 'tn', 'fp')),
}
_CELLS = ('tp', 'fn', 'tn', 'fp')


@dataclasses.dataclass(frozen=True)
class Interval:
  low: float
  high: float


def _percentiles(values: np.ndarray) -> Optional[Interval]:
  defined = values[np.isfinite(values)]
  if not len(values) or len(defined) < MIN_DEFINED * len(values):
    return None
  tail = (1 - LEVEL) / 2 * 100
  low, high = np.percentile(defined, [tail, 100 - tail])
  return Interval(float(low), float(high))


def _resample(counts: np.ndarray) -> np.ndarray:
  """RESAMPLES multinomial draws of counts.sum() items over the cells."""
  total = int(counts.sum())
  rng = np.random.default_rng(SEED)
  return rng.multinomial(total, counts / total, size=RESAMPLES)


def rate_intervals(matrix: Optional[Dict[str, float]]
                   ) -> Dict[str, Optional[Interval]]:
  """{metric of RATES: interval} of a confusion matrix at the threshold."""
  counts = np.array([float((matrix or {}).get(c) or 0) for c in _CELLS])
  if counts.sum() < 1:
    return {name: None for name in RATES}
  drawn = dict(zip(_CELLS, _resample(np.round(counts)).T.astype(float)))
  out = {}
  with np.errstate(divide='ignore', invalid='ignore'):
    for name, (top, bottom) in RATES.items():
      numerator = sum(drawn[c] for c in top)
      denominator = sum(drawn[c] for c in bottom)
      out[name] = _percentiles(np.where(denominator > 0,
                                        numerator / denominator, np.nan))
  return out


def auc_values(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
  """AUC of score-ordered bins (last axis): the chance that a positive
  scores above a negative, ties in a bin counting half; NaN without both
  classes."""
  below = np.cumsum(negatives, axis=-1) - negatives
  pairs = (positives * (below + 0.5 * negatives)).sum(axis=-1)
  both = positives.sum(axis=-1) * negatives.sum(axis=-1)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(both > 0, pairs / both, np.nan)


def auc_interval(buckets: Optional[Sequence[Dict[str, float]]]
                 ) -> Optional[Interval]:
  """The AUC's interval from TFMA's calibration buckets ({'lower',
  'weight', 'labels'}, as components/evaluator/results.py reads them)."""
  filled = sorted((b for b in buckets or [] if (b.get('weight') or 0) > 0),
                  key=lambda b: b.get('lower', 0.0))
  if not filled:
    return None
  positives = np.array([round(b.get('labels') or 0) for b in filled], float)
  negatives = np.array([round(b['weight']) for b in filled], float) - positives
  if not positives.sum() or not negatives.clip(0).sum():
    return None
  drawn = _resample(np.concatenate([positives, negatives.clip(0)]))
  bins = len(filled)
  return _percentiles(auc_values(drawn[:, :bins], drawn[:, bins:]))
