"""Duplicate resolution: one kept copy per distinct image, every other reported.

Runs per sha256 group in Beam. The kept copy is the one with the shortest
path (Kaggle's archive nests a full ``chest_xray/chest_xray`` copy); copies
become duplicates; undecodable files, unusable names and images filed under
both labels are rejected with a reason. An external cohort is also checked
against the main data (`resolve_against_main`): an image the main data holds
is dropped and reported, so no evaluation counts an image the model trained
or was tuned on.
"""
from typing import Any, Dict, Iterable, Tuple

import apache_beam as beam

from components.image_example_gen.inspection import Inspected

# The outputs of `resolve_duplicates` (KEPT is the main one).
KEPT, DUPLICATE, REJECTED = 'kept', 'duplicate', 'rejected'
# ... and of `resolve_against_main`, besides those three.
IN_MAIN = 'in_main'
# The two sides of the sha256 join `resolve_against_main` receives.
COHORT, MAIN = 'cohort', 'main'


def _canonical_order(item: Inspected):
  """Prefer the shallowest, then alphabetically first, copy of an image."""
  return (item.candidate.rel_path.count('/'), item.candidate.rel_path)


def resolve_duplicates(
    sha_and_group: Tuple[str, Iterable[Inspected]]) -> Iterable[Any]:
  """Keeps one copy per sha256; tags the rest as duplicates or rejects.

  A file rejected for its own name or its own error is rejected alone, and
  its byte-identical copies are judged without it: bytes that do not decode
  fail in every copy, but a JPEG's bytes named .dcm are refused as DICOM
  beside a kept copy named .jpeg. An image filed under both NORMAL and
  PNEUMONIA is rejected in every copy. Unreadable files (no hash) are each
  rejected on their own.
  """
  sha, group = sha_and_group
  group = sorted(group, key=_canonical_order)
  rejected = [(item, item.name_error or item.error) for item in group
              if not sha or item.name_error or item.error]
  usable = [item for item in group
            if sha and not item.name_error and not item.error]
  labels = {item.candidate.label for item in usable}
  if len(labels) > 1:
    reason = ('the same image is filed under both NORMAL and PNEUMONIA: ' +
              ', '.join(item.candidate.rel_path for item in usable))
    rejected += [(item, reason) for item in usable]
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


def resolve_against_main(
    sha_and_sides: Tuple[str, Dict[str, Iterable[Any]]]) -> Iterable[Any]:
  """`resolve_duplicates` for an external cohort joined with the main data.

  sha_and_sides is a sha256 and, under COHORT, the cohort's `Inspected`
  files of those bytes and, under MAIN, the main data's paths of them. Every
  usable copy of an image the main data holds is tagged IN_MAIN (the cohort
  keeps none of them: the model may have trained on it); copies rejected for
  their own name stay rejected, as they would be without the main data.
  """
  sha, sides = sha_and_sides
  group = sorted(sides[COHORT], key=_canonical_order)
  main_paths = sorted(sides[MAIN])
  if sha and main_paths:
    for item in group:
      if not item.name_error:
        yield beam.pvalue.TaggedOutput(
            IN_MAIN, {'path': item.candidate.rel_path, 'sha256': sha,
                      'main_path': main_paths[0]})
    group = [item for item in group if item.name_error]
  if group:
    yield from resolve_duplicates((sha, group))
