"""The model card's files: model_card.md and model_card.html from one
card.ModelCard, through templates/model_card.{md,html}.j2.

Markdown is plain text (no autoescape; `cell` keeps a value in its table
cell); the HTML page is autoescaped, with its CSS inlined (no script, no
external URL). Before anything is written, every heading of card.SECTIONS
must be in each rendering, in order: a template that loses a section fails
here, loudly, not in a reader's hands.
"""
import functools
import os
from typing import Dict, Optional

import jinja2
import markupsafe
import tensorflow as tf

from components.model_card import card as card_lib
from components.model_card import intervals
from components.run_report import formatting
from contract import layout

TEMPLATES_DIR = os.path.join(os.path.dirname(__file__), 'templates')
STYLESHEET = 'model_card.css'
INTERVAL_DIGITS = 3


class MissingSectionError(ValueError):
  """A rendering lacks a heading of card.SECTIONS (or has them out of order)."""


def interval(value: Optional[intervals.Interval]) -> str:
  if value is None:
    return ''
  return (f'{value.low:.{INTERVAL_DIGITS}f}–'
          f'{value.high:.{INTERVAL_DIGITS}f}')


def cell(value) -> str:
  """A value inside a Markdown table cell: no pipe, no line break."""
  return str(value).replace('|', '\\|').replace('\n', ' ')


@functools.lru_cache(maxsize=None)
def environment(extension: str) -> jinja2.Environment:
  env = jinja2.Environment(
      loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
      autoescape=extension == 'html', undefined=jinja2.StrictUndefined,
      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
  env.filters.update(fmt=formatting.fmt, integer=formatting.integer, interval=interval,
                     cell=cell)
  return env


def _heading(extension: str, name: str) -> str:
  return f'\n## {name}\n' if extension == 'md' else f'">{name}</h2>'


def check_sections(rendered: str, extension: str,
                   sections=card_lib.SECTIONS) -> None:
  """Raises MissingSectionError unless every section's heading is there,
  in order."""
  at = -1
  for name in sections:
    found = rendered.find(_heading(extension, markupsafe.escape(name)
                                   if extension == 'html' else name))
    if found < 0:
      raise MissingSectionError(f'model_card.{extension} has no '
                                f'"{name}" section')
    if found < at:
      raise MissingSectionError(f'model_card.{extension}: "{name}" is out '
                                'of order')
    at = found


def render(card: card_lib.ModelCard, extension: str) -> str:
  env = environment(extension)
  context = {'card': card}
  if extension == 'html':
    css, _, _ = env.loader.get_source(env, STYLESHEET)
    context['css'] = markupsafe.Markup(css)
  rendered = env.get_template(
      f'{layout.MODEL_CARD_STEM}.{extension}.j2').render(**context)
  check_sections(rendered, extension, card.sections)
  return rendered


def write(card: card_lib.ModelCard, folder: str) -> Dict[str, str]:
  """Writes model_card.md and model_card.html into `folder` (a local path
  or a URI); {extension: path}. Both are rendered before either is
  written."""
  rendered = {ext: render(card, ext) for ext in layout.MODEL_CARD_EXTENSIONS}
  tf.io.gfile.makedirs(folder)
  paths = {}
  for extension, content in rendered.items():
    paths[extension] = layout.model_card_file(folder, extension)
    with tf.io.gfile.GFile(paths[extension], 'w') as f:
      f.write(content)
  return paths

