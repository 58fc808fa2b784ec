"""The ingestion report: ``ingestion_report.json`` and its one-line summary.

Counts per split and class, patients per split, duplicates, rejected and
ignored files, and the links leading outside the data root that were
followed (``followed_links``: each in-tree path with the real path read).
It is written by the Beam pipeline itself (after every split is known) into
the Examples artifact, and summarised in one log line and the artifact's
``ingestion_summary`` property once the pipeline has run.

An external cohort's report has the same format, with its one split, plus
the images dropped because the main data holds them (`layout.IN_MAIN_DATA`),
whether the cohort was there at all (`layout.COHORT_PRESENT`) and where each
listed image file went (``files``), so readers need not add lists up.
With threshold_from 'external' it has two splits, CALIBRATION_SPLIT and
EXTERNAL_SPLIT (counted apart, and together under 'all'), and
`calibration_shortfall` says whether the calibration half can choose a
threshold.
"""
import collections
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import apache_beam as beam
import tensorflow as tf

from contract import layout
from contract import names as constants
from contract import operating_point

# The report lists this many ignored paths at most (a stray folder can hold
# thousands); the count is always complete.
_MAX_IGNORED_LISTED = 50


def report_path(examples_uri: str) -> str:
  return os.path.join(examples_uri, layout.INGESTION_REPORT_FILE)


def _split_key(example: tf.train.Example, split: str):
  feature = example.features.feature
  label = constants.LABEL_NAMES[feature[constants.LABEL_KEY].int64_list.value[0]]
  patient = feature[constants.PATIENT_ID_KEY].bytes_list.value[0].decode()
  return (split, label, patient)


def build_report(keys: List[Tuple[str, str, str]],
                 duplicates: List[Dict[str, str]],
                 rejected: List[Dict[str, str]],
                 ignored: List[str],
                 split_names: Sequence[str] = constants.SPLIT_NAMES,
                 followed_links: Sequence[Dict[str, str]] = ()
                 ) -> Dict[str, Any]:
  """The ingestion report from per-example (split, label, patient) keys.

  Every one of split_names is counted, even when empty.
  """
  counts = {split: {label: 0 for label in constants.LABEL_NAMES}
            for split in split_names}
  patients = collections.defaultdict(set)
  for split, label, patient in keys:
    counts.setdefault(split, {label: 0 for label in constants.LABEL_NAMES})
    counts[split][label] += 1
    patients[split].add(patient)
  for split, per_class in counts.items():
    per_class['total'] = sum(per_class[label]
                             for label in constants.LABEL_NAMES)
  counts['all'] = {key: sum(counts[s][key] for s in list(counts))
                   for key in (*constants.LABEL_NAMES, 'total')}
  return {
      'counts': counts,
      'patients': {split: len(ids) for split, ids in sorted(patients.items())},
      'duplicates': sorted(duplicates, key=lambda d: d['path']),
      'rejected': sorted(rejected, key=lambda d: d['path']),
      'ignored': {'count': len(ignored),
                  'paths': sorted(ignored)[:_MAX_IGNORED_LISTED]},
      layout.FOLLOWED_LINKS: sorted(followed_links, key=lambda d: d['path']),
  }


def build_cohort_report(keys: List[Tuple[str, str, str]],
                        duplicates: List[Dict[str, str]],
                        rejected: List[Dict[str, str]],
                        ignored: List[str],
                        in_main_data: List[Dict[str, str]],
                        present: bool, num_files: int,
                        split_names: Sequence[str] = (
                            constants.EXTERNAL_SPLIT,),
                        threshold_from: Optional[str] = None,
                        followed_links: Sequence[Dict[str, str]] = ()
                        ) -> Dict[str, Any]:
  """The report of an external cohort: `build_report` of its split(s), plus
  what the main data already holds, whether the cohort was given and (when
  known) where the threshold is chosen."""
  report = build_report(keys, duplicates, rejected, ignored,
                        tuple(split_names), followed_links)
  if threshold_from is not None:
    report[layout.THRESHOLD_FROM] = threshold_from
  report[layout.IN_MAIN_DATA] = sorted(in_main_data, key=lambda d: d['path'])
  report[layout.COHORT_PRESENT] = int(present)
  report['files'] = {
      'listed': num_files, 'kept': report['counts']['all']['total'],
      layout.IN_MAIN_DATA: len(in_main_data), 'duplicates': len(duplicates),
      'rejected': len(rejected)}
  return report


def _write_report(unused_seed, path, keys, duplicates, rejected, ignored,
                  cohort=None, in_main_data=(), followed_links=()):
  if cohort is None:
    report = build_report(keys, duplicates, rejected, ignored,
                          followed_links=followed_links)
  else:
    report = build_cohort_report(keys, duplicates, rejected, ignored,
                                 list(in_main_data), **cohort,
                                 followed_links=followed_links)
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(report, f, indent=1, sort_keys=True)


