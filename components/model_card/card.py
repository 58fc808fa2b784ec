"""The model card's content: `build(run)` from a run's artifacts.

The Run is what components/run_report/reading.read_run reads (one reader
for every artifact), and the numbers are interpreted as the run report
does (its view model and evaluation.py): the card and the report cannot
disagree. Only the confidence intervals are new (intervals.py). Values stay
raw (None where absent); the templates format them.
"""
import collections
import dataclasses
import time
from typing import Any, List, Optional, Tuple

from components.model_card import intervals
from components.model_card import text
from components.run_report import evaluation
from components.run_report import figures
from components.run_report import reading
from components.run_report import view
from components.run_report import view_ingestion
from components.run_report import view_training
from components.run_report.run import MODEL_INFO_NAME
from components.run_report.run import Run
from contract import layout

# Headings of the card, in order; every one is in every card (a section
# without its source says so), and render.check_sections holds them.
SECTIONS = ('Model details', 'Intended use', 'Data', 'Metrics',
            'External cohort', 'Limitations', 'Ethical considerations')
# (TFMA metric or Rates field, label, digits) of a cohort's overall table;
# a name in intervals.RATES or 'auc' gets an interval.
OVERALL = (('auc', 'AUC (ROC)', 4), ('pr_auc', 'PR-AUC', 4),
           ('sensitivity', 'sensitivity (recall)', 4),
           ('specificity', 'specificity', 4),
           ('precision', 'precision (PPV)', 4),
           ('accuracy', 'accuracy', 4),
           ('calibration', 'mean prediction / mean label', 4),
           ('example_count', 'images', 0))
MAX_REASONS = 5  # distinct rejection reasons listed


@dataclasses.dataclass(frozen=True)
class Estimate:
  value: Any  # TFMA's; None when absent, NaN when undefined
  interval: Optional[intervals.Interval] = None


@dataclasses.dataclass(frozen=True)
class Row:
  label: str
  digits: int
  estimate: Estimate


@dataclasses.dataclass(frozen=True)
class SliceRow:
  name: str
  n: Any
  positives: Any
  negatives: Any
  auc: Estimate
  sensitivity: Estimate
  specificity: Estimate
  accuracy: Estimate

  @property
  def one_class(self) -> bool:
    """No AUC: the slice holds images of one class only."""
    return not (self.positives and self.negatives)


@dataclasses.dataclass(frozen=True)
class Cohort:
  """One cohort's metrics at the shipped threshold, with intervals."""
  name: str  # layout.COHORT_INTERNAL or COHORT_EXTERNAL
  evaluated: bool  # TFMA metrics were read
  overall: List[Row]
  slices: List[SliceRow]
  blessed: Optional[bool] = None  # the decision's verdict on this cohort


@dataclasses.dataclass(frozen=True)
class Details:
  pipeline_name: str
  run_id: str
  date: str
  architecture: Optional[str]
  image_size: Any
  version: Optional[str]  # the TF Serving version, None: not pushed
  destination: Optional[str]
  push_note: str  # why there is no version
  operating: view.Operating
  verdict: Optional[bool]
  checks: List[view.Check]
  baseline: view.Baseline
  training: view_training.Training


@dataclasses.dataclass(frozen=True)
class Data:
  provenance: Tuple[str, ...]
  examples: List[str]  # the Examples artifact(s) ingested
  ingestion: Optional[view_ingestion.Ingestion]
  reasons: List[Tuple[str, int]]  # (rejection reason, files), most first
  external: Optional[view_ingestion.Ingestion]


@dataclasses.dataclass(frozen=True)
class ModelCard:
  title: str
  details: Details
  intended_use: Tuple[str, ...]
  data: Data
  metrics: Cohort
  external: Optional[Cohort]  # None: no external cohort this run
  gaps: List[evaluation.CohortGap]  # internal vs external, with margins
  limitations: List[str]
  ethics: Tuple[str, ...]
  method: str
  missing: List[str]
  sections: Tuple[str, ...] = SECTIONS


def _estimate(run: Run, slice_name: str, cohort: str, name: str,
              rates: evaluation.Rates, found) -> Estimate:
  if name == 'auc':
    return Estimate(evaluation.metric(run, slice_name, layout.CANDIDATE,
                                      'auc', cohort), found.get('auc'))
  if name in intervals.RATES:
    value = getattr(rates, name, None)
    if value is None:
      value = evaluation.metric(run, slice_name, layout.CANDIDATE, name,
                                cohort)
    return Estimate(value, found.get(name))
  if name == 'example_count':
    return Estimate(rates.n)
  return Estimate(evaluation.metric(run, slice_name, layout.CANDIDATE, name,
                                    cohort))


def _intervals(run: Run, slice_name: str, cohort: str, rates) -> dict:
  found = dict(intervals.rate_intervals(evaluation.matrix_at_threshold(
      run, slice_name, cohort=cohort)))
  if rates.positives and rates.negatives:
    found['auc'] = intervals.auc_interval(evaluation.slice_plots(
        run, slice_name, cohort).get('calibration'))
  return found


