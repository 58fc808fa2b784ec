"""Checks what a submit or schedule is given before anything is sent to KFP.

A bad cron expression, a missing package or a parameter the pipeline does not
take raises `ValueError` here, with a message saying what would be accepted,
instead of a server error after an upload.
"""
import os
import re
from typing import Any, Dict, Optional

import yaml

from runners import kfp_connection

# KFP's scheduler (robfig/cron) reads 6 fields, the first being seconds.
CRON_FIELDS = (
    # name, lowest, highest, names allowed
    ('seconds', 0, 59, None),
    ('minutes', 0, 59, None),
    ('hours', 0, 23, None),
    ('day-of-month', 1, 31, None),
    ('month', 1, 12, ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug',
                      'sep', 'oct', 'nov', 'dec')),
    ('day-of-week', 0, 6, ('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat')),
)
_CRON_LAYOUT = ' '.join(name for name, *_ in CRON_FIELDS)
_CRON_ITEM = re.compile(r'^(?:(\*|\?)|([0-9a-z]+)(?:-([0-9a-z]+))?)'
                        r'(?:/([0-9]+))?$', re.IGNORECASE)


def validate_cron(expression: str) -> str:
  """Checks a KFP cron expression; returns it with single spaces.

  KFP's cron has 6 fields, the first being seconds:
  `seconds minutes hours day-of-month month day-of-week`, so Sundays at
  03:00:00 is `0 0 3 * * 0`. Each field is `*`, `?`, a value, a range
  `a-b` or a comma-separated list of these, each optionally with a `/step`;
  months and weekdays may be named (`JAN`, `SUN`).

  Args:
    expression: the cron expression.

  Returns:
    The expression, whitespace-normalised.

  Raises:
    ValueError: not 6 fields of valid cron syntax; a 5-field (classic crontab)
      expression gets the 6-field equivalent in the message.
  """
  fields = str(expression).split()
  if len(fields) == 5 and not _cron_problems(fields, CRON_FIELDS[1:]):
    suggestion = '0 ' + ' '.join(fields)
    raise ValueError(
        f'cron expression {expression!r} has 5 fields, but KFP cron '
        f'expressions have 6, starting with seconds ({_CRON_LAYOUT}); '
        f'the same schedule at second 0 is {suggestion!r}')
  if len(fields) != 6:
    raise ValueError(
        f'cron expression {expression!r} has {len(fields)} fields; KFP needs '
        f'6 ({_CRON_LAYOUT}), e.g. \'0 0 3 * * 0\' for Sundays at 03:00:00')
  problems = _cron_problems(fields, CRON_FIELDS)
  if problems:
    raise ValueError(f'invalid cron expression {expression!r}: '
                     f'{"; ".join(problems)} (fields: {_CRON_LAYOUT})')
  return ' '.join(fields)


def check_params(package_path: str, params: Dict[str, Any]) -> None:
  """Refuses a missing package and parameters its pipeline does not take."""
  if not os.path.isfile(package_path):
    raise ValueError(f'pipeline package not found: {package_path}')
  try:
    with open(package_path) as f:  # a platform spec may follow the pipeline
      spec = next(iter(yaml.safe_load_all(f)), None)
  except (yaml.YAMLError, UnicodeDecodeError) as e:
    raise ValueError(f'{package_path} is not a KFP pipeline YAML: '
                     f'{kfp_connection.one_line(e)}') from e
  if not isinstance(spec, dict):
    raise ValueError(f'{package_path} is not a KFP pipeline YAML')
  spec = spec.get('pipelineSpec', spec)
  if not isinstance(spec.get('root'), dict):
    raise ValueError(f'{package_path} is not a KFP pipeline YAML (no root '
                     'component)')
  inputs = spec['root'].get('inputDefinitions') or {}
  known = set((inputs.get('parameters') or {})
              if isinstance(inputs, dict) else {})
  unknown = sorted(set(params) - known)
  if unknown:
    raise ValueError(
        f'the pipeline in {package_path} has no parameter(s) '
        f'{", ".join(unknown)}; it takes: {", ".join(sorted(known)) or "none"}')


def _cron_problems(fields, specs) -> list:
  """What is wrong with each cron field, as readable strings."""
  problems = []
  for value, (name, low, high, names) in zip(fields, specs):
    for item in value.split(','):
      problem = _cron_item_problem(item, low, high, names)
      if problem:
        problems.append(f'{name} field {value!r}: {problem}')
        break
  return problems


def _cron_item_problem(item, low, high, names) -> Optional[str]:
  """Why one comma-separated cron item is invalid, or None."""
  match = _CRON_ITEM.match(item)
  if not match:
    return f'{item!r} is not *, ?, a value or a range, with an optional /step'
  _, start, end, step = match.groups()
  if step is not None and int(step) == 0:
    return 'step 0'
  bounds = []
  for token in (start, end):
    if token is None:
      continue
    if token.isdigit():
      number = int(token)
    elif names and token.lower() in names:
      number = names.index(token.lower()) + low
    else:
      return f'{token!r} is not a number' + (
          f' or one of {", ".join(n.upper() for n in names)}' if names else '')
    if not low <= number <= high:
      return f'{number} is outside {low}-{high}'
    bounds.append(number)
  if len(bounds) == 2 and bounds[0] > bounds[1]:
    return f'range {item!r} runs backwards'
  return None
