"""How the run report and the model card show a number (their templates'
`fmt` and `integer` filters)."""
import math
from typing import Any

from components.run_report import figures


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
