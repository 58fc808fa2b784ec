"""The report's view model: what each part of the page says, from a Run.

`build(run)` interprets the run's artifacts (their JSON files are read
leniently: a missing key shows as missing, not as an error) into typed
sections; the template (templates/report.html.j2) only lays them out and
formats their numbers. Values stay raw (None where absent, NaN where
undefined) so the template decides how a number is shown.
"""
import dataclasses
from typing import Any, List, Optional, Tuple

from components.run_report import evaluation
from components.run_report import figures
from components.run_report import view_drift
from components.run_report import view_external
from components.run_report import view_ingestion
from components.run_report import view_training
from components.run_report.evaluation import Rates
from components.run_report.run import MODEL_INFO_NAME
from components.run_report.run import Run
from contract import layout
from contract import names as constants

TEST_METRICS = (('auc', 'AUC (ROC)'), ('pr_auc', 'PR-AUC'),
                ('binary_accuracy', 'accuracy'), ('precision', 'precision'),
                ('recall', 'recall (sensitivity)'),
                ('specificity', 'specificity'),
                ('example_count', 'examples'))


@dataclasses.dataclass(frozen=True)
class Header:
  pipeline_name: str
  run_id: str
  created: str
  verdict: Optional[bool]
  architecture: Optional[str]
  threshold: Optional[float]
  pushed: bool
  pushed_version: Optional[str]

  @property
  def title(self) -> str:
    return f'{self.pipeline_name} run {self.run_id}'

  @property
  def verdict_word(self) -> str:
    return {True: 'BLESSED', False: 'NOT BLESSED',
            None: 'NO DECISION'}[self.verdict]

  @property
  def verdict_class(self) -> str:
    return {True: 'yes', False: 'no', None: 'unknown'}[self.verdict]


@dataclasses.dataclass(frozen=True)
class Check:
  """One condition of blessing_decision.json."""
  metric: Any
  kind: Any
  bound: Any
  value: Any
  baseline_value: Any
  difference: Any
  passed: bool
  note: str
  cohort: str = layout.COHORT_INTERNAL  # whose examples it was checked on


@dataclasses.dataclass(frozen=True)
class CohortVerdict:
  """A cohort's entry in blessing_decision.json's `cohorts`."""
  name: str
  blessed: Optional[bool]
  examples: Any
  note: str = ''


@dataclasses.dataclass(frozen=True)
class Baseline:
  """What the candidate was compared with (`state` is one of the below)."""
  COMPARED, DEPLOYED, NONE, UNKNOWN = 'compared', 'deployed', 'none', 'unknown'
  state: str
  version: Any = None
  path: Any = None
  evaluated: bool = False  # DEPLOYED: the candidate was judged this run
  skipped: Tuple[Any, ...] = ()  # broken versions above it (run.Deployed)


@dataclasses.dataclass(frozen=True)
class Push:
  """Whether the candidate reached TF Serving (`state` is one of the below)."""
  PUSHED, NOT_PUSHED, NOT_REACHED = 'pushed', 'not pushed', 'not reached'
  state: str
  version: Any = None
  destination: Any = None
  serving: Optional[str] = None  # the deployed version that keeps serving


@dataclasses.dataclass(frozen=True)
class Decision:
  verdict: Optional[bool]
  recorded: bool  # blessing_decision.json was read
  failed: List[str]  # 'metric (kind)' of the failed checks
  artifact_disagrees: Optional[bool]  # the ModelBlessing's differing verdict
  checks: List[Check]
  baseline: Baseline
  push: Push
  # With an external cohort: checks name their cohort; a verdict per cohort.
  by_cohort: bool = False
  cohorts: List[CohortVerdict] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class OperatingPoint:
  """How and on which data the threshold was chosen (model_info.json)."""
  target_sensitivity: Any
  sensitivity: Any
  specificity: Any
  positives: Any
  negatives: Any
  chosen_on: str = 'the eval split'
  short: str = 'eval'  # names the rates in the page


@dataclasses.dataclass(frozen=True)
class Operating:
  threshold: Optional[float]
  architecture: Optional[str]
  point: Optional[OperatingPoint]


