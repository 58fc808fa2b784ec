"""Executor of RunReport: OUTPUT_DIR/reports/<run id>/report.html.

Reads what the run produced (reading.read_run: ingestion report, training
history and comparison, the model's operating point, TFMA metrics and
plots, the blessing decision, the deployed baseline and the push, and an
external cohort's ingestion report and TFMA output when there is one) into a
run.Run, then page.write_report draws the PNG figures and writes the page
beside them, with the model card (model_card.md/.html) of a run that reached
evaluate. Every input may be missing or unreadable: the report is still
written and says what is missing.

Each run gets its own folder, named by the UTC time `YYYYmmdd-HHMMSS` (with
`-1`, `-2`, ... appended if that folder exists; earlier reports are never
overwritten), and `reports/latest` is a relative symlink to the newest,
replaced atomically.
"""
import dataclasses
import os
import shutil
import tempfile
import time
import traceback
import uuid

from absl import logging
import jinja2
import tensorflow as tf
from tfx.dsl.components.base import base_executor

from components.run_report import page
from components.run_report import reading
from components.run_report.run import Run
from contract import layout

REPORTS_DIR_KEY = 'reports_dir'
PIPELINE_NAME_KEY = 'pipeline_name'

_clock = time.time  # replaced in tests


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
  latest = os.path.join(reports_dir, layout.LATEST_REPORT)
  temporary = os.path.join(reports_dir,
                           f'.{layout.LATEST_REPORT}-{uuid.uuid4().hex}')
  os.symlink(name, temporary)
  try:
    os.replace(temporary, latest)
  except OSError:
    os.remove(temporary)
    raise
  return latest


# Needs no template file: it must work when the page itself does not.
_FALLBACK = jinja2.Environment(autoescape=True).from_string(
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>Run report'
    '</title></head><body><h1>Run report {{ run.run_id }}</h1><p>The report '
    'could not be built: {{ error_type }}: {{ error }}</p><pre>{{ trace }}'
    '</pre><h2>Inputs</h2><ul>{% for key, uris in inputs %}<li>{{ key }}: '
    '{{ uris|join(", ") or "—" }}</li>{% endfor %}</ul></body></html>\n')


def _fallback_page(run: Run, error: BaseException) -> str:
  """A bare page for when the report itself fails: still something to read."""
  return _FALLBACK.render(run=run, error_type=type(error).__name__,
                          error=error, trace=traceback.format_exc(),
                          inputs=sorted(run.inputs.items()))


def write_run_report(run: Run, folder: str) -> str:
  """page.write_report, or a bare page saying why it failed."""
  try:
    return page.write_report(run, folder)
  except Exception as e:  # pylint: disable=broad-except
    logging.exception('Run report failed; writing a bare page instead.')
    path = os.path.join(folder, layout.REPORT_FILE)
    with open(path, 'w', encoding='utf-8') as f:
      f.write(_fallback_page(run, e))
    return path


def publish_report(run: Run, reports_dir: str, timestamp: float) -> str:
  """Writes the report into a new run folder under reports_dir, points
  `latest` at it and returns the path of report.html."""
  run_id = run_id_for(timestamp)
  if not run.created:
    run = dataclasses.replace(run, created=time.strftime(
        '%Y-%m-%d %H:%M:%S UTC', time.gmtime(timestamp)))
  if '://' not in reports_dir:
    name = claim_folder(reports_dir, run_id)
    path = write_run_report(dataclasses.replace(run, run_id=name),
                            os.path.join(reports_dir, name))
    try:
      point_latest(reports_dir, name)
    except OSError as e:
      logging.warning('Could not point %s at %s: %s',
                      os.path.join(reports_dir, layout.LATEST_REPORT), name,
                      e)
    return path
  # Object stores have neither atomic folder creation nor symlinks: build
  # locally, copy, and record the newest run id in a `latest.txt` file.
  name, suffix = run_id, 0
  while tf.io.gfile.exists(os.path.join(reports_dir, name)):
    suffix += 1
    name = f'{run_id}-{suffix}'
  local = tempfile.mkdtemp(prefix='run-report-')
  try:
    write_run_report(dataclasses.replace(run, run_id=name), local)
    target = os.path.join(reports_dir, name)
    tf.io.gfile.makedirs(target)
    for file_name in sorted(os.listdir(local)):
      tf.io.gfile.copy(os.path.join(local, file_name),
                       os.path.join(target, file_name), overwrite=False)
    with tf.io.gfile.GFile(
        os.path.join(reports_dir, layout.LATEST_REPORT + '.txt'), 'w') as f:
      f.write(name + '\n')
  finally:
    shutil.rmtree(local, ignore_errors=True)
  return os.path.join(target, layout.REPORT_FILE)


class Executor(base_executor.BaseExecutor):
  """Writes the run's report; never fails because an input is missing."""

  def Do(self, input_dict, output_dict, exec_properties):
    start = time.perf_counter()
    timestamp = _clock()
    run = reading.read_run(input_dict,
                           exec_properties.get(PIPELINE_NAME_KEY) or '',
                           run_id_for(timestamp))
    path = publish_report(run, exec_properties[REPORTS_DIR_KEY], timestamp)
    logging.info('Run report: %s (%.1f s)', path, time.perf_counter() - start)
