"""Evaluator executor: TFX's, at the candidate's threshold, with reasons.

Before TFMA runs: the blessing gates of this run (execution parameters
min_auc, min_recall, max_auc_drop) are set in the eval config; the
operating threshold stored in the candidate model
(assets.extra/model_info.json) replaces the placeholder of every metric
computed at a threshold (components/evaluator/eval_config.py), and a DeployedModel
artifact that found nothing deployed is dropped, so the first model is
judged on value thresholds alone.

With an external cohort (input `external_examples`, one split
names.EXTERNAL_SPLIT, layout.COHORT_PRESENT not 0), TFX's Evaluator runs a
second time on it: same models, metrics, slices and threshold, its own
bounds (min_external_auc, min_external_recall; eval_config.external_gates),
results in `<evaluation>/layout.EXTERNAL_EVALUATION_DIR`. The model is
blessed only if both cohorts are; the ModelBlessing says so (cohorts.py).

After: `blessing_decision.json` in the evaluation artifact lists every check
(cohort, metric, bound, value, baseline value, passed), each cohort's
verdict and size, and the verdict, for people and the run report. TFMA's
validation results stay authoritative.
"""
import json
import os
import shutil
import tempfile
from typing import Any, Dict, List

from absl import logging
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import artifact_utils
from tfx.types import standard_component_specs as specs
from tfx.utils import json_utils
from tfx.utils import proto_utils

from components import model_artifacts
from components.deployed_model import executor as deployed_model
from components.evaluator import cohorts
from components.evaluator import results
from contract import layout
from contract import names
from contract import options
from components.evaluator import eval_config as evaluation

# The optional input channel: an Examples artifact of an external cohort.
EXTERNAL_EXAMPLES_KEY = 'external_examples'


def with_operating_threshold(config: tfma.EvalConfig,
                             threshold: float) -> tfma.EvalConfig:
  """A copy whose threshold-dependent metrics use `threshold`."""
  config = tfma.EvalConfig.FromString(config.SerializeToString())
  for spec in config.metrics_specs:
    for metric in spec.metrics:
      evaluation.set_operating_threshold(metric, threshold)
  return config


def checks(config: tfma.EvalConfig, metrics: Dict, has_baseline: bool,
           cohort: str = layout.COHORT_INTERNAL) -> List[Dict[str, Any]]:
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
  for check in out:
    check['cohort'] = cohort
  return out


def judge(uri: str, config: tfma.EvalConfig, has_baseline: bool,
          cohort: str, splits: List[str], folder: str):
  """(the cohort's summary, its checks) from TFMA's output in `uri`."""
  metrics = results.load_metrics(uri)
  blessed = results.validation_ok(uri)
  found = checks(config, metrics, has_baseline, cohort)
  explained = all(c['passed'] for c in found)
  if explained != blessed:
    logging.warning('%s cohort: blessing %s but the listed checks say %s; '
                    'TFMA decides.', cohort, blessed, explained)
  return cohorts.summary(True, blessed, metrics, splits, folder), found


class Executor(tfx_evaluator.Executor):

  def Do(self, input_dict, output_dict, exec_properties):
    candidate = artifact_utils.get_single_instance(input_dict[specs.MODEL_KEY])
    info = model_artifacts.read_model_info(candidate)
    threshold = float(info['threshold'])

    input_dict = dict(input_dict)
    # TFX's Evaluator knows one examples input; the external one is ours.
    external = cohorts.external_examples(
        input_dict.pop(EXTERNAL_EXAMPLES_KEY, None))
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
    gates = options.Gates(**{
        name: float(exec_properties[name]) for name in gate_names})
    evaluation.set_gates(config, gates)
    exec_properties = {key: value for key, value in exec_properties.items()
                       if key not in gate_names}
    exec_properties[specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(config)
    logging.info('Evaluating %s at its operating threshold %.4f against %s, '
                 '%s.', info.get('architecture'), threshold,
                 f"deployed version {baseline_info['version']}"
                 if baseline_info else 'value thresholds only (nothing '
                 'deployed)', f'on the test split and the external cohort '
                 f'{external.uri}' if external else 'on the test split only '
                 '(no external cohort)')

    super().Do(input_dict, output_dict, exec_properties)

    evaluation_artifact = artifact_utils.get_single_instance(
        output_dict[specs.EVALUATION_KEY])
    has_baseline = baseline_info is not None
    splits = json_utils.loads(
        exec_properties.get(specs.EXAMPLE_SPLITS_KEY) or 'null') or ['eval']
    judged = {layout.COHORT_INTERNAL: judge(
        evaluation_artifact.uri, config, has_baseline, layout.COHORT_INTERNAL,
        splits, '.')}
    if external:
      external_config = tfma.EvalConfig.FromString(config.SerializeToString())
      evaluation.set_gates(external_config, evaluation.external_gates(gates))
      self._evaluate_external(input_dict, evaluation_artifact, external,
                              exec_properties, external_config)
      judged[layout.COHORT_EXTERNAL] = judge(
          os.path.join(evaluation_artifact.uri,
                       layout.EXTERNAL_EVALUATION_DIR),
          external_config, has_baseline, layout.COHORT_EXTERNAL,
          [names.EXTERNAL_SPLIT], layout.EXTERNAL_EVALUATION_DIR)
    summaries = {cohort: summary for cohort, (summary, _) in judged.items()}
    blessed = cohorts.combined([s['blessed'] for s in summaries.values()])
    if external and blessed is not None:
      # TFX blessed on the test split alone; the Pusher must see both.
      cohorts.set_verdict(artifact_utils.get_single_instance(
          output_dict[specs.BLESSING_KEY]), blessed)
    summaries.setdefault(layout.COHORT_EXTERNAL, cohorts.absent())

    decision = {
        'blessed': blessed,
        'threshold': threshold,
        'architecture': info.get('architecture'),
        'baseline': baseline_info,
        'checks': [c for _, found in judged.values() for c in found],
        'cohorts': summaries,
    }
    with tf.io.gfile.GFile(os.path.join(evaluation_artifact.uri,
                                        layout.DECISION_FILE), 'w') as f:
      json.dump(decision, f, indent=1)
    logging.info('Blessing decision: %s. %s', 'BLESSED' if blessed
                 else 'NOT blessed', '; '.join(
                     f"{c['cohort']} {c['metric']} {c['kind']}: "
                     f"{'pass' if c['passed'] else 'FAIL'}"
                     for c in decision['checks']))

  def _evaluate_external(self, input_dict, evaluation_artifact, examples,
                         exec_properties, config: tfma.EvalConfig) -> None:
    """TFX's Evaluator once more, on the external cohort; its blessing goes
    to a temporary folder (the real one is set from both verdicts)."""
    blessing_uri = tempfile.mkdtemp(prefix='external-blessing-')
    try:
      super().Do(
          dict(input_dict, **{specs.EXAMPLES_KEY: [examples]}),
          cohorts.external_outputs(evaluation_artifact, blessing_uri),
          dict(exec_properties, **{
              specs.EVAL_CONFIG_KEY: proto_utils.proto_to_json(config),
              specs.EXAMPLE_SPLITS_KEY: json_utils.dumps(
                  [names.EXTERNAL_SPLIT])}))
    finally:
      shutil.rmtree(blessing_uri, ignore_errors=True)
