"""What the Evaluator measures and what it takes to bless a model.

TensorFlow Model Analysis, on the `test` split (and on an external cohort
when one is given), through the `serving_examples` signature. Blessing needs
the value thresholds (AUC and recall, i.e. sensitivity, at the model's own
operating threshold) AND no regression against the deployed model (AUC may
not drop by more than `max_auc_drop`); with nothing deployed the change
threshold is ignored (TFX's rubber stamp), so the first model is judged on
values alone. The external cohort has bounds of its own (`external_gates`)
and the same allowed drop, measured against the deployed model on that
cohort.

Metrics computed at the operating threshold carry the placeholder threshold
below; components/evaluator replaces it with the threshold stored in the
candidate model before TFMA runs, since it is only known after training.
"""
import dataclasses
import json

import tensorflow_model_analysis as tfma

from contract import names as constants
from contract import options

# Replaced at run time by the candidate model's operating threshold.
OPERATING_THRESHOLD_PLACEHOLDER = 0.5
# TFMA metrics computed at a threshold, and how each takes it.
AT_THRESHOLD = {'BinaryAccuracy': 'threshold', 'Precision': 'thresholds',
                'Recall': 'thresholds', 'Specificity': 'thresholds',
                'ConfusionMatrixAtThresholds': 'thresholds'}
SLICE_FEATURES = (constants.SUBTYPE_KEY, constants.CHANNELS_KEY)


def set_operating_threshold(metric: tfma.MetricConfig,
                            threshold: float) -> None:
  """Points a threshold-dependent metric at `threshold` (others untouched)."""
  param = AT_THRESHOLD.get(metric.class_name)
  if param is None:
    return
  config = json.loads('{' + metric.config + '}')
  config[param] = threshold if param == 'threshold' else [threshold]
  metric.config = json.dumps(config)[1:-1]


def metric_name(metric: tfma.MetricConfig) -> str:
  return json.loads('{' + metric.config + '}').get('name', metric.class_name)


def _metric(class_name: str, name: str = None, **config) -> tfma.MetricConfig:
  if name:
    config['name'] = name
  metric = tfma.MetricConfig(class_name=class_name,
                             config=json.dumps(config)[1:-1] if config else '')
  set_operating_threshold(metric, OPERATING_THRESHOLD_PLACEHOLDER)
  return metric


def set_gates(config: tfma.EvalConfig, gates: options.Gates) -> None:
  """(Re)sets the blessing thresholds of an eval config in place.

  Blessing looks at the overall slice only: per-subtype slices hold one class
  (AUC undefined there) and are for reading, not gating.
  """
  by_metric = {
      'auc': tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(
              lower_bound={'value': gates.min_auc}),
          change_threshold=tfma.GenericChangeThreshold(
              direction=tfma.MetricDirection.HIGHER_IS_BETTER,
              absolute={'value': -gates.max_auc_drop})),
      'recall': tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(
              lower_bound={'value': gates.min_recall})),
  }
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      threshold = by_metric.get(metric_name(metric))
      if threshold is not None:
        del metric.per_slice_thresholds[:]
        metric.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()],
                                        threshold=threshold)


def external_gates(gates: options.Gates) -> options.Gates:
  """The gates of the external cohort, where set_gates reads them.

  Another hospital may be held to other bounds (min_external_*); the allowed
  AUC drop is the same, compared with the deployed model on that cohort.
  """
  return dataclasses.replace(gates, min_auc=gates.min_external_auc,
                             min_recall=gates.min_external_recall)


def eval_config(gates: options.Gates) -> tfma.EvalConfig:
  """EvalConfig with slices overall, by subtype and by source channels."""
  metrics = [
      _metric('ExampleCount', 'example_count'),
      _metric('AUC', 'auc'),
      _metric('AUC', 'pr_auc', curve='PR'),
      _metric('BinaryAccuracy', 'binary_accuracy'),
      _metric('Precision', 'precision'),
      _metric('Recall', 'recall'),
      _metric('Specificity', 'specificity'),
      _metric('ConfusionMatrixAtThresholds', 'confusion_matrix'),
      _metric('MeanLabel', 'mean_label'),
      _metric('MeanPrediction', 'mean_prediction'),
      _metric('Calibration', 'calibration'),
      _metric('CalibrationPlot', 'calibration_plot'),
      _metric('ConfusionMatrixPlot', 'confusion_matrix_plot'),
  ]
  config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(
          signature_name=constants.EXAMPLES_SIGNATURE,
          label_key=constants.LABEL_KEY,
          prediction_key=constants.PROBABILITY_OUTPUT)],
      slicing_specs=[tfma.SlicingSpec()] + [
          tfma.SlicingSpec(feature_keys=[key]) for key in SLICE_FEATURES],
      metrics_specs=[tfma.MetricsSpec(metrics=metrics)])
  set_gates(config, gates)
  return config
