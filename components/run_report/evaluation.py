"""What a run's evaluation says: verdict, threshold and rates per slice.

Shared by the view model (view.py) and the figures (drawing.py), so the
page's tables and its figures read the same numbers the same way. A run may
have two cohorts: the internal test split (layout.COHORT_INTERNAL, the
default everywhere) and an external one (layout.COHORT_EXTERNAL, another
site's children); `cohort` picks whose TFMA output a function reads.
"""
import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from components.run_report import figures
from components.run_report.run import Run
from contract import layout

SENSITIVITY, SPECIFICITY = 'sensitivity', 'specificity'
# Order of the subtype slices; others come after, by name.
SUBTYPES = ('bacteria', 'virus', 'normal')
INTERNAL, EXTERNAL = layout.COHORT_INTERNAL, layout.COHORT_EXTERNAL

# How far the external cohort may fall below the internal test split before
# the report warns (the candidate, overall): AUC, and specificity at the
# shipped threshold. A gap larger than the margin warns; equal does not.
EXTERNAL_AUC_MARGIN = 0.02
EXTERNAL_SPECIFICITY_MARGIN = 0.05


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


def metrics_of(run: Run, cohort: str = INTERNAL) -> Dict:
  """TFMA's metrics of a cohort ({} when absent)."""
  return (run.external_metrics if cohort == EXTERNAL else run.metrics) or {}


def slice_plots(run: Run, slice_name: str, cohort: str = INTERNAL,
                model: str = layout.CANDIDATE) -> Dict[str, List]:
  """TFMA's plots of a slice of a cohort and model ({} if none)."""
  if cohort == EXTERNAL:
    plots = (run.external_baseline_plots if model == layout.BASELINE
             else run.external_plots)
  else:
    plots = run.baseline_plots if model == layout.BASELINE else run.plots
  return (plots or {}).get(slice_name) or {}


def overall_plots(run: Run, cohort: str = INTERNAL,
                  model: str = layout.CANDIDATE) -> Dict[str, List]:
  """TFMA's plots of the overall slice of a cohort and model ({} if none)."""
  return slice_plots(run, layout.OVERALL, cohort, model)


def metric(run: Run, slice_name: str, model: str, name: str,
           cohort: str = INTERNAL) -> Any:
  return metrics_of(run, cohort).get((slice_name, model, name))


def has_baseline(run: Run, cohort: str = INTERNAL) -> bool:
  """Whether TFMA evaluated a deployed model beside the candidate."""
  return any(key[1] == layout.BASELINE for key in metrics_of(run, cohort))


def matrix_at_threshold(run: Run, slice_name: str = layout.OVERALL,
                        model: str = layout.CANDIDATE,
                        cohort: str = INTERNAL
                        ) -> Optional[Dict[str, float]]:
  """The confusion matrix TFMA computed at the operating threshold."""
  matrices = metric(run, slice_name, model, 'confusion_matrix', cohort)
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
                model: str = layout.CANDIDATE,
                cohort: str = INTERNAL) -> Rates:
  """n, positives, negatives, sensitivity, specificity, accuracy of a slice
  at the operating threshold (TFMA's metrics, else its confusion matrix)."""
  matrix = matrix_at_threshold(run, slice_name, model, cohort)
  from_matrix = figures.rates(matrix) if matrix else {}
  n = metric(run, slice_name, model, 'example_count', cohort)
  positives = negatives = None
  if matrix:
    positives = matrix['tp'] + matrix['fn']
    negatives = matrix['tn'] + matrix['fp']
    if n is None:
      n = positives + negatives
  values = {}
  for key, name in ((SENSITIVITY, 'recall'), (SPECIFICITY, 'specificity'),
                    ('accuracy', 'binary_accuracy')):
    value = metric(run, slice_name, model, name, cohort)
    if not figures.is_number(value) and from_matrix.get(key) is not None:
      value = from_matrix[key]
    values[key] = value
  return Rates(n=n, positives=positives, negatives=negatives, **values)


def _subtype_order(slice_name: str) -> Tuple[int, str]:
  value = slice_name.split('=', 1)[-1]
  order = SUBTYPES.index(value) if value in SUBTYPES else len(SUBTYPES)
  return order, value


def slices(run: Run, cohort: str = INTERNAL) -> List[str]:
  """Every evaluated slice: overall first, then by feature and subtype."""
  return sorted({key[0] for key in metrics_of(run, cohort)},
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


# --- the external cohort ------------------------------------------------------


def decision_cohorts(run: Run) -> Dict[str, Dict[str, Any]]:
  """blessing_decision.json's `cohorts` ({} in runs from before cohorts)."""
  cohorts = (run.decision or {}).get('cohorts')
  return {name: entry for name, entry in (cohorts or {}).items()
          if isinstance(entry, dict)} if isinstance(cohorts, dict) else {}


def check_cohort(check: Dict[str, Any]) -> str:
  """The cohort a check of the decision was made on (old runs: internal)."""
  return check.get('cohort') or INTERNAL


def has_external(run: Run) -> bool:
  """Whether the run has an external cohort: its examples, its TFMA output,
  or the decision's word for it (an entry that is not `present: false`, or
  a check made on it)."""
  ingestion = run.external_ingestion
  if ingestion and ingestion.get(layout.COHORT_PRESENT, 1) != 0:
    return True
  if run.external_metrics:
    return True
  entry = decision_cohorts(run).get(EXTERNAL)
  if entry is not None and entry.get('present', True) is not False:
    return True
  return any(check_cohort(c) == EXTERNAL
             for c in (run.decision or {}).get('checks') or []
             if isinstance(c, dict))


@dataclasses.dataclass(frozen=True)
class CohortGap:
  """How far the external cohort is below the internal one on a metric."""
  metric: str  # as the page names it
  internal: Any
  external: Any
  margin: float

  @property
  def gap(self) -> Optional[float]:
    """internal - external (positive: external is lower); None if either
    is missing or undefined."""
    if figures.is_number(self.internal) and figures.is_number(self.external):
      return self.internal - self.external
    return None

  @property
  def exceeded(self) -> bool:
    # Rounded: 0.91 - 0.89 is 0.0200000000000000178 in floating point.
    gap = self.gap
    return gap is not None and round(gap, 9) > self.margin


def cohort_gaps(run: Run) -> List[CohortGap]:
  """The candidate's AUC and specificity at the shipped threshold, internal
  vs external (overall), with the margin each may drop by."""
  auc = [metric(run, layout.OVERALL, layout.CANDIDATE, 'auc', cohort)
         for cohort in (INTERNAL, EXTERNAL)]
  specificity = [slice_rates(run, layout.OVERALL, cohort=cohort).specificity
                 for cohort in (INTERNAL, EXTERNAL)]
  return [CohortGap('AUC', *auc, EXTERNAL_AUC_MARGIN),
          CohortGap(SPECIFICITY, *specificity, EXTERNAL_SPECIFICITY_MARGIN)]
