"""The view model's data section: images per split and class, and the
files ingestion dropped, rejected or ignored (long lists cut short), for
the main data and, when there is one, the external cohort (whose report
also lists the images dropped because the main data holds them)."""
import dataclasses
from typing import Any, List, Optional, Tuple

from components.run_report import figures
from components.run_report.run import Run
from contract import layout

MAX_LISTED = 50  # rows of rejected / duplicate / ignored files shown
SPLITS = ('train', 'eval', 'test')
ALL = 'all'  # the counts' total over splits


@dataclasses.dataclass(frozen=True)
class Split:
  name: str
  normal: Any
  pneumonia: Any
  total: Any
  patients: Any

  @property
  def is_all(self) -> bool:
    return self.name == ALL


@dataclasses.dataclass(frozen=True)
class Listing:
  """The first MAX_LISTED (path, detail, ...) rows of a list, its length."""
  rows: List[Tuple[Any, ...]]
  total: int

  @property
  def more(self) -> int:
    return self.total - len(self.rows)


@dataclasses.dataclass(frozen=True)
class Ingestion:
  splits: List[Split]  # train, eval, test, others, then all
  duplicates: Listing  # (path, the identical file kept)
  rejected: Listing  # (path, reason)
  ignored_count: Any
  ignored: List[str]  # the first MAX_LISTED paths
  # An external cohort's: (path, the main data's copy, sha256).
  in_main_data: Optional[Listing] = None

  @property
  def ignored_more(self) -> int:
    count = self.ignored_count
    return count - len(self.ignored) if figures.is_number(count) else 0


def _splits(report: dict) -> List[Split]:
  counts = report.get('counts') or {}
  patients = report.get('patients') or {}
  names = [s for s in SPLITS if s in counts]
  names += sorted(s for s in counts if s not in names and s != ALL)
  if ALL in counts:
    names.append(ALL)
  splits = []
  for name in names:
    c = counts[name] or {}
    total = c.get('total')
    if total is None:
      total = sum(v for v in c.values() if figures.is_number(v))
    if name != ALL:
      people = patients.get(name)
    else:
      people = (sum(v for v in patients.values() if figures.is_number(v))
                if patients else None)
    splits.append(Split(name, c.get('NORMAL', 0), c.get('PNEUMONIA', 0),
                        total, people))
  return splits


def _listing(entries: List[dict], *keys: str) -> Listing:
  return Listing([tuple(e.get(key) for key in keys)
                  for e in entries[:MAX_LISTED]], len(entries))


def from_report(report: Optional[dict]) -> Optional[Ingestion]:
  """An ingestion_report.json as the page shows it; None without one."""
  if not report:
    return None
  ignored = report.get('ignored') or {}
  paths = ignored.get('paths') or []
  in_main = report.get(layout.IN_MAIN_DATA)
  return Ingestion(
      splits=_splits(report),
      duplicates=_listing(report.get('duplicates') or [], 'path',
                          'duplicate_of'),
      rejected=_listing(report.get('rejected') or [], 'path', 'reason'),
      ignored_count=ignored.get('count', len(paths)),
      ignored=paths[:MAX_LISTED],
      in_main_data=None if in_main is None else _listing(
          in_main, 'path', 'main_path', 'sha256'))


def build(run: Run) -> Optional[Ingestion]:
  """The main data's; None when there is no ingestion report."""
  return from_report(run.ingestion)
