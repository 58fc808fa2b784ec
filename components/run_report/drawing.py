"""Which figures the report has: draws each PNG (figures.py) from a Run.

A figure that fails to draw is listed in Drawn.failures, never raised: the
page then says so where the figure would be.
"""
import dataclasses
import re
from typing import Callable, Dict, List, Optional, Tuple

from absl import logging

from components.run_report import evaluation
from components.run_report import figures
from components.run_report.run import Run
from contract import layout


@dataclasses.dataclass(frozen=True)
class Drawn:
  """File names of the PNGs beside the page; None where not drawn."""
  training: Dict[str, Optional[str]]  # {architecture: file}
  roc: Optional[str] = None
  confusion: Optional[str] = None
  subtypes: Optional[str] = None
  calibration: Optional[str] = None
  calibration_fit: Optional[str] = None  # the Trainer's, eval split
  ingestion: Optional[str] = None
  # With an external cohort: both cohorts' ROC on one plot, and its matrix.
  roc_cohorts: Optional[str] = None
  confusion_external: Optional[str] = None
  failures: List[str] = dataclasses.field(default_factory=list)


def _safe_name(text: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', text).strip('._') or 'model'


def _training_jobs(run: Run, folder: str):
  """(architecture, title, draw) per training history; unique file names."""
  comparison = {row.get('architecture'): row for row in run.comparison or []}
  used = set()
  for architecture, history in (run.histories or {}).items():
    name = f'training_{_safe_name(architecture)}.png'
    while name in used:
      name = name[:-4] + '_.png'
    used.add(name)
    best = (comparison.get(architecture) or {}).get('best_epoch')
    yield (architecture, f'training curves of {architecture}',
           lambda a=architecture, h=history, n=name, b=best: (
               figures.training_curves(folder, n, a, h, b)))


def _attempt(title: str, draw: Callable[[], Optional[str]],
             failures: List[str]) -> Optional[str]:
  try:
    return draw()
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('Run report: the %s figure failed: %r', title, e)
    failures.append(f'the {title} figure could not be drawn: '
                    f'{type(e).__name__}: {e}')
    return None


def draw(run: Run, folder: str) -> Drawn:
  """Draws every figure the run allows into `folder`."""
  plots = (run.plots or {}).get(layout.OVERALL) or {}
  base_plots = (run.baseline_plots or {}).get(layout.OVERALL) or {}

  def matrix():  # inside the jobs: a failure is the figure's
    return evaluation.matrix_at_threshold(run)

  def auc(model):
    return evaluation.metric(run, layout.OVERALL, model, 'auc')

  failures: List[str] = []
  training = {architecture: _attempt(title, job, failures)
              for architecture, title, job in _training_jobs(run, folder)}
  jobs: List[Tuple[str, str, Callable[[], Optional[str]]]] = [
      ('roc', 'ROC curve', lambda: figures.roc_curve(
          folder, 'roc.png', plots.get('confusion_matrices'), matrix(),
          auc(layout.CANDIDATE), base_plots.get('confusion_matrices'),
          auc(layout.BASELINE))),
      ('confusion', 'confusion matrix', lambda: figures.confusion_matrix(
          folder, 'confusion_matrix.png', matrix())),
      ('subtypes', 'per-subtype rates', lambda: figures.subtype_rates(
          folder, 'subtypes.png', evaluation.subtype_rows(run))),
      ('calibration', 'calibration', lambda: figures.calibration(
          folder, 'calibration.png', plots.get('calibration'),
          evaluation.overall_plots(run, evaluation.EXTERNAL).get(
              'calibration') if evaluation.has_external(run) else None)),
      ('calibration_fit', 'calibration fit', lambda: figures.calibration_fit(
          folder, 'calibration_fit.png',
          (run.model_info or {}).get('calibration'))),
      ('ingestion', 'ingestion counts', lambda: figures.ingestion_counts(
          folder, 'ingestion.png', (run.ingestion or {}).get('counts'))),
  ]
  if evaluation.has_external(run):
    jobs += _external_jobs(run, folder)
  drawn = {key: _attempt(title, job, failures) for key, title, job in jobs}
  return Drawn(training=training, failures=failures, **drawn)


def _external_jobs(run: Run, folder: str
                   ) -> List[Tuple[str, str, Callable[[], Optional[str]]]]:
  """The figures of an external cohort: (Drawn field, title, draw)."""

  def roc_of(cohort):
    plots = evaluation.overall_plots(run, cohort)
    base_plots = evaluation.overall_plots(run, cohort, layout.BASELINE)
    return {
        'matrices': plots.get('confusion_matrices'),
        'operating_point': evaluation.matrix_at_threshold(
            run, cohort=cohort),
        'auc': evaluation.metric(run, layout.OVERALL, layout.CANDIDATE, 'auc',
                                 cohort),
        'baseline_matrices': base_plots.get('confusion_matrices'),
        'baseline_auc': evaluation.metric(run, layout.OVERALL,
                                          layout.BASELINE, 'auc', cohort)}

  def roc():
    internal = roc_of(evaluation.INTERNAL)
    return figures.roc_curve(
        folder, 'roc_cohorts.png', internal['matrices'],
        internal['operating_point'], internal['auc'],
        internal['baseline_matrices'], internal['baseline_auc'],
        external=roc_of(evaluation.EXTERNAL))

  return [
      ('roc_cohorts', 'ROC of both cohorts', roc),
      ('confusion_external', 'confusion matrix of the external cohort',
       lambda: figures.confusion_matrix(
           folder, 'confusion_matrix_external.png',
           evaluation.matrix_at_threshold(run, cohort=evaluation.EXTERNAL),
           title='external cohort')),
  ]
