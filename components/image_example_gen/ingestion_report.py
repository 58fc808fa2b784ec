"""The ingestion report: ``ingestion_report.json`` and its one-line summary.

Counts per split and class, patients per split, duplicates, rejected and
ignored files. It is written by the Beam pipeline itself (after every split
is known) into the Examples artifact, and summarised in one log line and the
artifact's ``ingestion_summary`` property once the pipeline has run.
"""
import collections
import json
import os
from typing import Any, Dict, List, Mapping, Tuple

from absl import logging
import apache_beam as beam
import tensorflow as tf

from contract import layout
from contract import names as constants

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
                 ignored: List[str]) -> Dict[str, Any]:
  """The ingestion report from per-example (split, label, patient) keys."""
  counts = {split: {label: 0 for label in constants.LABEL_NAMES}
            for split in constants.SPLIT_NAMES}
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
  }


def _write_report(unused_seed, path, keys, duplicates, rejected, ignored):
  report = build_report(keys, duplicates, rejected, ignored)
  with tf.io.gfile.GFile(path, 'w') as f:
    json.dump(report, f, indent=1, sort_keys=True)


def write_report(pipeline: beam.Pipeline,
                 splits: Mapping[str, beam.PCollection],
                 duplicates: beam.PCollection, rejected: beam.PCollection,
                 ignored: List[str], path: str) -> None:
  """Adds the steps that write the report to path once every split is known.

  Args:
    pipeline: the pipeline that builds `splits`.
    splits: split name -> its tf.Examples (as partitioned).
    duplicates: {'path', 'duplicate_of'} of every duplicate dropped.
    rejected: {'path', 'reason'} of every file rejected.
    ignored: relative paths the listing ignored.
    path: the report file (`report_path`).
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
          ignored=ignored))


def summarize(report: Dict[str, Any]) -> str:
  """One readable line for the log."""
  counts = report['counts']
  splits = '; '.join(
      f"{split} {counts[split]['total']} ("
      + ', '.join(f'{counts[split][label]} {label}'
                  for label in constants.LABEL_NAMES) + ')'
      for split in constants.SPLIT_NAMES)
  return (f"Ingested {counts['all']['total']} images: {splits}; "
          f"{len(report['duplicates'])} duplicates dropped, "
          f"{len(report['rejected'])} files rejected, "
          f"{report['ignored']['count']} entries ignored.")


def log_summary(path: str) -> str:
  """Reads the written report at path, logs its summary and returns it."""
  with tf.io.gfile.GFile(path) as f:
    report = json.load(f)
  logging.info('%s Report: %s', summarize(report), path)
  return summarize(report)
