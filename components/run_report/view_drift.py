"""The view model's drift section: did this run's training data look like
the data the deployed model was trained on (drift_report.json)?"""
import dataclasses
from typing import List, Optional

from components.run_report.run import Run
from contract import layout
from contract import options

# What each status tells a reader, beyond the table.
_STATUS_TEXT = {
    layout.DRIFT_FOUND: 'drift beyond the thresholds',
    layout.DRIFT_NONE: 'no drift beyond the thresholds',
    layout.DRIFT_NO_BASELINE: 'not compared: no model is deployed yet (the '
                              'first push brings its training statistics)',
    layout.DRIFT_BASELINE_WITHOUT_STATISTICS: (
        'not compared: the deployed version carries no training statistics '
        '(pushed before the Pusher kept them)'),
}


@dataclasses.dataclass(frozen=True)
class Row:
  feature: str
  measure: str
  value: Optional[float]  # None: could not be compared
  threshold: Optional[float]
  drifted: bool


@dataclasses.dataclass(frozen=True)
class Drift:
  status: str
  text: str
  compared_split: str
  baseline_version: Optional[str]
  on_drift: str
  rows: List[Row]
  drifted: List[str]

  @property
  def found(self) -> bool:
    return self.status == layout.DRIFT_FOUND

  @property
  def stopped(self) -> bool:
    return self.found and self.on_drift == options.ON_DRIFT_STOP


def build(run: Run) -> Optional[Drift]:
  """None when the run had no drift check."""
  report = run.drift
  if not report:
    return None
  status = report.get('status') or ''
  return Drift(
      status=status, text=_STATUS_TEXT.get(status, status),
      compared_split=report.get('compared_split') or '',
      baseline_version=report.get('baseline_version'),
      on_drift=report.get('on_drift') or '',
      rows=[Row(r.get('feature'), r.get('measure'), r.get('value'),
                r.get('threshold'), bool(r.get('drifted')))
            for r in report.get('features') or []],
      drifted=list(report.get('drifted') or []))
