"""The view model's external cohort: the candidate (and the deployed model)
on the internal test split vs another site's children, the warnings when
the external cohort falls too far below, and that cohort's data.

`build(run)` is None without an external cohort: the page is then what it
was before external cohorts.
"""
import dataclasses
from typing import Any, List, Optional

from components.run_report import evaluation
from components.run_report import figures
from components.run_report import view_ingestion
from components.run_report.evaluation import CohortGap
from components.run_report.run import Run
from contract import layout


@dataclasses.dataclass(frozen=True)
class CohortRow:
  """One overall metric on both cohorts; differences are external minus
  internal (None where either is missing)."""
  label: str
  digits: int
  internal: Any
  external: Any
  difference: Optional[float]
  baseline_internal: Any = None
  baseline_external: Any = None
  baseline_difference: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class External:
  evaluated: bool  # TFMA metrics of the external cohort were read
  has_baseline: bool  # the deployed model was evaluated on either cohort
  threshold: Optional[float]  # the shipped one, for both cohorts
  rows: List[CohortRow]
  gaps: List[CohortGap]  # AUC and specificity, with their margins
  has_matrix: bool  # a confusion matrix of the external cohort
  ingestion: Optional[view_ingestion.Ingestion]  # its ingestion report

  @property
  def warnings(self) -> List[CohortGap]:
    """The gaps beyond their margin."""
    return [gap for gap in self.gaps if gap.exceeded]


def _difference(external: Any, internal: Any) -> Optional[float]:
  if figures.is_number(external) and figures.is_number(internal):
    return external - internal
  return None


def _rows(run: Run, metrics, has_baseline: bool) -> List[CohortRow]:
  rows = []
  for name, label in metrics:
    values = [evaluation.metric(run, layout.OVERALL, layout.CANDIDATE, name,
                                cohort)
              for cohort in (evaluation.INTERNAL, evaluation.EXTERNAL)]
    row = CohortRow(label, 0 if name == 'example_count' else 4, *values,
                    _difference(values[1], values[0]))
    if has_baseline:
      base = [evaluation.metric(run, layout.OVERALL, layout.BASELINE, name,
                                cohort)
              for cohort in (evaluation.INTERNAL, evaluation.EXTERNAL)]
      row = dataclasses.replace(
          row, baseline_internal=base[0], baseline_external=base[1],
          baseline_difference=_difference(base[1], base[0]))
    rows.append(row)
  return rows


def build(run: Run, metrics) -> Optional[External]:
  """None without an external cohort.

  Args:
    run: the run.
    metrics: (TFMA metric name, label) of the rows, in order (the test
      split's table's, view.TEST_METRICS).
  """
  if not evaluation.has_external(run):
    return None
  has_baseline = (evaluation.has_baseline(run)
                  or evaluation.has_baseline(run, evaluation.EXTERNAL))
  return External(
      evaluated=bool(run.external_metrics), has_baseline=has_baseline,
      threshold=evaluation.threshold(run),
      rows=_rows(run, metrics, has_baseline),
      gaps=evaluation.cohort_gaps(run),
      has_matrix=evaluation.matrix_at_threshold(
          run, cohort=evaluation.EXTERNAL) is not None,
      ingestion=view_ingestion.from_report(run.external_ingestion))
