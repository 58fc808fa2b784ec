"""How far the new training data is from the data the deployed model learned
from: TFDV's drift comparators, with the thresholds of the curated schema.

`compare` runs `tfdv.validate_statistics` with the baseline as the previous
statistics, so every feature with a `drift_comparator` in
schemas/schema.pbtxt is measured (L-infinity for categorical features,
approximate Jensen-Shannon divergence for numeric ones). Only the drift
verdicts are kept: schema anomalies are ExampleValidator's job.
"""
from typing import Any, Dict, List

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

_MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: 'L-infinity',
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        'Jensen-Shannon divergence',
}
# Which features of the curated schema drift is watched on, and by what.
_COMPARATORS = {'infinity_norm': 'L-infinity',
                'jensen_shannon_divergence': 'Jensen-Shannon divergence'}


def watched(schema: schema_pb2.Schema) -> Dict[str, str]:
  """{feature: measure} of every feature the schema gives a drift
  comparator with a threshold."""
  found = {}
  for feature in schema.feature:
    comparator = feature.drift_comparator
    for field, measure in _COMPARATORS.items():
      if comparator.HasField(field) and getattr(comparator, field).threshold:
        found[feature.name] = measure
  return found


def compare(current: statistics_pb2.DatasetFeatureStatisticsList,
            baseline: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema) -> List[Dict[str, Any]]:
  """One row per watched feature, sorted by name: {'feature', 'measure',
  'value', 'threshold', 'drifted'}.

  A watched feature TFDV did not measure (absent from one side, e.g. a
  baseline written before the feature existed) is a row with value None,
  not drifted: it could not be compared, and the report says so.
  """
  anomalies = tfdv.validate_statistics(current, schema,
                                       previous_statistics=baseline)
  measured = {}
  for info in anomalies.drift_skew_info:
    name = '.'.join(info.path.step)
    for measurement in info.drift_measurements:
      measured[name] = (_MEASURE_NAMES.get(measurement.type,
                                           str(measurement.type)),
                        measurement.value, measurement.threshold)
  rows = []
  for name, measure in sorted(watched(schema).items()):
    if name in measured:
      measure, value, threshold = measured[name]
      rows.append({'feature': name, 'measure': measure,
                   'value': round(float(value), 6),
                   'threshold': float(threshold),
                   'drifted': bool(value > threshold)})
    else:
      rows.append({'feature': name, 'measure': measure, 'value': None,
                   'threshold': None, 'drifted': False})
  return rows


def describe(rows: List[Dict[str, Any]]) -> List[str]:
  """One line per drifted feature."""
  return [f"{row['feature']}: {row['measure']} {row['value']:.3f} above "
          f"the threshold {row['threshold']:g}" for row in rows
          if row['drifted']]
