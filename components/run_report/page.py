"""The run report page: one self-contained report.html with PNGs beside it.

`write_report(run, folder)` draws the figures (drawing.py) into `folder`
and writes `folder/report.html` from the view model (view.py) through
templates/report.html.j2, which references the PNGs by relative file
name. The CSS (templates/report.css) is inlined: no script, no external
URL, so the page opens the same from a laptop, a file share or an
archived copy. Autoescape is on: every value from the run is escaped.
"""
import functools
import math
import os
from typing import Any

import jinja2
import markupsafe

from components.run_report import drawing
from components.run_report import figures
from components.run_report import view
from components.run_report.run import COMPARISON_NAME
from components.run_report.run import HISTORY_NAME
from components.run_report.run import MODEL_INFO_NAME
from components.run_report.run import Run
from contract import layout

TEMPLATES_DIR = os.path.join(os.path.dirname(__file__), 'templates')
TEMPLATE = 'report.html.j2'
STYLESHEET = 'report.css'
# report.css is inlined up to this line; what follows it only on a page with
# an external cohort, so a page without one is byte for byte what it was.
EXTERNAL_STYLES = '/* --- external cohort:'
# The run's files as the page names them.
FILES = {'decision': layout.DECISION_FILE, 'model_info': MODEL_INFO_NAME,
         'comparison': COMPARISON_NAME, 'history': HISTORY_NAME,
         'ingestion': layout.INGESTION_REPORT_FILE}


def fmt(value: Any, digits: int = 4) -> str:
  """A number for a table cell: '—' when absent, 'n/a' when undefined."""
  if value is None:
    return '—'
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  if isinstance(value, int):
    return f'{value:,}'
  if isinstance(value, float):
    if math.isnan(value):
      return 'n/a'
    if digits == 0:
      return f'{value:,.0f}'
    return f'{value:.{digits}f}'
  return str(value)


def integer(value: Any) -> str:
  """A count: a whole number with thousands separators, else as fmt."""
  return f'{int(value):,}' if figures.is_number(value) else fmt(value)


@functools.lru_cache(maxsize=None)
def environment() -> jinja2.Environment:
  """The templates, with autoescape on and strict about unknown names."""
  env = jinja2.Environment(
      loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
      keep_trailing_newline=True)
  env.filters['fmt'] = fmt
  env.filters['integer'] = integer
  return env


def render(report: view.Report, drawn: drawing.Drawn) -> str:
  """The HTML page of `report` with the figures `drawn`."""
  env = environment()
  css, _, _ = env.loader.get_source(env, STYLESHEET)
  if report.external is None:
    css = css.partition(EXTERNAL_STYLES)[0]
  return env.get_template(TEMPLATE).render(
      report=report, drawn=drawn, css=markupsafe.Markup(css), files=FILES)


def write_report(run: Run, folder: str) -> str:
  """Draws the figures into `folder` and writes report.html; its path."""
  drawn = drawing.draw(run, folder)
  page = render(view.build(run), drawn)
  path = os.path.join(folder, layout.REPORT_FILE)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(page)
  return path
