"""What a run produced, as reading.read_run finds it: the report's input.

Files keep their JSON shape (dicts and lists, as the stages write them);
everything else is typed here. Every field may be empty: a partial run,
or an input that could not be read (then `problems` says why). view.build
turns a Run into what the page shows.
"""
import dataclasses
import os
from typing import Any, Dict, List, Optional, Tuple

from contract import layout

Json = Dict[str, Any]
# {(slice, model, metric): value}, as components/evaluator/results.py reads it.
Metrics = Dict[Tuple[str, str, str], Any]
# {slice: {'confusion_matrices': [...], 'calibration': [...]}}.
Plots = Dict[str, Dict[str, List[Json]]]

# The files as the report names them to people (their paths: layout).
MODEL_INFO_NAME = os.path.basename(layout.MODEL_INFO_FILE)
COMPARISON_NAME = os.path.basename(layout.comparison_file(''))
HISTORY_NAME = os.path.basename(layout.history_file('', ''))


@dataclasses.dataclass(frozen=True)
class Deployed:
  """DeployedModel's output: the model TF Serving served when the run began."""
  found: bool
  version: Optional[str] = None
  path: Optional[str] = None
  # Broken numeric entries passed over: {'version', 'path', 'reason'}.
  skipped: Tuple[Json, ...] = ()


@dataclasses.dataclass(frozen=True)
class Pushed:
  """The Pusher's output: whether this run's model went to TF Serving."""
  pushed: bool
  version: Optional[str] = None
  destination: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Run:
  """One run's artifacts, read; None where an input is absent or unreadable.

  Attributes:
    inputs: {input key: [artifact uri]}, every input key listed.
    ingestion: ingestion_report.json (counts, patients, duplicates,
      rejected, ignored).
    histories: {architecture: history.json rows}, in the comparison's order.
    comparison: comparison.json rows (from the model if model_run has none).
    training_settings: training_settings.json.
    model_info: assets.extra/model_info.json of the candidate.
    decision: blessing_decision.json.
    blessed_artifact: the ModelBlessing artifact's verdict, if it has one.
    metrics, plots, baseline_plots: TFMA's, of the candidate and the
      deployed model.
    baseline, pushed: DeployedModel's and the Pusher's outputs.
    external_present: the external Examples' layout.COHORT_PRESENT (None:
      no such input).
    external_ingestion: the external cohort's ingestion_report.json (with
      layout.IN_MAIN_DATA).
    external_metrics, external_plots, external_baseline_plots: TFMA's, for
      the external cohort (<evaluation>/layout.EXTERNAL_EVALUATION_DIR).
    drift: drift_report.json of the drift check (None: no such input).
    problems: inputs that could not be read and why.
  """
  pipeline_name: str = ''
  run_id: str = ''
  created: str = ''
  inputs: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
  ingestion: Optional[Json] = None
  histories: Optional[Dict[str, List[Json]]] = None
  comparison: Optional[List[Json]] = None
  training_settings: Optional[Json] = None
  model_info: Optional[Json] = None
  decision: Optional[Json] = None
  blessed_artifact: Optional[bool] = None
  metrics: Optional[Metrics] = None
  plots: Optional[Plots] = None
  baseline_plots: Optional[Plots] = None
  baseline: Optional[Deployed] = None
  pushed: Optional[Pushed] = None
  external_present: Optional[bool] = None
  external_ingestion: Optional[Json] = None
  external_metrics: Optional[Metrics] = None
  external_plots: Optional[Plots] = None
  external_baseline_plots: Optional[Plots] = None
  drift: Optional[Json] = None
  problems: List[str] = dataclasses.field(default_factory=list)
