"""Reads what a run produced into a run.Run, never failing on an input.

Every input may be missing or unreadable: its field stays None and the
Run's `problems` say what and why, so the report is still written.

An external cohort (another site's children, never trained on) is read
when there is one: its Examples' ingestion report (`external_examples`,
unless layout.COHORT_PRESENT is 0) and TFMA's output for it in
<evaluation>/layout.EXTERNAL_EVALUATION_DIR. Without one, nothing of it is
read or listed, and the Run is what it was before external cohorts.
"""
import json
import os
from typing import Any, Callable, Dict, List, Optional

from absl import logging
import tensorflow as tf
from tfx.components.evaluator import constants as evaluator_constants

from components import model_artifacts
from components.evaluator import results
from components.run_report import run as run_lib
from components import cohort
from contract import layout

EXAMPLES_KEY = 'examples'
MODEL_RUN_KEY = 'model_run'
MODEL_KEY = 'model'
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
BASELINE_KEY = 'baseline_model'
PUSHED_MODEL_KEY = 'pushed_model'
EXTERNAL_EXAMPLES_KEY = 'external_examples'
DRIFT_KEY = 'drift'  # DriftCheck's output (components/drift_check)
# Listed in Run.inputs always; EXTERNAL_EXAMPLES_KEY only when it holds a
# cohort (an absent one changes nothing on the page).
INPUT_KEYS = (EXAMPLES_KEY, MODEL_RUN_KEY, MODEL_KEY, EVALUATION_KEY,
              BLESSING_KEY, BASELINE_KEY, PUSHED_MODEL_KEY)
EXTERNAL_NAME = 'external cohort'  # how problems name its files

def _single(input_dict: Dict[str, List[Any]], key: str):
  artifacts = input_dict.get(key) or []
  return artifacts[0] if artifacts else None


def read_json(path: str) -> Any:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def _attempt(problems: List[str], what: str, read: Callable[[], Any]) -> Any:
  """read(), or None with a note in `problems` if it fails."""
  try:
    return read()
  except (tf.errors.NotFoundError, FileNotFoundError) as e:
    problems.append(f'{what} not found ({_first_line(e)})')
  except Exception as e:  # pylint: disable=broad-except
    problems.append(f'{what} could not be read: {type(e).__name__}: '
                    f'{_first_line(e)}')
    logging.warning('Run report: %s could not be read: %r', what, e)
  return None


def _first_line(error: Exception) -> str:
  text = (getattr(error, 'message', None) or str(error)).strip()
  return text.splitlines()[0] if text else type(error).__name__


def _histories(model_run_uri: str, comparison: Optional[List[Dict]]
               ) -> Dict[str, List[Dict[str, Any]]]:
  """{architecture: history rows}, in the comparison's order."""
  names = [row['architecture'] for row in comparison or []
           if row.get('architecture')]
  if tf.io.gfile.isdir(model_run_uri):
    names += sorted(n.rstrip('/') for n in tf.io.gfile.listdir(model_run_uri)
                    if n.rstrip('/') not in names and tf.io.gfile.exists(
                        layout.history_file(model_run_uri, n.rstrip('/'))))
  histories = {}
  for name in names:
    path = layout.history_file(model_run_uri, name)
    if tf.io.gfile.exists(path):
      histories[name] = read_json(path)
  return histories


def _blessed(blessing) -> Optional[bool]:
  """The ModelBlessing's verdict: its property, else TFX's marker file."""
  if blessing.has_custom_property(layout.BLESSED):
    return bool(blessing.get_int_custom_property(layout.BLESSED))
  for name, verdict in ((evaluator_constants.BLESSED_FILE_NAME, True),
                        (evaluator_constants.NOT_BLESSED_FILE_NAME, False)):
    if tf.io.gfile.exists(os.path.join(blessing.uri, name)):
      return verdict
  return None


def _deployed(baseline) -> run_lib.Deployed:
  return run_lib.Deployed(
      found=bool(baseline.get_int_custom_property(layout.DEPLOYED_FOUND)),
      version=baseline.get_string_custom_property(layout.DEPLOYED_VERSION)
      or None,
      path=baseline.get_string_custom_property(layout.DEPLOYED_PATH) or None,
      skipped=tuple(json.loads(baseline.get_string_custom_property(
          layout.DEPLOYED_SKIPPED) or '[]')))


def _pushed(pushed) -> run_lib.Pushed:
  return run_lib.Pushed(
      pushed=bool(pushed.get_int_custom_property(layout.PUSHED)),
      version=pushed.get_string_custom_property(layout.PUSHED_VERSION)
      or None,
      destination=pushed.get_string_custom_property(
          layout.PUSHED_DESTINATION) or None)


def _external_expected(decision: Optional[Dict[str, Any]]) -> bool:
  """Whether blessing_decision.json says an external cohort was evaluated."""
  entry = ((decision or {}).get('cohorts') or {}).get(layout.COHORT_EXTERNAL)
  return isinstance(entry, dict) and entry.get('present', True) is not False