@dataclasses.dataclass(frozen=True)
class MetricRow:
  label: str
  digits: int
  value: Any
  baseline: Any = None
  difference: Optional[float] = None  # candidate - deployed


@dataclasses.dataclass(frozen=True)
class TestSplit:
  evaluated: bool  # TFMA metrics were read
  has_baseline: bool
  threshold: Optional[float]
  rows: List[MetricRow]
  has_matrix: bool  # a confusion matrix at the threshold


@dataclasses.dataclass(frozen=True)
class SliceRow:
  name: str
  rates: Rates
  baseline: Optional[Rates]


@dataclasses.dataclass(frozen=True)
class Slices:
  evaluated: bool
  has_baseline: bool
  rows: List[SliceRow]


@dataclasses.dataclass(frozen=True)
class Report:
  """Everything the page says, section by section."""
  header: Header
  missing: List[str]  # what the run lacks, then what could not be read
  decision: Decision
  operating: Operating
  test: TestSplit
  slices: Slices
  training: view_training.Training
  ingestion: Optional[view_ingestion.Ingestion]  # None: no ingestion report
  external: Optional[view_external.External]  # None: no external cohort
  inputs: List[Tuple[str, List[str]]]  # (input key, artifact uris), sorted
  drift: Optional[view_drift.Drift] = None  # None: no drift check


def _header(run: Run) -> Header:
  info = run.model_info or {}
  pushed = bool(run.pushed and run.pushed.pushed)
  return Header(
      pipeline_name=run.pipeline_name or 'pipeline', run_id=run.run_id,
      created=run.created, verdict=evaluation.verdict(run),
      architecture=info.get('architecture') or None,
      threshold=evaluation.threshold(run), pushed=pushed,
      pushed_version=run.pushed.version if pushed else None)


def _check(check: dict) -> Check:
  return Check(metric=check.get('metric'), kind=check.get('kind'),
               bound=check.get('bound'), value=check.get('value'),
               baseline_value=check.get('baseline_value'),
               difference=check.get('difference'),
               passed=bool(check.get('passed')), note=check.get('note') or '',
               cohort=evaluation.check_cohort(check))


def _cohorts(run: Run) -> List[CohortVerdict]:
  """The decision's cohorts, internal first; an absent one is left out."""
  cohorts = evaluation.decision_cohorts(run)
  order = [evaluation.INTERNAL, evaluation.EXTERNAL]
  names = [n for n in order if n in cohorts] + sorted(
      n for n in cohorts if n not in order)
  return [CohortVerdict(name, cohorts[name].get('blessed'),
                        cohorts[name].get('examples'),
                        cohorts[name].get('note') or '')
          for name in names if cohorts[name].get('present', True) is not False]


def _baseline(run: Run) -> Baseline:
  compared = (run.decision or {}).get('baseline')
  deployed = run.baseline
  skipped = deployed.skipped if deployed else ()
  if compared:
    return Baseline(Baseline.COMPARED, compared.get('version'),
                    compared.get('path'), skipped=skipped)
  if deployed and deployed.found:
    return Baseline(Baseline.DEPLOYED, deployed.version, deployed.path,
                    evaluated=bool(run.decision), skipped=skipped)
  if run.decision or (deployed and not deployed.found):
    return Baseline(Baseline.NONE, skipped=skipped)
  return Baseline(Baseline.UNKNOWN)


def _push(run: Run) -> Push:
  deployed = run.baseline
  serving = (deployed.version if deployed and deployed.found
             and deployed.version else None)
  if run.pushed is None:
    return Push(Push.NOT_REACHED, serving=serving)
  if run.pushed.pushed:
    return Push(Push.PUSHED, run.pushed.version, run.pushed.destination)
  return Push(Push.NOT_PUSHED, serving=serving)


def _decision(run: Run) -> Decision:
  decision = run.decision or {}
  checks = [_check(c) for c in decision.get('checks') or []]
  artifact, recorded = run.blessed_artifact, decision.get('blessed')
  disagrees = (isinstance(artifact, bool) and bool(decision)
               and isinstance(recorded, bool) and artifact != recorded)
  by_cohort = evaluation.has_external(run)
  return Decision(
      verdict=evaluation.verdict(run), recorded=bool(run.decision),
      failed=[f'{c.metric} ({c.kind}, {c.cohort})' if by_cohort
              else f'{c.metric} ({c.kind})' for c in checks if not c.passed],
      artifact_disagrees=artifact if disagrees else None, checks=checks,
      baseline=_baseline(run), push=_push(run), by_cohort=by_cohort,
      cohorts=_cohorts(run) if by_cohort else [])


