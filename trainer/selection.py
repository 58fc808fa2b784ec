"""What the Trainer ships: the best architecture, or the mean of all of them.

Every trained architecture is scored once on the eval split (logits,
trainer/ensemble.py). The best single architecture is the one with the
highest validation AUC of training (the comparison table's choice). With
two or more architectures and `settings.ensemble`, their mean probability is
a candidate too, shipped when its eval AUC (exact, from ranks) is higher than
the best single one's on the same images. Both were early-stopped on this
split, so both AUCs are optimistic alike; the test split and an external
cohort (the Evaluator) say how either does on other children.
"""
from typing import Any, Dict, List, NamedTuple, Optional

import keras
import numpy as np

from contract import names as constants
from trainer import data
from trainer import ensemble

ENSEMBLE = 'ensemble'  # model_info's `architecture` of a shipped ensemble


class Choice(NamedTuple):
  scorer: ensemble.Scorer
  architecture: str  # one of the trained names, or ENSEMBLE
  members: List[str]
  logits: np.ndarray  # the shipped scorer's eval-split logits, float64
  labels: np.ndarray
  record: Optional[Dict[str, Any]]  # model_info['ensemble'], if tried


def exact_auc(scores, labels) -> float:
  """Area under the ROC curve from ranks (ties count half)."""
  scores = np.asarray(scores, np.float64)
  labels = np.asarray(labels)
  positives = int(np.sum(labels == constants.PNEUMONIA))
  negatives = labels.size - positives
  if not positives or not negatives:
    return float('nan')
  order = np.argsort(scores, kind='mergesort')
  ranks = np.empty(scores.size, np.float64)
  sorted_scores = scores[order]
  # Average ranks over ties.
  _, first, counts = np.unique(sorted_scores, return_index=True,
                               return_counts=True)
  average = first + (counts - 1) / 2.0 + 1
  ranks[order] = np.repeat(average, counts)
  rank_sum = ranks[labels == constants.PNEUMONIA].sum()
  return float((rank_sum - positives * (positives + 1) / 2) /
               (positives * negatives))


def choose(trained: Dict[str, keras.Model], best: str,
           evaluation: data.Split, batch_size: int,
           try_ensemble: bool, views: int = 1) -> Choice:
  """The scorer to ship (over `views` test-time views), its eval logits,
  and the ensemble's record."""
  names = list(trained)
  everyone = ensemble.Scorer([trained[name] for name in names], views)
  logits = ensemble.member_logits(
      everyone, data.evaluation_batches(evaluation, batch_size))
  labels = np.array([int(label) for _, label in
                     evaluation.dataset.as_numpy_iterator()])
  single = logits[:, names.index(best)]
  if not try_ensemble or len(names) < 2:
    return Choice(ensemble.Scorer([trained[best]], views), best, [best],
                  single, labels, None)
  mean = ensemble.mean_probability_logit_np(logits)
  single_auc, mean_auc = exact_auc(single, labels), exact_auc(mean, labels)
  chosen = bool(mean_auc > single_auc)
  record = {'members': names, 'eval_auc': mean_auc, 'best_single': best,
            'best_single_eval_auc': single_auc,
            'member_eval_auc': {name: exact_auc(logits[:, k], labels)
                                for k, name in enumerate(names)},
            'chosen': chosen, 'images': int(labels.size)}
  if chosen:
    return Choice(everyone, ENSEMBLE, names, mean, labels, record)
  return Choice(ensemble.Scorer([trained[best]], views), best, [best],
                single, labels, record)