def _read_external_evaluation(problems: List[str], found: Dict[str, Any],
                              evaluation_uri: str) -> None:
  """TFMA's output for the external cohort into `found`, if there is one."""
  uri = os.path.join(evaluation_uri, layout.EXTERNAL_EVALUATION_DIR)
  if not tf.io.gfile.isdir(uri):
    if _external_expected(found.get('decision')):
      problems.append(f'TFMA output of the {EXTERNAL_NAME} not found '
                      f'({uri})')
    return
  found['external_metrics'] = _attempt(
      problems, f'TFMA metrics of the {EXTERNAL_NAME}',
      lambda: results.load_metrics(uri))
  found['external_plots'] = _attempt(
      problems, f'TFMA plots of the {EXTERNAL_NAME}',
      lambda: results.load_plots(uri, layout.CANDIDATE))
  if any(key[1] == layout.BASELINE
         for key in found['external_metrics'] or {}):
    found['external_baseline_plots'] = _attempt(
        problems, f'TFMA plots of the deployed model on the {EXTERNAL_NAME}',
        lambda: results.load_plots(uri, layout.BASELINE))


def read_run(input_dict: Dict[str, List[Any]], pipeline_name: str = '',
             run_id: str = '', created: str = '') -> run_lib.Run:
  """Everything the report shows, read from the run's artifacts."""
  problems: List[str] = []
  found: Dict[str, Any] = {}  # run.Run's fields, as far as they are read

  examples = _single(input_dict, EXAMPLES_KEY)
  if examples is not None:
    found['ingestion'] = _attempt(
        problems, layout.INGESTION_REPORT_FILE, lambda: read_json(
            os.path.join(examples.uri, layout.INGESTION_REPORT_FILE)))

  model = _single(input_dict, MODEL_KEY)
  if model is not None:
    found['model_info'] = _attempt(problems, run_lib.MODEL_INFO_NAME, lambda: (
        read_json(model_artifacts.model_info_path(model))))

  model_run = _single(input_dict, MODEL_RUN_KEY)
  if model_run is not None:
    found['comparison'] = _attempt(problems, run_lib.COMPARISON_NAME, lambda: (
        read_json(layout.comparison_file(model_run.uri))))
    found['training_settings'] = _attempt(
        problems, layout.TRAINING_SETTINGS_FILE, lambda: read_json(
            os.path.join(model_run.uri, layout.TRAINING_SETTINGS_FILE)))
    found['histories'] = _attempt(problems, 'training history', lambda: (
        _histories(model_run.uri, found['comparison'])))
  info = found.get('model_info') or {}
  if not found.get('comparison'):
    beside = model and layout.comparison_file(model.uri)
    if beside and tf.io.gfile.exists(beside):
      found['comparison'] = _attempt(
          problems, f'{run_lib.COMPARISON_NAME} of the model',
          lambda: read_json(beside))
    elif info.get('comparison'):
      found['comparison'] = info['comparison']
  if not found.get('training_settings') and info.get('training_settings'):
    found['training_settings'] = info['training_settings']

  evaluation = _single(input_dict, EVALUATION_KEY)
  if evaluation is not None:
    found['decision'] = _attempt(problems, layout.DECISION_FILE, lambda: (
        read_json(os.path.join(evaluation.uri, layout.DECISION_FILE))))
    found['metrics'] = _attempt(problems, 'TFMA metrics', lambda: (
        results.load_metrics(evaluation.uri)))
    found['plots'] = _attempt(problems, 'TFMA plots', lambda: (
        results.load_plots(evaluation.uri, layout.CANDIDATE)))
    if any(key[1] == layout.BASELINE for key in found['metrics'] or {}):
      found['baseline_plots'] = _attempt(
          problems, 'TFMA plots of the deployed model', lambda: (
              results.load_plots(evaluation.uri, layout.BASELINE)))
    _read_external_evaluation(problems, found, evaluation.uri)

  blessing = _single(input_dict, BLESSING_KEY)
  if blessing is not None:
    found['blessed_artifact'] = _attempt(problems, 'ModelBlessing',
                                         lambda: _blessed(blessing))

  baseline = _single(input_dict, BASELINE_KEY)
  if baseline is not None:
    found['baseline'] = _attempt(problems, 'DeployedModel',
                                 lambda: _deployed(baseline))

  pushed = _single(input_dict, PUSHED_MODEL_KEY)
  if pushed is not None:
    found['pushed'] = _attempt(problems, 'PushedModel',
                               lambda: _pushed(pushed))

  drift = _single(input_dict, DRIFT_KEY)
  if drift is not None:
    found['drift'] = _attempt(problems, layout.DRIFT_REPORT_FILE, lambda: (
        read_json(os.path.join(drift.uri, layout.DRIFT_REPORT_FILE))))

  inputs = {key: [a.uri for a in input_dict.get(key) or []]
            for key in INPUT_KEYS}
  if drift is not None:
    inputs[DRIFT_KEY] = [drift.uri]
  external = _single(input_dict, EXTERNAL_EXAMPLES_KEY)
  if external is not None:
    found['external_present'] = _attempt(
        problems, f'Examples of the {EXTERNAL_NAME}',
        lambda: cohort.cohort_present(external) is not False)
    if found['external_present']:
      inputs[EXTERNAL_EXAMPLES_KEY] = [
          a.uri for a in input_dict[EXTERNAL_EXAMPLES_KEY]]
      found['external_ingestion'] = _attempt(
          problems, f'{layout.INGESTION_REPORT_FILE} of the {EXTERNAL_NAME}',
          lambda: read_json(os.path.join(external.uri,
                                         layout.INGESTION_REPORT_FILE)))
  return run_lib.Run(
      pipeline_name=pipeline_name, run_id=run_id, created=created,
      inputs=inputs, problems=problems, **found)