def _operating(run: Run) -> Operating:
  info = run.model_info or {}
  point = info.get('operating_point') or {}
  source = info.get(layout.MODEL_INFO_THRESHOLD_SOURCE) or {}
  site = source.get(layout.THRESHOLD_CHOSEN_ON) == (
      layout.THRESHOLD_CHOSEN_ON_TEXT[constants.THRESHOLD_FROM_EXTERNAL])
  where = ({'chosen_on': f"the external cohort's calibration half "
                         f"({source.get('images')} images, not used for any "
                         'external metric)', 'short': 'calibration'}
           if site else {})
  return Operating(
      threshold=evaluation.threshold(run),
      architecture=info.get('architecture') or None,
      point=OperatingPoint(
          target_sensitivity=point.get('target_sensitivity'),
          sensitivity=point.get('sensitivity'),
          specificity=point.get('specificity'),
          positives=point.get('positives'),
          negatives=point.get('negatives'), **where) if point else None)


def _test_split(run: Run) -> TestSplit:
  has_baseline = evaluation.has_baseline(run)
  rows = []
  for name, label in TEST_METRICS:
    value = evaluation.metric(run, layout.OVERALL, layout.CANDIDATE, name)
    row = MetricRow(label, 0 if name == 'example_count' else 4, value)
    if has_baseline:
      base = evaluation.metric(run, layout.OVERALL, layout.BASELINE, name)
      row = dataclasses.replace(row, baseline=base, difference=(
          value - base if figures.is_number(value)
          and figures.is_number(base) else None))
    rows.append(row)
  return TestSplit(
      evaluated=bool(run.metrics), has_baseline=has_baseline,
      threshold=evaluation.threshold(run), rows=rows,
      has_matrix=evaluation.matrix_at_threshold(run) is not None)


def _slices(run: Run) -> Slices:
  has_baseline = evaluation.has_baseline(run)
  return Slices(
      evaluated=bool(run.metrics), has_baseline=has_baseline,
      rows=[SliceRow(name, evaluation.slice_rates(run, name),
                     evaluation.slice_rates(run, name, layout.BASELINE)
                     if has_baseline else None)
            for name in evaluation.slices(run)])


def _missing(run: Run) -> List[str]:
  """What this run lacks (a partial run), then what could not be read."""
  notes = []
  if not run.ingestion:
    notes.append('ingestion report (examples)')
  if not run.comparison and not run.histories:
    notes.append('training outputs (model_run)')
  if not run.model_info:
    notes.append(f'the trained model and its {MODEL_INFO_NAME} (model)')
  if not run.decision and evaluation.verdict(run) is None:
    notes.append('evaluation and blessing decision: the run stopped before '
                 'evaluation or it failed')
  elif not run.metrics:
    notes.append('TFMA metrics of the evaluation')
  elif not run.plots:
    notes.append('TFMA plots (ROC and calibration)')
  if run.pushed is None:
    notes.append('pushed model: the run stopped before the push stage')
  if evaluation.has_external(run):
    if not run.external_ingestion:
      notes.append('ingestion report of the external cohort '
                   '(external_examples)')
    if run.metrics and not run.external_metrics:
      notes.append('TFMA metrics of the external cohort')
    elif run.external_metrics and not run.external_plots:
      notes.append('TFMA plots of the external cohort (its ROC)')
  return notes + list(run.problems)


def build(run: Run) -> Report:
  """The page's view of `run`."""
  return Report(
      header=_header(run), missing=_missing(run), decision=_decision(run),
      operating=_operating(run), test=_test_split(run), slices=_slices(run),
      training=view_training.build(run),
      ingestion=view_ingestion.build(run),
      external=view_external.build(run, TEST_METRICS),
      inputs=sorted(run.inputs.items()), drift=view_drift.build(run))
