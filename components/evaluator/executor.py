"""Evaluator executor: TFX's, at the candidate's threshold, with reasons.

Before TFMA runs: the blessing gates of this run (execution parameters
min_auc, min_recall, max_auc_drop) are set in the eval config; the
operating threshold stored in the candidate model
(assets.extra/model_info.json) replaces the placeholder of every metric
computed at a threshold (components/evaluator/eval_config.py), and a DeployedModel
artifact that found nothing deployed is dropped, so the first model is
judged on value thresholds alone.

After: `blessing_decision.json` in the evaluation artifact lists every check
(metric, bound, value, baseline value, passed) and the verdict, for people
and the run report. TFMA's validation result stays authoritative.
"""
import json
import os
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components import model_artifacts
from components.deployed_model import executor as deployed_model
from components.evaluator import results
from contract import layout
from contract import options
from components.evaluator import eval_config as evaluation


def with_operating_threshold(config: tfma.EvalConfig,
                             threshold: float) -> tfma.EvalConfig:
  """A copy whose threshold-dependent metrics use `threshold`."""
  config = tfma.EvalConfig.FromString(config.SerializeToString())
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      evaluation.set_operating_threshold(metric, threshold)
  return config


def checks(config: tfma.EvalConfig, metrics: Dict, has_baseline: bool
           ) -> List[Dict[str, Any]]:
  """Every blessing condition with its value and whether it passed."""
  out = []
  overall = layout.OVERALL
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      name = evaluation.metric_name(metric)
      for entry in metric.per_slice_thresholds:
        threshold = entry.threshold
        value = metrics.get((overall, layout.CANDIDATE, name))
        if threshold.HasField('value_threshold'):
          bound = threshold.value_threshold.lower_bound.value
          out.append({'metric': name, 'kind': 'value', 'bound': bound,
                      'value': value,
                      'passed': value is not None and value >= bound})
        if threshold.HasField('change_threshold'):
          allowed = threshold.change_threshold.absolute.value
          baseline = metrics.get((overall, layout.BASELINE, name))
          if not has_baseline:
            out.append({'metric': name, 'kind': 'change', 'bound': allowed,
                        'value': value, 'baseline_value': None,
                        'passed': True,
                        'note': 'nothing deployed: not compared'})
          elif baseline is None or value is None:
            out.append({'metric': name, 'kind': 'change', 'bound': allowed,
                        'value': value, 'baseline_value': baseline,
                        'passed': False,
                        'note': 'metric missing: cannot compare'})
          else:
            out.append({'metric': name, 'kind': 'change', 'bound': allowed,
                        'value': value, 'baseline_value': baseline,
                        'difference': value - baseline,
                        'passed': value - baseline >= allowed})
  return out


class Executor(tfx_evaluator.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    candidate = artifact_utils.get_single_instance(input_dict[specs.MODEL_KEY])
    info = model_artifacts.read_model_info(candidate)
    threshold = float(info['threshold'])

    input_dict = dict(input_dict)
    baseline = input_dict.get(specs.BASELINE_MODEL_KEY)
    baseline_info = None
    if baseline:
      artifact = artifact_utils.get_single_instance(baseline)
      if deployed_model.is_found(artifact):
        baseline_info = {
            'version': artifact.get_string_custom_property(
                layout.DEPLOYED_VERSION),
            'path': artifact.get_string_custom_property(layout.DEPLOYED_PATH)}
      else:
        del input_dict[specs.BASELINE_MODEL_KEY]

    config = tfma.EvalConfig()
    proto_utils.json_to_proto(exec_properties[specs.EVAL_CONFIG_KEY], config)
    config = with_operating_threshold(config, threshold)
    gate_names = options.runtime_names(options.Gates)
    evaluation.set_gates(config, options.Gates(**{
        name: float(exec_properties[name]) for name in gate_names}))
    exec_properties = {key: value for key, value in exec_properties.items()
                       if key not in gate_names}
    exec_properties[specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(config)
    logging.info('Evaluating %s at its operating threshold %.4f against %s.',
                 info.get('architecture'), threshold,
                 f"deployed version {baseline_info['version']}"
                 if baseline_info else 'value thresholds only (nothing '
                 'deployed)')

    super().Do(input_dict, output_dict, exec_properties)

    evaluation_artifact = artifact_utils.get_single_instance(
        output_dict[specs.EVALUATION_KEY])
    metrics = results.load_metrics(evaluation_artifact.uri)
    decision = {
        'blessed': results.validation_ok(evaluation_artifact.uri),
        'threshold': threshold,
        'architecture': info.get('architecture'),
        'baseline': baseline_info,
        'checks': checks(config, metrics, baseline_info is not None),
    }
    explained = all(c['passed'] for c in decision['checks'])
    if explained != decision['blessed']:
      logging.warning('Blessing %s but the listed checks say %s; TFMA decides.',
                      decision['blessed'], explained)
    with tf.io.gfile.GFile(os.path.join(evaluation_artifact.uri,
                                        layout.DECISION_FILE), 'w') as f:
      json.dump(decision, f, indent=1)
    logging.info('Blessing decision: %s. %s', 'BLESSED' if decision['blessed']
                 else 'NOT blessed', '; '.join(
                     f"{c['metric']} {c['kind']}: "
                     f"{'pass' if c['passed'] else 'FAIL'}"
                     for c in decision['checks']))