def _cohort(run: Run, cohort: str) -> Cohort:
  rows, slices = [], []
  for slice_name in evaluation.slices(run, cohort):
    rates = evaluation.slice_rates(run, slice_name, cohort=cohort)
    found = _intervals(run, slice_name, cohort, rates)
    estimate = lambda name: _estimate(run, slice_name, cohort, name, rates,
                                      found)
    slices.append(SliceRow(
        slice_name, rates.n, rates.positives, rates.negatives,
        estimate('auc'), estimate('sensitivity'), estimate('specificity'),
        estimate('accuracy')))
    if slice_name == layout.OVERALL:
      rows = [Row(label, digits, estimate(name))
              for name, label, digits in OVERALL]
  entry = evaluation.decision_cohorts(run).get(cohort) or {}
  return Cohort(cohort, bool(evaluation.metrics_of(run, cohort)), rows,
                slices, entry.get('blessed'))


def _push_note(run: Run) -> str:
  if run.pushed is None:
    return 'not pushed: the run stopped before the push stage'
  if not run.pushed.pushed:
    return 'not pushed: the model was not blessed'
  return ''


def _reasons(report: Optional[dict]) -> List[Tuple[str, int]]:
  counted = collections.Counter(
      str(entry.get('reason')) for entry in (report or {}).get('rejected')
      or [])
  return counted.most_common(MAX_REASONS)


def _limitations(report: view.Report, cohorts: List[Cohort],
                 gaps: List[evaluation.CohortGap],
                 calibration: Any) -> List[str]:
  """The standing limitations, then what this run adds to them."""
  notes = list(text.LIMITATIONS)
  method = calibration.get('method') if isinstance(
      calibration, dict) else None
  notes.append(text.CALIBRATED.format(method=method)
               if method and method != 'none' else text.UNCALIBRATED)
  if report.training.shuffled_labels:
    notes.insert(0, 'This model was trained on shuffled labels (a negative '
                 'control): it has learned nothing and is for no use.')
  if report.external is None:
    notes.append('No external cohort was evaluated in this run: the '
                 'metrics come from the same source as the training data.')
  for gap in gaps:
    if gap.exceeded:
      notes.append(f'On the external cohort the {gap.metric} is '
                   f'{gap.gap:.4f} below the internal test split (more than '
                   f'the {gap.margin:.2f} the report allows).')
  for cohort in cohorts:
    small = [s.name for s in cohort.slices if figures.is_number(s.n)
             and s.n < 30]
    if small:
      notes.append(f'Slices of fewer than 30 images ({cohort.name}): '
                   f'{", ".join(small)}; their intervals are wide or '
                   'unreliable.')
  return notes


def _missing(run: Run) -> List[str]:
  notes = []
  if not run.ingestion:
    notes.append(f'{layout.INGESTION_REPORT_FILE} (the Data section)')
  if not run.model_info:
    notes.append(f'{MODEL_INFO_NAME} of the model (architecture, threshold, '
                 'training settings)')
  if not run.decision:
    notes.append(f'{layout.DECISION_FILE} (the blessing decision)')
  if not run.metrics:
    notes.append('TFMA metrics of the test split (the Metrics section)')
  elif not run.plots:
    notes.append('TFMA plots of the test split (no AUC intervals)')
  return notes + list(run.problems)


def _title(details: Details) -> str:
  return ' '.join(filter(None, (
      text.TITLE + ':', details.pipeline_name or 'pipeline',
      details.architecture,
      f'version {details.version}' if details.version else None)))


def with_version(card: ModelCard, version: str,
                 destination: Optional[str]) -> ModelCard:
  """The card of the same run, as pushed as `version` to `destination`."""
  details = dataclasses.replace(card.details, version=version,
                                destination=destination, push_note='')
  return dataclasses.replace(card, details=details, title=_title(details))


def build(run: Run, date: Optional[str] = None) -> ModelCard:
  """The card of `run`'s candidate model, pushed as run.pushed says (the
  Pusher, which knows its version before there is a PushedModel, uses
  with_version).

  Args:
    run: the run's artifacts, as reading.read_run reads them.
    date: when the card is written; default run.created, else now (UTC).
  """
  report = view.build(run)
  version = destination = None
  if run.pushed is not None and run.pushed.pushed:
    version, destination = run.pushed.version, run.pushed.destination
  info = run.model_info or {}
  details = Details(
      pipeline_name=run.pipeline_name, run_id=run.run_id,
      date=date or run.created or time.strftime('%Y-%m-%d %H:%M:%S UTC',
                                                time.gmtime()),
      architecture=report.operating.architecture,
      image_size=info.get('image_size'), version=version,
      destination=destination,
      push_note='' if version else _push_note(run),
      operating=report.operating, verdict=report.decision.verdict,
      checks=report.decision.checks, baseline=report.decision.baseline,
      training=report.training)
  data = Data(
      provenance=text.PROVENANCE,
      examples=list(run.inputs.get(reading.EXAMPLES_KEY) or []),
      ingestion=report.ingestion, reasons=_reasons(run.ingestion),
      external=report.external.ingestion if report.external else None)
  internal = _cohort(run, evaluation.INTERNAL)
  external = (_cohort(run, evaluation.EXTERNAL) if report.external
              else None)
  gaps = evaluation.cohort_gaps(run) if external else []
  return ModelCard(
      title=_title(details),
      details=details, intended_use=text.INTENDED_USE, data=data,
      metrics=internal, external=external, gaps=gaps,
      limitations=_limitations(report, [c for c in (internal, external)
                                        if c], gaps, info.get('calibration')),
      ethics=text.ETHICS, method=text.METHOD, missing=_missing(run))
