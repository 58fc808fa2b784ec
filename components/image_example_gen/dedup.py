"""Duplicate resolution: one kept copy per distinct image, every other reported.

Runs per sha256 group in Beam. The kept copy is the one with the shortest
path (Kaggle's archive nests a full ``chest_xray/chest_xray`` copy); copies
become duplicates; undecodable files, unusable names and images filed under
both labels are rejected with a reason.
"""
from typing import Any, Iterable, Tuple

import apache_beam as beam

from components.image_example_gen.inspection import Inspected

# The outputs of `resolve_duplicates` (KEPT is the main one).
KEPT, DUPLICATE, REJECTED = 'kept', 'duplicate', 'rejected'


def _canonical_order(item: Inspected):
  """Prefer the shallowest, then alphabetically first, copy of an image."""
  return (item.candidate.rel_path.count('/'), item.candidate.rel_path)


def resolve_duplicates(
    sha_and_group: Tuple[str, Iterable[Inspected]]) -> Iterable[Any]:
  """Keeps one copy per sha256; tags the rest as duplicates or rejects.

  A file rejected for its own name is rejected alone, and its byte-identical
  copies are judged without it. Bytes that do not decode are rejected in
  every copy; so is an image filed under both NORMAL and PNEUMONIA.
  Unreadable files (no hash) are each rejected on their own.
  """
  sha, group = sha_and_group
  group = sorted(group, key=_canonical_order)
  rejected = [(item, item.name_error or item.error) for item in group
              if not sha or item.name_error]
  usable = [item for item in group if sha and not item.name_error]
  labels = {item.candidate.label for item in usable}
  if len(labels) > 1:
    reason = ('the same image is filed under both NORMAL and PNEUMONIA: ' +
              ', '.join(item.candidate.rel_path for item in usable))
    rejected += [(item, reason) for item in usable]
    usable = []
  elif usable and usable[0].error:  # bytes that do not decode
    rejected += [(item, item.error) for item in usable]
    usable = []
  for item, reason in rejected:
    yield beam.pvalue.TaggedOutput(
        REJECTED, {'path': item.candidate.rel_path, 'reason': reason})
  if usable:
    keep, *copies = usable
    for item in copies:
      yield beam.pvalue.TaggedOutput(
          DUPLICATE, {'path': item.candidate.rel_path,
                      'duplicate_of': keep.candidate.rel_path})
    yield keep
