"""Tests of the Evaluator's own parts: the operating threshold and checks().

TFMA itself is not run here; the configuration it is given and the
explanation written beside its verdict are.
"""
import json

import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs

from components.evaluator import executor
from components.evaluator import results
from components.evaluator import eval_config as evaluation
from contract import layout
from contract import options

PLACEHOLDER = evaluation.OPERATING_THRESHOLD_PLACEHOLDER
# Exactly representable in binary, so bounds are met exactly.
MIN_AUC, MIN_RECALL, MAX_DROP = 0.875, 0.9375, 0.0625


def _config() -> tfma.EvalConfig:
  return evaluation.eval_config(options.Gates(
      min_auc=MIN_AUC, min_recall=MIN_RECALL, max_auc_drop=MAX_DROP))


def _metrics(config: tfma.EvalConfig) -> dict:
  return {evaluation.metric_name(m): m
          for spec in config.metrics_specs for m in spec.metrics}


def _params(metric: tfma.MetricConfig) -> dict:
  return json.loads('{' + metric.config + '}')


# --- with_operating_threshold ---------------------------------------------------

def test_every_threshold_metric_gets_the_operating_threshold():
  original = _config()
  snapshot = original.SerializeToString()
  updated = executor.with_operating_threshold(original, 0.0123)

  assert original.SerializeToString() == snapshot  # the input is untouched
  before, after = _metrics(original), _metrics(updated)
  assert list(before) == list(after)
  by_class = {}
  for name, metric in after.items():
    by_class.setdefault(metric.class_name, []).append(name)
    param = evaluation.AT_THRESHOLD.get(metric.class_name)
    if param is None:
      assert metric == before[name], name  # untouched
      continue
    params = _params(metric)
    assert params[param] == (0.0123 if param == 'threshold' else [0.0123]), (
        name)
    assert _params(before[name])[param] == (
        PLACEHOLDER if param == 'threshold' else [PLACEHOLDER])
    # Only the threshold changed: name and the gates stay.
    assert {k: v for k, v in params.items() if k != param} == {
        k: v for k, v in _params(before[name]).items() if k != param}
    assert list(metric.per_slice_thresholds) == list(
        before[name].per_slice_thresholds)
  # Every class that takes a threshold is in the configuration.
  assert set(evaluation.AT_THRESHOLD) <= set(by_class)
  # Only the metrics were touched.
  for field in ('model_specs', 'slicing_specs'):
    assert list(getattr(updated, field)) == list(getattr(original, field))


def test_operating_threshold_of_binary_accuracy_is_a_scalar():
  updated = executor.with_operating_threshold(_config(), 0.25)
  metrics = _metrics(updated)
  assert _params(metrics['binary_accuracy'])['threshold'] == 0.25
  for name in ('precision', 'recall', 'specificity', 'confusion_matrix'):
    assert _params(metrics[name])['thresholds'] == [0.25]
  assert _params(metrics['pr_auc']) == {'name': 'pr_auc', 'curve': 'PR'}
  assert 'threshold' not in _params(metrics['auc'])


def _tfma_threshold_computations(config: tfma.EvalConfig) -> set:
  """Names of the confusion-matrix computations TFMA derives at fixed
  thresholds (all metrics at one threshold share one)."""
  computations = metric_specs.to_computations(config.metrics_specs,
                                              eval_config=config)
  return {key.name for computation in computations
          for key in computation.keys
          if key.name.startswith('_binary_confusion_matrices:thresholds=')}


def test_tfma_computes_at_the_operating_threshold_only():
  original = _config()
  assert _tfma_threshold_computations(original) == {
      f'_binary_confusion_matrices:thresholds=[{PLACEHOLDER}]'}
  updated = executor.with_operating_threshold(original, 0.3)
  assert _tfma_threshold_computations(updated) == {
      '_binary_confusion_matrices:thresholds=[0.3]'}


# --- the gates of eval_config -------------------------------------------------

def test_only_auc_and_recall_gate_and_only_on_the_overall_slice():
  config = _config()
  gated = {}
  for spec in config.metrics_specs:
    assert not spec.thresholds and not spec.per_slice_thresholds
    for metric in spec.metrics:
      assert not metric.HasField('threshold'), metric.class_name
      if metric.per_slice_thresholds:
        gated[evaluation.metric_name(metric)] = metric.per_slice_thresholds
  assert set(gated) == {'auc', 'recall'}
  for entries in gated.values():
    assert len(entries) == 1
    assert list(entries[0].slicing_specs) == [tfma.SlicingSpec()]
  auc = gated['auc'][0].threshold
  assert auc.value_threshold.lower_bound.value == MIN_AUC
  assert auc.change_threshold.absolute.value == -MAX_DROP
  assert (auc.change_threshold.direction ==
          tfma.MetricDirection.HIGHER_IS_BETTER)
  recall = gated['recall'][0].threshold
  assert recall.value_threshold.lower_bound.value == MIN_RECALL
  assert not recall.HasField('change_threshold')


