"""What a run's evaluation says: verdict, threshold and rates per slice.

Shared by the view model (view.py) and the figures (drawing.py), so the
page's tables and its figures read the same numbers the same way.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from components.run_report import figures
from components.run_report.run import Run
from contract import layout

SENSITIVITY, SPECIFICITY = 'sensitivity', 'specificity'
# Order of the subtype slices; others come after, by name.
SUBTYPES = ('bacteria', 'virus', 'normal')


def verdict(run: Run) -> Optional[bool]:
  """True/False as the evaluator decided; None when there is no decision."""
  decision = run.decision or {}
  if isinstance(decision.get('blessed'), bool):
    return decision['blessed']
  blessed = run.blessed_artifact
  return blessed if isinstance(blessed, bool) else None


def threshold(run: Run) -> Optional[float]:
  """The operating threshold: the decision's, else the model's."""
  info = run.model_info or {}
  for value in ((run.decision or {}).get('threshold'), info.get('threshold'),
                (info.get('operating_point') or {}).get('threshold')):
    if figures.is_number(value):
      return float(value)
  return None


def metric(run: Run, slice_name: str, model: str, name: str) -> Any:
  return (run.metrics or {}).get((slice_name, model, name))


def has_baseline(run: Run) -> bool:
  """Whether TFMA evaluated a deployed model beside the candidate."""
  return any(key[1] == layout.BASELINE for key in run.metrics or {})


def matrix_at_threshold(run: Run, slice_name: str = layout.OVERALL,
                        model: str = layout.CANDIDATE
                        ) -> Optional[Dict[str, float]]:
  """The confusion matrix TFMA computed at the operating threshold."""
  matrices = metric(run, slice_name, model, 'confusion_matrix')
  if not matrices:
    return None
  point = threshold(run)
  if point is None or len(matrices) == 1:
    return matrices[0]
  return min(matrices, key=lambda m: abs(m.get('threshold', 0) - point))


@dataclasses.dataclass(frozen=True)
class Rates:
  """A slice at the operating threshold; None where undefined or absent."""
  n: Any = None
  positives: Optional[float] = None
  negatives: Optional[float] = None
  sensitivity: Any = None
  specificity: Any = None
  accuracy: Any = None


def slice_rates(run: Run, slice_name: str,
                model: str = layout.CANDIDATE) -> Rates:
  """n, positives, negatives, sensitivity, specificity, accuracy of a slice
  at the operating threshold (TFMA's metrics, else its confusion matrix)."""
  matrix = matrix_at_threshold(run, slice_name, model)
  from_matrix = figures.rates(matrix) if matrix else {}
  n = metric(run, slice_name, model, 'example_count')
  positives = negatives = None
  if matrix:
    positives = matrix['tp'] + matrix['fn']
    negatives = matrix['tn'] + matrix['fp']
    if n is None:
      n = positives + negatives
  values = {}
  for key, name in ((SENSITIVITY, 'recall'), (SPECIFICITY, 'specificity'),
                    ('accuracy', 'binary_accuracy')):
    value = metric(run, slice_name, model, name)
    if not figures.is_number(value) and from_matrix.get(key) is not None:
      value = from_matrix[key]
    values[key] = value
  return Rates(n=n, positives=positives, negatives=negatives, **values)


def _subtype_order(slice_name: str) -> Tuple[int, str]:
  value = slice_name.split('=', 1)[-1]
  order = SUBTYPES.index(value) if value in SUBTYPES else len(SUBTYPES)
  return order, value


def slices(run: Run) -> List[str]:
  """Every evaluated slice: overall first, then by feature and subtype."""
  return sorted({key[0] for key in run.metrics or {}},
                key=lambda s: (s != layout.OVERALL, s.split('=')[0],
                               _subtype_order(s)))


def subtype_rows(run: Run) -> List[Dict[str, Any]]:
  """Bars of the per-subtype figure (figures.subtype_rates): overall
  sensitivity and specificity, then sensitivity of each pneumonia subtype
  and specificity of NORMAL (the only rate a single-class slice has)."""
  if not run.metrics:
    return []
  baseline = has_baseline(run)
  subtypes = sorted({key[0] for key in run.metrics
                     if key[0].startswith('subtype=')}, key=_subtype_order)
  rows = []
  for slice_name in [layout.OVERALL] + subtypes:
    rates = slice_rates(run, slice_name)
    base = slice_rates(run, slice_name, layout.BASELINE) if baseline else None
    if slice_name == layout.OVERALL:
      kinds = (SENSITIVITY, SPECIFICITY)
    elif slice_name.split('=', 1)[1] == 'normal':
      kinds = (SPECIFICITY,)
    else:
      kinds = (SENSITIVITY,)
    for kind in kinds:
      n = rates.positives if kind == SENSITIVITY else rates.negatives
      rows.append({'slice': slice_name, 'metric': kind,
                   'value': getattr(rates, kind),
                   'n': n if n is not None else rates.n,
                   'baseline_value': getattr(base, kind) if base else None})
  return rows
