"""Tests of the external cohort's parts that need no TFMA run: whether a
cohort is present, its gates, and the combined blessing."""
import os

import pytest
from tfx.components.evaluator import constants as tfx_constants
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from components.evaluator import cohorts
from components.evaluator import executor
from components.evaluator import eval_config as evaluation
from contract import layout
from contract import names
from contract import options


def _examples(splits=(names.EXTERNAL_SPLIT,), present=None):
  artifact = standard_artifacts.Examples()
  artifact.uri = '/tmp/external'
  artifact.split_names = artifact_utils.encode_split_names(list(splits))
  if present is not None:
    artifact.set_int_custom_property(layout.COHORT_PRESENT, present)
  return artifact


@pytest.mark.parametrize('present', [None, 1])
def test_a_cohort_is_present_unless_it_says_otherwise(present):
  artifact = _examples(present=present)
  assert cohorts.external_examples([artifact]) is artifact


@pytest.mark.parametrize('artifacts', [None, [], [_examples(present=0)],
                                       [_examples(splits=(), present=0)]])
def test_no_channel_nothing_resolved_or_empty_is_no_cohort(artifacts):
  assert cohorts.external_examples(artifacts) is None


def test_a_present_cohort_without_the_external_split_is_refused():
  with pytest.raises(ValueError, match=names.EXTERNAL_SPLIT):
    cohorts.external_examples([_examples(splits=('test',))])


def test_external_gates_take_the_external_bounds_and_the_same_drop():
  gates = options.Gates(min_auc=0.875, min_recall=0.9375, max_auc_drop=0.125,
                        min_external_auc=0.75, min_external_recall=0.8125)
  config = evaluation.eval_config(gates)
  evaluation.set_gates(config, evaluation.external_gates(gates))
  found = {(c['metric'], c['kind']): c['bound'] for c in executor.checks(
      config, {}, True, layout.COHORT_EXTERNAL)}
  assert found == {('auc', 'value'): 0.75, ('auc', 'change'): -0.125,
                   ('recall', 'value'): 0.8125}


def test_checks_name_their_cohort_internal_by_default():
  config = evaluation.eval_config(options.Gates())
  assert {c['cohort'] for c in executor.checks(config, {}, False)} == {
      layout.COHORT_INTERNAL}
  assert {c['cohort'] for c in executor.checks(
      config, {}, False, layout.COHORT_EXTERNAL)} == {layout.COHORT_EXTERNAL}


@pytest.mark.parametrize('verdicts, expected', [
    ([True], True), ([False], False), ([True, True], True),
    ([True, False], False), ([False, True], False), ([None, False], False),
    ([True, None], None)])
def test_blessed_only_if_every_cohort_is(verdicts, expected):
  assert cohorts.combined(verdicts) is expected


@pytest.mark.parametrize('first, then', [(True, False), (False, True),
                                         (True, True)])
def test_set_verdict_writes_as_tfx_does(tmp_path, first, then):
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path)
  cohorts.set_verdict(blessing, first)
  cohorts.set_verdict(blessing, then)
  name = (tfx_constants.BLESSED_FILE_NAME if then
          else tfx_constants.NOT_BLESSED_FILE_NAME)
  assert os.listdir(tmp_path) == [name]
  assert blessing.get_int_custom_property(layout.BLESSED) == int(then)
