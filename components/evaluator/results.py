"""Reading TFMA's outputs: metrics per slice and model, validation result."""
from typing import Dict, Optional, Tuple

import tensorflow_model_analysis as tfma

from contract.layout import CANDIDATE, OVERALL


def slice_name(slice_key) -> str:
  """'overall' or 'feature=value' for a TFMA slice key."""
  if not slice_key:
    return OVERALL
  return ','.join(f'{column}={value.decode() if isinstance(value, bytes) else value}'
                  for column, value in slice_key)


def _matrices(confusion_matrix_at_thresholds):
  return [{'threshold': m.threshold, 'tp': m.true_positives,
           'fp': m.false_positives, 'tn': m.true_negatives,
           'fn': m.false_negatives}
          for m in confusion_matrix_at_thresholds.matrices]


def _value(metric_value):
  kind = metric_value.WhichOneof('type')
  if kind == 'double_value':
    return metric_value.double_value.value
  if kind == 'confusion_matrix_at_thresholds':
    return _matrices(metric_value.confusion_matrix_at_thresholds)
  return None


def load_metrics(evaluation_uri: str) -> Dict[Tuple[str, str, str], object]:
  """{(slice, model, metric): value}; model is 'candidate' or 'baseline',
  with '_diff' appended for candidate-minus-baseline values."""
  result = {}
  for per_slice in tfma.load_metrics(evaluation_uri):
    name = slice_name(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
    for kv in per_slice.metric_keys_and_values:
      model = kv.key.model_name or CANDIDATE
      if kv.key.is_diff:
        model += '_diff'
      value = _value(kv.value)
      if value is not None:
        result[(name, model, kv.key.name)] = value
  return result


def load_plots(evaluation_uri: str, model: str = CANDIDATE):
  """{slice: {'confusion_matrices': [...], 'calibration': [...]}}."""
  plots = {}
  for per_slice in tfma.load_plots(evaluation_uri):
    name = slice_name(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
    for kv in per_slice.plot_keys_and_values:
      if (kv.key.model_name or CANDIDATE) != model:
        continue
      value = kv.value
      entry = plots.setdefault(name, {})
      # One PlotData may hold both plots (no oneof to dispatch on).
      if value.HasField('confusion_matrix_at_thresholds'):
        entry['confusion_matrices'] = _matrices(
            value.confusion_matrix_at_thresholds)
      if value.HasField('calibration_histogram_buckets'):
        entry['calibration'] = [
            {'lower': b.lower_threshold_inclusive,
             'upper': b.upper_threshold_exclusive,
             'weight': b.num_weighted_examples.value,
             'labels': b.total_weighted_label.value,
             'predictions': b.total_weighted_refined_prediction.value}
            for b in value.calibration_histogram_buckets.buckets]
  return plots


def validation_ok(evaluation_uri: str) -> Optional[bool]:
  try:
    return bool(tfma.load_validation_result(evaluation_uri).validation_ok)
  except (OSError, IOError, ValueError):
    return None
