"""bench/generalisation's scoring: the exported SavedModel as a user calls it
(`serving_default` on image bytes), AUC, and sensitivity/specificity at the
model's shipped threshold, and calibration (expected calibration error over
10 bins, before and after the model's own calibration map; Brier)."""
from typing import Any, Dict, List, Sequence

import numpy as np
import tensorflow as tf

from contract import names as constants
from trainer import calibration
from trainer import selection


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """ROC AUC from ranks (ties count half): the Trainer's own."""
  return selection.exact_auc(scores, labels)


def uncalibrated(probabilities: np.ndarray, info: Dict[str, Any]
                 ) -> np.ndarray:
  """The probabilities before the model's calibration map (model_info's
  `calibration`), by inverting it: z = (logit(p) - intercept) / slope."""
  record = info.get('calibration') or {}
  if record.get('method', calibration.NONE) == calibration.NONE:
    return probabilities
  p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1 - 1e-12)
  z = (np.log(p) - np.log1p(-p) - record['intercept']) / record['slope']
  return calibration.sigmoid(z)


def _ece(probabilities, labels) -> float:
  return calibration.expected_calibration_error(
      calibration.reliability(probabilities, labels))


def serve(model_dir: str, raws: Sequence[bytes], batch: int = 64):
  """(probabilities, predicted PNEUMONIA) from serving_default on bytes."""
  signature = tf.saved_model.load(model_dir).signatures[
      constants.SERVING_SIGNATURE]
  probabilities, positive = [], []
  pneumonia = constants.LABEL_NAMES[constants.PNEUMONIA].encode()
  for start in range(0, len(raws), batch):
    out = signature(**{constants.SERVING_INPUT: tf.constant(
        list(raws[start:start + batch]))})
    probabilities += list(out[constants.PROBABILITY_OUTPUT].numpy())
    positive += [label == pneumonia
                 for label in out[constants.LABEL_OUTPUT].numpy()]
  return np.array(probabilities), np.array(positive)


def cohort_metrics(model_dir: str, raws, labels,
                   info: Dict[str, Any]) -> Dict[str, float]:
  probabilities, positive = serve(model_dir, raws)
  return {
      'auc': auc(labels, probabilities),
      'ece': _ece(probabilities, labels),
      'ece_uncalibrated': _ece(uncalibrated(probabilities, info), labels),
      'brier': float(np.mean((probabilities - labels) ** 2)),
      'sensitivity': float(positive[labels == 1].mean()),
      'specificity': float((~positive[labels == 0]).mean()),
      'images': int(labels.size),
      'positives': int((labels == 1).sum()),
  }


def worst_fall(history: List[Dict[str, Any]]) -> float:
  """The largest drop of val AUC from one epoch to the next (0 if none)."""
  values = [h['val_auc'] for h in history]
  return float(max([0.0] + [a - b for a, b in zip(values, values[1:])]))
