"""bench/generalisation's scoring: the exported SavedModel as a user calls it
(`serving_default` on image bytes), AUC, and sensitivity/specificity at the
model's shipped threshold."""
from typing import Any, Dict, List, Sequence

import numpy as np
import tensorflow as tf

from contract import names as constants


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
  """ROC AUC: the probability that a positive outscores a negative (ties
  count half)."""
  positive, negative = scores[labels == 1], scores[labels == 0]
  greater = (positive[:, None] > negative[None, :]).sum()
  ties = (positive[:, None] == negative[None, :]).sum()
  return float((greater + 0.5 * ties) / (positive.size * negative.size))


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


def cohort_metrics(model_dir: str, raws, labels) -> Dict[str, float]:
  probabilities, positive = serve(model_dir, raws)
  return {
      'auc': auc(labels, probabilities),
      'sensitivity': float(positive[labels == 1].mean()),
      'specificity': float((~positive[labels == 0]).mean()),
      'images': int(labels.size),
      'positives': int((labels == 1).sum()),
  }


def worst_fall(history: List[Dict[str, Any]]) -> float:
  """The largest drop of val AUC from one epoch to the next (0 if none)."""
  values = [h['val_auc'] for h in history]
  return float(max([0.0] + [a - b for a, b in zip(values, values[1:])]))
