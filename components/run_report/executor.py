"""Executor of RunReport: OUTPUT_DIR/reports/<run id>/report.html.

Reads what the run produced (ingestion report, training history and
comparison, the model's operating point, TFMA metrics and plots, the
blessing decision, the deployed baseline and the push) into plain Python
data (`read_run`), then page.write_report draws the PNG figures and writes
the page beside them. Every input may be missing or unreadable: the report
is still written and says what is missing.

Each run gets its own folder, named by the UTC time `YYYYmmdd-HHMMSS` (with
`-1`, `-2`, ... appended if that folder exists; earlier reports are never
overwritten), and `reports/latest` is a relative symlink to the newest,
replaced atomically.
"""
import json
import os
import shutil
import tempfile
import time
import traceback
import uuid
from typing import Any, Callable, Dict, List, Optional

from absl import logging
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.dsl.components.base import base_executor

from components import model_artifacts
from components.deployed_model import executor as deployed_model
from components.evaluator import results
from components.run_report import page
from contract import layout
from contract import names as constants

EXAMPLES_KEY = 'examples'
MODEL_RUN_KEY = 'model_run'
MODEL_KEY = 'model'
EVALUATION_KEY = 'evaluation'
BLESSING_KEY = 'blessing'
BASELINE_KEY = 'baseline_model'
PUSHED_MODEL_KEY = 'pushed_model'
REPORTS_DIR_KEY = 'reports_dir'
PIPELINE_NAME_KEY = 'pipeline_name'
INPUT_KEYS = (EXAMPLES_KEY, MODEL_RUN_KEY, MODEL_KEY, EVALUATION_KEY,
              BLESSING_KEY, BASELINE_KEY, PUSHED_MODEL_KEY)

LATEST = 'latest'
DECISION_FILE = 'blessing_decision.json'  # components/evaluator/executor.py
# Custom properties TFX's Pusher sets on the PushedModel artifact.
PUSHED, PUSHED_VERSION, PUSHED_DESTINATION = (
    'pushed', 'pushed_version', 'pushed_destination')
BLESSED = 'blessed'  # ModelBlessing custom property (1 or 0)

_clock = time.time  # replaced in tests


# --- reading ------------------------------------------------------------------


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
                        os.path.join(model_run_uri, n.rstrip('/'),
                                     'history.json')))
  histories = {}
  for name in names:
    path = os.path.join(model_run_uri, name, 'history.json')
    if tf.io.gfile.exists(path):
      histories[name] = read_json(path)
  return histories


def read_run(input_dict: Dict[str, List[Any]], pipeline_name: str = '',
             run_id: str = '', created: str = '') -> Dict[str, Any]:
  """Everything the report shows, as plain Python (see page.py)."""
  problems: List[str] = []
  data: Dict[str, Any] = {
      'pipeline_name': pipeline_name, 'run_id': run_id, 'created': created,
      'inputs': {key: [a.uri for a in input_dict.get(key) or []]
                 for key in INPUT_KEYS},
      'problems': problems}

  examples = _single(input_dict, EXAMPLES_KEY)
  if examples is not None:
    data['ingestion'] = _attempt(
        problems, layout.INGESTION_REPORT_FILE, lambda: read_json(
            os.path.join(examples.uri, layout.INGESTION_REPORT_FILE)))

  model = _single(input_dict, MODEL_KEY)
  if model is not None:
    data['model_info'] = _attempt(problems, 'model_info.json',
                                  lambda: read_json(model_artifacts.model_info_path(model)))

  model_run = _single(input_dict, MODEL_RUN_KEY)
  if model_run is not None:
    data['comparison'] = _attempt(problems, 'comparison.json', lambda: (
        read_json(os.path.join(model_run.uri, 'comparison.json'))))
    data['training_settings'] = _attempt(
        problems, 'training_settings.json', lambda: read_json(
            os.path.join(model_run.uri, 'training_settings.json')))
    data['histories'] = _attempt(problems, 'training history', lambda: (
        _histories(model_run.uri, data.get('comparison'))))
  info = data.get('model_info') or {}
  if not data.get('comparison'):
    beside = model and os.path.join(model.uri, 'comparison.json')
    if beside and tf.io.gfile.exists(beside):
      data['comparison'] = _attempt(problems, 'comparison.json of the model',
                                    lambda: read_json(beside))
    elif info.get('comparison'):
      data['comparison'] = info['comparison']
  if not data.get('training_settings') and info.get('training_settings'):
    data['training_settings'] = info['training_settings']

  evaluation = _single(input_dict, EVALUATION_KEY)
  if evaluation is not None:
    data['decision'] = _attempt(problems, DECISION_FILE, lambda: read_json(
        os.path.join(evaluation.uri, DECISION_FILE)))
    data['metrics'] = _attempt(problems, 'TFMA metrics', lambda: (
        results.load_metrics(evaluation.uri)))
    data['plots'] = _attempt(problems, 'TFMA plots', lambda: results.load_plots(
        evaluation.uri, results.CANDIDATE))
    if any(key[1] == results.BASELINE for key in data.get('metrics') or {}):
      data['baseline_plots'] = _attempt(
          problems, 'TFMA plots of the deployed model', lambda: results.load_plots(
              evaluation.uri, results.BASELINE))

  blessing = _single(input_dict, BLESSING_KEY)
  if blessing is not None:
    def blessed():
      if blessing.has_custom_property(BLESSED):
        return bool(blessing.get_int_custom_property(BLESSED))
      if tf.io.gfile.exists(os.path.join(blessing.uri, 'BLESSED')):
        return True
      if tf.io.gfile.exists(os.path.join(blessing.uri, 'NOT_BLESSED')):
        return False
      return None
    data['blessed_artifact'] = _attempt(problems, 'ModelBlessing', blessed)

  baseline = _single(input_dict, BASELINE_KEY)
  if baseline is not None:
    data['baseline'] = _attempt(problems, 'DeployedModel', lambda: {
        'found': deployed_model.is_found(baseline),
        'version': baseline.get_string_custom_property(deployed_model.VERSION)
                   or None,
        'path': baseline.get_string_custom_property(deployed_model.PATH)
                or None})

  pushed = _single(input_dict, PUSHED_MODEL_KEY)
  if pushed is not None:
    data['pushed'] = _attempt(problems, 'PushedModel', lambda: {
        'pushed': bool(pushed.get_int_custom_property(PUSHED)),
        'version': pushed.get_string_custom_property(PUSHED_VERSION) or None,
        'destination': pushed.get_string_custom_property(PUSHED_DESTINATION)
                       or None})
  return data


