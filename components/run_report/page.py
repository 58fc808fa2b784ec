"""The run report page: one self-contained report.html with PNGs beside it.

`write_report(run, folder)` draws the figures (drawing.py) into `folder`
and writes `folder/report.html` from the view model (view.py) through
templates/report.html.j2, which references the PNGs by relative file
name. The CSS (templates/report.css) is inlined: no script, no external
URL, so the page opens the same from a laptop, a file share or an
archived copy. Autoescape is on: every value from the run is escaped.
A run that reached evaluate also gets its model card (components/
model_card) beside the page, which links to it.
"""
import functools
import os
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
import jinja2
import markupsafe

from components.model_card import card as model_card
from components.model_card import render as card_files
from components.run_report import drawing
from components.run_report import gallery as gallery_lib
from components.run_report import reading
from components.run_report.formatting import fmt
from components.run_report.formatting import integer
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


def render(report: view.Report, drawn: drawing.Drawn,
           card: Optional[Dict[str, str]] = None,
           card_problems: Sequence[str] = (),
           gallery: str = '') -> str:
  """The HTML page of `report` with the figures `drawn`, linking the model
  card `card` ({extension: file name}) if there is one."""
  env = environment()
  css, _, _ = env.loader.get_source(env, STYLESHEET)
  if report.external is None:
    css = css.partition(EXTERNAL_STYLES)[0]
  return env.get_template(TEMPLATE).render(
      report=report, drawn=drawn, css=markupsafe.Markup(css), files=FILES,
      card=card, card_problems=list(card_problems),
      gallery=markupsafe.Markup(gallery))  # gallery.render escaped it


def write_card(run: Run, folder: str
               ) -> Tuple[Optional[Dict[str, str]], List[str]]:
  """The model card beside the report, for a run that reached evaluate
  (it has an evaluation input): ({extension: file name} or None, what
  went wrong). A card that fails leaves the report to be written."""
  if not run.inputs.get(reading.EVALUATION_KEY):
    return None, []
  try:
    paths = card_files.write(model_card.build(run), folder)
  except Exception as e:  # pylint: disable=broad-except
    logging.exception('The model card could not be written.')
    return None, [f'the model card could not be written: '
                  f'{type(e).__name__}: {e}']
  return {ext: os.path.basename(path) for ext, path in paths.items()}, []


def write_report(run: Run, folder: str) -> str:
  """Draws the figures into `folder`, writes the model card and
  report.html; the report's path."""
  drawn = drawing.draw(run, folder)
  card, card_problems = write_card(run, folder)
  shown = gallery_lib.render(gallery_lib.for_run(
      run.inputs, folder, reading.MODEL_KEY, reading.EXAMPLES_KEY))
  page = render(view.build(run), drawn, card, card_problems, shown)
  path = os.path.join(folder, layout.REPORT_FILE)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(page)
  return path