def write_report(pipeline: beam.Pipeline,
                 splits: Mapping[str, beam.PCollection],
                 duplicates: beam.PCollection, rejected: beam.PCollection,
                 ignored: List[str], path: str,
                 cohort: Optional[Dict[str, Any]] = None,
                 in_main_data: Optional[beam.PCollection] = None,
                 followed_links: Sequence[Dict[str, str]] = ()) -> None:
  """Adds the steps that write the report to path once every split is known.

  Args:
    pipeline: the pipeline that builds `splits`.
    splits: split name -> its tf.Examples (as partitioned).
    duplicates: {'path', 'duplicate_of'} of every duplicate dropped.
    rejected: {'path', 'reason'} of every file rejected.
    ignored: relative paths the listing ignored.
    path: the report file (`report_path`).
    cohort: of an external cohort only, {'present': bool, 'num_files': int}
      (see `build_cohort_report`); None for the main data.
    in_main_data: of an external cohort, {'path', 'sha256', 'main_path'} of
      the images the main data holds (None: none were looked for).
    followed_links: {'path', 'real_path'} of each link leading outside the
      data root that was followed (walk.list_tree).
  """
  keys = (
      [example_split | f'SplitKeys[{name}]' >> beam.Map(_split_key, name)
       for name, example_split in splits.items()]
      | 'AllSplitKeys' >> beam.Flatten())
  _ = (
      pipeline
      | 'ReportSeed' >> beam.Create([None])
      | 'WriteReport' >> beam.Map(
          _write_report, path,
          keys=beam.pvalue.AsList(keys),
          duplicates=beam.pvalue.AsList(duplicates),
          rejected=beam.pvalue.AsList(rejected),
          ignored=ignored, cohort=cohort,
          followed_links=list(followed_links),
          in_main_data=(() if in_main_data is None
                        else beam.pvalue.AsList(in_main_data))))


def read_report(path: str) -> Dict[str, Any]:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def calibration_shortfall(report: Dict[str, Any]) -> Optional[str]:
  """Why the calibration half cannot choose the threshold, or None.

  Fewer than operating_point.MIN_THRESHOLD_POSITIVES PNEUMONIA images in
  CALIBRATION_SPLIT (none when the report has no such split).
  """
  counts = report['counts'].get(constants.CALIBRATION_SPLIT)
  positives = 0 if counts is None else counts[
      constants.LABEL_NAMES[constants.PNEUMONIA]]
  minimum = operating_point.MIN_THRESHOLD_POSITIVES
  if positives >= minimum:
    return None
  evaluated = report['counts'].get(constants.EXTERNAL_SPLIT, {})
  return (
      f'threshold_from is external, but the calibration half of the '
      f'external cohort holds {positives} PNEUMONIA images (of '
      f"{0 if counts is None else counts['total']}; the evaluation half "
      f"holds {evaluated.get('total', 0)}): at least {minimum} are needed to "
      f'choose an operating threshold on. Give a larger external cohort '
      f'(about {2 * minimum} PNEUMONIA images or more, split by patient into '
      f'two halves), or run with --threshold-from eval (Kubeflow: '
      f'threshold_from=eval) to choose it on the eval split. Stopped before '
      f'training.')


def summarize(report: Dict[str, Any]) -> str:
  """One readable line for the log."""
  counts = report['counts']
  if report.get(layout.COHORT_PRESENT) == 0:
    return ('External cohort absent (empty data root): no images ingested, '
            f'the {constants.EXTERNAL_SPLIT} split is empty.')
  names = [split for split in constants.SPLIT_NAMES if split in counts] + [
      split for split in sorted(counts)
      if split not in constants.SPLIT_NAMES and split != 'all']
  splits = '; '.join(
      f"{split} {counts[split]['total']} ("
      + ', '.join(f'{counts[split][label]} {label}'
                  for label in constants.LABEL_NAMES) + ')'
      for split in names)
  in_main = (f'{len(report[layout.IN_MAIN_DATA])} already in the main data '
             'dropped, ' if layout.IN_MAIN_DATA in report else '')
  cohort = 'External cohort: ' if layout.COHORT_PRESENT in report else ''
  return (f"{cohort}Ingested {counts['all']['total']} images: {splits}; "
          f"{in_main}{len(report['duplicates'])} duplicates dropped, "
          f"{len(report['rejected'])} files rejected, "
          f"{report['ignored']['count']} entries ignored.")


def log_summary(path: str) -> str:
  """Reads the written report at path, logs its summary and returns it."""
  report = read_report(path)
  logging.info('%s Report: %s', summarize(report), path)
  return summarize(report)