# --- the run's folder ---------------------------------------------------------


def run_id_for(timestamp: float) -> str:
  return time.strftime('%Y%m%d-%H%M%S', time.gmtime(timestamp))


def claim_folder(reports_dir: str, run_id: str) -> str:
  """Creates reports_dir/<run_id> (or <run_id>-1, -2, ... if taken) and
  returns its name; an existing folder is never reused."""
  os.makedirs(reports_dir, exist_ok=True)
  suffix = 0
  while True:
    name = run_id if not suffix else f'{run_id}-{suffix}'
    try:
      os.mkdir(os.path.join(reports_dir, name))  # atomic: fails if taken
      return name
    except FileExistsError:
      suffix += 1


def point_latest(reports_dir: str, name: str) -> str:
  """Makes reports_dir/latest a relative symlink to `name`, atomically."""
  latest = os.path.join(reports_dir, LATEST)
  temporary = os.path.join(reports_dir, f'.{LATEST}-{uuid.uuid4().hex}')
  os.symlink(name, temporary)
  try:
    os.replace(temporary, latest)
  except OSError:
    os.remove(temporary)
    raise
  return latest


def _fallback_page(data: Dict[str, Any], error: BaseException) -> str:
  """A bare page for when the report itself fails: still something to read."""
  inputs = ''.join(f'<li>{page.esc(k)}: {page.esc(", ".join(v) or "—")}</li>'
                   for k, v in sorted((data.get('inputs') or {}).items()))
  return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Run '
          'report</title></head><body><h1>Run report '
          f"{page.esc(data.get('run_id', ''))}</h1><p>The report could not "
          f'be built: {page.esc(type(error).__name__)}: {page.esc(error)}</p>'
          f'<pre>{page.esc(traceback.format_exc())}</pre>'
          f'<h2>Inputs</h2><ul>{inputs}</ul></body></html>\n')


def write_run_report(data: Dict[str, Any], folder: str) -> str:
  """page.write_report, or a bare page saying why it failed."""
  try:
    return page.write_report(data, folder)
  except Exception as e:  # pylint: disable=broad-except
    logging.exception('Run report failed; writing a bare page instead.')
    path = os.path.join(folder, page.REPORT_FILE)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(_fallback_page(data, e))
    return path


def publish_report(data: Dict[str, Any], reports_dir: str,
                   timestamp: float) -> str:
  """Writes the report into a new run folder under reports_dir, points
  `latest` at it and returns the path of report.html."""
  run_id = run_id_for(timestamp)
  if not data.get('created'):
    data['created'] = time.strftime('%Y-%m-%d %H:%M:%S UTC',
                                    time.gmtime(timestamp))
  if '://' not in reports_dir:
    name = claim_folder(reports_dir, run_id)
    data['run_id'] = name
    path = write_run_report(data, os.path.join(reports_dir, name))
    try:
      point_latest(reports_dir, name)
    except OSError as e:
      logging.warning('Could not point %s at %s: %s',
                      os.path.join(reports_dir, LATEST), name, e)
    return path
  # Object stores have neither atomic folder creation nor symlinks: build
  # locally, copy, and record the newest run id in a `latest.txt` file.
  name, suffix = run_id, 0
  while tf.io.gfile.exists(os.path.join(reports_dir, name)):
    suffix += 1
    name = f'{run_id}-{suffix}'
  data['run_id'] = name
  local = tempfile.mkdtemp(prefix='run-report-')
  try:
    write_run_report(data, local)
    target = os.path.join(reports_dir, name)
    tf.io.gfile.makedirs(target)
    for file_name in sorted(os.listdir(local)):
      tf.io.gfile.copy(os.path.join(local, file_name),
                       os.path.join(target, file_name), overwrite=False)
    with tf.io.gfile.GFile(os.path.join(reports_dir, LATEST + '.txt'),
                           'w') as f:
      f.write(name + '\n')
  finally:
    shutil.rmtree(local, ignore_errors=True)
  return os.path.join(target, page.REPORT_FILE)


class Executor(base_executor.BaseExecutor):
  """Writes the run's report; never fails because an input is missing."""

  def Do(self, input_dict, output_dict, exec_properties):
    start = time.perf_counter()
    timestamp = _clock()
    data = read_run(input_dict, exec_properties.get(PIPELINE_NAME_KEY) or '',
                    run_id_for(timestamp))
    path = publish_report(data, exec_properties[REPORTS_DIR_KEY], timestamp)
    logging.info('Run report: %s (%.1f s)', path, time.perf_counter() - start)