def test_set_gates_replaces_the_gates():
  config = _config()
  evaluation.set_gates(config, options.Gates(
      min_auc=0.5, min_recall=0.75, max_auc_drop=0.25))
  evaluation.set_gates(config, options.Gates(
      min_auc=0.625, min_recall=0.8125, max_auc_drop=0.125))
  metrics = _metrics(config)
  assert [len(metrics[n].per_slice_thresholds) for n in ('auc', 'recall')] == [
      1, 1]
  auc = metrics['auc'].per_slice_thresholds[0]
  assert list(auc.slicing_specs) == [tfma.SlicingSpec()]
  assert auc.threshold.value_threshold.lower_bound.value == 0.625
  assert auc.threshold.change_threshold.absolute.value == -0.125
  recall = metrics['recall'].per_slice_thresholds[0].threshold
  assert recall.value_threshold.lower_bound.value == 0.8125
  assert not any(metrics[n].per_slice_thresholds for n in metrics
                 if n not in ('auc', 'recall'))


# --- checks() -------------------------------------------------------------------

def _values(auc=None, recall=None, baseline_auc=None, other_slice=None):
  metrics = {}
  if auc is not None:
    metrics[(layout.OVERALL, layout.CANDIDATE, 'auc')] = auc
  if recall is not None:
    metrics[(layout.OVERALL, layout.CANDIDATE, 'recall')] = recall
  if baseline_auc is not None:
    metrics[(layout.OVERALL, layout.BASELINE, 'auc')] = baseline_auc
  if other_slice is not None:
    # A bad slice that must not matter: only the overall slice gates.
    metrics[('subtype=virus', layout.CANDIDATE, 'auc')] = other_slice
    metrics[('subtype=virus', layout.CANDIDATE, 'recall')] = other_slice
  return metrics


def _by_kind(found):
  return {(c['metric'], c['kind']): c for c in found}


def test_checks_list_every_condition():
  found = executor.checks(_config(), _values(0.95, 0.96, 0.94), True)
  assert [(c['metric'], c['kind']) for c in found] == [
      ('auc', 'value'), ('auc', 'change'), ('recall', 'value')]
  assert all(c['passed'] for c in found)


@pytest.mark.parametrize('value, passed', [
    (MIN_AUC, True), (MIN_AUC + 1e-9, True), (MIN_AUC - 1e-9, False),
    (0.0, False)])
def test_value_threshold_passes_at_the_bound(value, passed):
  found = _by_kind(executor.checks(
      _config(), _values(auc=value, recall=value + 0.0625, other_slice=0.0),
      has_baseline=False))
  check = found[('auc', 'value')]
  assert check['bound'] == MIN_AUC and check['value'] == value
  assert check['passed'] is passed
  assert found[('recall', 'value')]['passed'] is (value + 0.0625 >= MIN_RECALL)


@pytest.mark.parametrize('recall, passed', [
    (MIN_RECALL, True), (1.0, True), (MIN_RECALL - 1e-9, False)])
def test_recall_threshold(recall, passed):
  found = _by_kind(executor.checks(_config(), _values(0.95, recall), False))
  assert found[('recall', 'value')]['passed'] is passed
  assert found[('recall', 'value')]['bound'] == MIN_RECALL


def test_missing_value_fails_the_value_check():
  found = _by_kind(executor.checks(_config(), _values(recall=0.99), False))
  assert found[('auc', 'value')]['passed'] is False
  assert found[('auc', 'value')]['value'] is None


@pytest.mark.parametrize('value, baseline, passed', [
    (0.9375, 1.0, True),  # dropped by exactly max_drop
    (0.9375, 0.96875, True),  # dropped by less
    (1.0, 0.9375, True),  # improved
    (0.9375, 1.0 + 2 ** -20, False),  # dropped by a little more
    (0.875, 1.0, False),
])
def test_change_threshold_with_a_baseline(value, baseline, passed):
  found = _by_kind(executor.checks(
      _config(), _values(value, 0.99, baseline), has_baseline=True))
  check = found[('auc', 'change')]
  assert check['passed'] is passed
  assert check['bound'] == -MAX_DROP
  assert check['baseline_value'] == baseline
  assert check['difference'] == pytest.approx(value - baseline)
  assert 'note' not in check


def test_change_threshold_without_baseline_passes_with_a_note():
  # Far worse than the "baseline" value present, but nothing is deployed.
  found = _by_kind(executor.checks(
      _config(), _values(0.9, 0.99, baseline_auc=1.0), has_baseline=False))
  check = found[('auc', 'change')]
  assert check['passed'] is True
  assert check['baseline_value'] is None
  assert 'nothing deployed' in check['note']
  assert 'difference' not in check


def test_change_threshold_with_a_missing_baseline_metric_fails_with_a_note():
  found = _by_kind(executor.checks(_config(), _values(0.95, 0.99),
                                   has_baseline=True))
  check = found[('auc', 'change')]
  assert check['passed'] is False
  assert 'cannot compare' in check['note']


def test_checks_use_the_overall_slice_only():
  good_overall = _values(0.99, 0.99, 0.99, other_slice=0.0)
  assert all(c['passed'] for c in executor.checks(_config(), good_overall,
                                                  True))
  bad_overall = {key: (0.0 if key[0] == layout.OVERALL else 0.99)
                 for key in _values(0.99, 0.99, 0.99, other_slice=0.99)}
  found = _by_kind(executor.checks(_config(), bad_overall, True))
  assert not found[('auc', 'value')]['passed']
  assert not found[('recall', 'value')]['passed']
