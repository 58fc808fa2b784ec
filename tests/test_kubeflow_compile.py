"""kubeflow_runner.py compile: a KFP v2 YAML that open-source KFP can run."""
import ast
import collections
import pathlib
import sys
from typing import Dict, List, Optional, Set

from google.protobuf import json_format
import pytest
import yaml

from testing import kfp_server_checks
from testing.support import REPO
from testing.support import run_cli

# The external cohort's branch is always compiled in (an empty
# external_data_root means none this run).
STAGE_ORDER = ['ImageExampleGen', 'ExternalExampleGen', 'ImportSchemaGen',
               'StatisticsGen', 'ExampleValidator', 'AnomalyGate',
               'ExternalStatisticsGen', 'ExternalExampleValidator',
               'ExternalAnomalyGate', 'DeployedModel', 'DriftCheck', 'Trainer',
               'SiteCalibration', 'Evaluator', 'Pusher', 'RunReport']
# Each task and what it must (transitively) wait for.
WIRING = {
    'StatisticsGen': {'ImageExampleGen', 'ImportSchemaGen'},
    'ExampleValidator': {'StatisticsGen', 'ImportSchemaGen'},
    'AnomalyGate': {'ExampleValidator'},
    'ExternalExampleGen': {'ImageExampleGen'},
    'ExternalStatisticsGen': {'ExternalExampleGen', 'ImportSchemaGen'},
    'ExternalExampleValidator': {'ExternalStatisticsGen', 'ImportSchemaGen'},
    'ExternalAnomalyGate': {'ExternalExampleValidator'},
    'DriftCheck': {'StatisticsGen', 'ImportSchemaGen', 'DeployedModel'},
    'Trainer': {'AnomalyGate', 'ExternalAnomalyGate', 'DriftCheck',
                'ImageExampleGen', 'ImportSchemaGen'},
    'SiteCalibration': {'Trainer', 'ExternalExampleGen'},
    'Evaluator': {'SiteCalibration', 'DeployedModel', 'ImageExampleGen',
                  'ExternalExampleGen'},
    'Pusher': {'Evaluator', 'Trainer', 'StatisticsGen'},
    'RunReport': {'Pusher', 'Evaluator', 'Trainer', 'ImageExampleGen',
                  'DeployedModel'},
}
BEAM_TASKS = ('ImageExampleGen', 'StatisticsGen', 'Evaluator',
              'ExternalExampleGen', 'ExternalStatisticsGen')
IMAGE = 'registry.example.com/pneumonia-pipeline:1.2.3'
# Task parameters holding a Python path the container imports (TFX names).
CODE_PARAMETERS = ('run_fn', 'module_path', 'preprocessing_fn', 'tuner_fn')


def _compile(tmp_path, *extra) -> bytes:
  output = tmp_path / 'pipeline.yaml'
  result = run_cli([
      'kubeflow_runner.py', 'compile', '--output', output, '--image', IMAGE,
      '--pipeline-root', 'gs://bucket/root', '--data-root', 'gs://bucket/xray',
      '--profile', 'quick', '--epochs', '7', '--architectures',
      'baseline_cnn,improved_cnn', '--min-auc', '0.85',
      '--external-data-root', 'gs://bucket/ext', '--min-external-auc', '0.8',
      *extra], timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return output.read_bytes()


@pytest.fixture(scope='module')
def compiled(tmp_path_factory) -> bytes:
  return _compile(tmp_path_factory.mktemp('compiled'),
                  '--beam-arg=--runner=FlinkRunner',
                  '--beam-arg=--flink_master=flink-jobmanager:8081')


def _parsed(package: bytes):
  """(YAML as a dict, kfp's PipelineSpec), refused as a KFP server would."""
  spec, _ = kfp_server_checks.parse_package(package)
  return yaml.safe_load(package), spec


def _named_code(spec) -> Dict[str, List[str]]:
  """Python path -> where the YAML names it: every executor's
  --executor_class_path and every task's code parameter (the Trainer's
  run_fn)."""
  named = collections.defaultdict(list)
  executors = json_format.MessageToDict(spec.deployment_spec)['executors']
  for name, executor in executors.items():
    args = executor['container']['args']
    if '--executor_class_path' in args:
      named[args[args.index('--executor_class_path') + 1]].append(name)
  for task_name, task in spec.root.dag.tasks.items():
    for name, parameter in task.inputs.parameters.items():
      if name in CODE_PARAMETERS:
        named[parameter.runtime_value.constant.string_value].append(
            f'{task_name}.{name}')
  return named


def _source_file(module: str) -> Optional[pathlib.Path]:
  """The file `module` would be imported from, found without importing."""
  for entry in sys.path:
    base = pathlib.Path(entry or '.').joinpath(*module.split('.'))
    for candidate in (base.parent / (base.name + '.py'), base / '__init__.py'):
      if candidate.is_file():
        return candidate.resolve()
  return None


def _top_level_names(source: pathlib.Path) -> Set[str]:
  names = set()
  for node in ast.parse(source.read_text()).body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                         ast.ClassDef)):
      names.add(node.name)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
      names.update((alias.asname or alias.name).split('.')[0]
                   for alias in node.names)
    elif isinstance(node, ast.Assign):
      names.update(t.id for t in node.targets if isinstance(t, ast.Name))
  return names


def _check_named_code(spec) -> None:
  """Every path the YAML names is a module and a name in it: ours in the
  repository the image copies, TFX's in the installed TFX."""
  named = _named_code(spec)
  for path, where in named.items():
    module, _, name = path.rpartition('.')
    source = _source_file(module)
    assert source, f'{where} names {path}: there is no module {module}'
    if not module.startswith('tfx.'):
      assert REPO.resolve() in source.parents, (where, path, source)
      assert source.relative_to(REPO.resolve()).parts[0] in (
          'components', 'pipeline', 'trainer'), (where, path, source)
    assert name in _top_level_names(source), (
        f'{where} names {path}: {source} defines no {name}')
  assert any('Trainer.run_fn' in where for where in named.values()), named
  assert {'components.image_example_gen.executor.Executor',
          'components.trainer.executor.Executor',
          'components.evaluator.executor.Executor'} <= set(named)


def _ancestors(tasks, name):
  seen, todo = set(), list(tasks[name].get('dependentTasks', []))
  while todo:
    task = todo.pop()
    if task not in seen:
      seen.add(task)
      todo.extend(tasks[task].get('dependentTasks', []))
  return seen


def test_compiled_yaml_runs_on_open_source_kfp(compiled):
  spec, pipeline_spec = _parsed(compiled)  # kfp's own proto parses it
  tasks = spec['root']['dag']['tasks']
  executors = spec['deploymentSpec']['executors']

  # No resolver anywhere (open-source KFP rejects it).
  assert not [name for name in list(tasks) + list(executors)
              if 'resolver' in name.lower()]
  assert 'resolver' not in yaml.safe_dump(spec).lower()

  # Every stage present and wired in order.
  assert sorted(tasks) == sorted(STAGE_ORDER)
  for task, needs in WIRING.items():
    assert needs <= _ancestors(tasks, task), (task, _ancestors(tasks, task))
  for earlier, later in zip(STAGE_ORDER, STAGE_ORDER[1:]):
    assert later not in _ancestors(tasks, earlier), (earlier, later)

  # Every task runs the configured image.
  images = {name: executor['container']['image']
            for name, executor in executors.items()}
  assert set(images.values()) == {IMAGE}, images

  # Per-run values are runtime parameters with the compiled defaults.
  params = spec['root']['inputDefinitions']['parameters']
  assert params['epochs']['defaultValue'] == 7
  assert params['architectures']['defaultValue'] == 'baseline_cnn,improved_cnn'
  assert params['data_root']['defaultValue'] == 'gs://bucket/xray'
  assert params['min_auc']['defaultValue'] == 0.85
  assert params['external_data_root']['defaultValue'] == 'gs://bucket/ext'
  assert params['min_external_auc']['defaultValue'] == 0.8
  for name in ('min_recall', 'max_auc_drop', 'image_size', 'batch_size',
               'resnet_weights', 'target_sensitivity', 'min_external_recall'):
    assert name in params
  trainer_inputs = tasks['Trainer']['inputs']['parameters']
  assert trainer_inputs['epochs'] == {'componentInputParameter': 'epochs'}
  assert tasks['ImageExampleGen']['inputs']['parameters']['input_base'] == {
      'componentInputParameter': 'data_root'}
  assert tasks['Evaluator']['inputs']['parameters']['min_auc'] == {
      'componentInputParameter': 'min_auc'}
  assert tasks['Evaluator']['inputs']['parameters']['min_external_auc'] == {
      'componentInputParameter': 'min_external_auc'}
  assert tasks['ExternalExampleGen']['inputs']['parameters'][
      'input_base'] == {'componentInputParameter': 'external_data_root'}
  # The drift check's action is the run's, not only the Trainer's copy.
  assert params['on_drift']['defaultValue'] == 'warn'
  assert tasks['DriftCheck']['inputs']['parameters']['on_drift'] == {
      'componentInputParameter': 'on_drift'}

  # Ingestion, the deployed-model lookup and the report never come from cache.
  for name in ('ImageExampleGen', 'ExternalExampleGen', 'DeployedModel',
               'RunReport'):
    assert not tasks[name].get('cachingOptions', {}).get('enableCache'), name
  assert tasks['Trainer']['cachingOptions']['enableCache'] is True

  # Beam args reach every Beam-powered component.
  for name in BEAM_TASKS:
    args = executors[tasks[name]['componentRef']['name'] + '_executor'][
        'container']['args']
    assert '--runner=FlinkRunner' in args, name
    assert '--flink_master=flink-jobmanager:8081' in args, name
    assert '--setup_file=/pipeline/setup.py' in args, name

  # The code the YAML names exists where the image has it.
  _check_named_code(pipeline_spec)


@pytest.mark.parametrize('right, wrong, words', [
    ('trainer.run.run_fn', 'trainer.no_such_module.run_fn',
     'Trainer.run_fn.*no module trainer.no_such_module'),
    ('components.trainer.executor.Executor',
     'components.trainer.executor.NoSuchExecutor', 'defines no NoSuchExecutor'),
    ('tfx.components.statistics_gen.executor.Executor',
     'tfx.components.statistics_gen.no_executor.Executor', 'no module'),
], ids=['run_fn', 'our_executor', 'tfx_executor'])
def test_a_wrong_code_path_in_the_yaml_fails_the_check(compiled, right,
                                                       wrong, words):
  assert right.encode() in compiled
  _, spec = _parsed(compiled.replace(right.encode(), wrong.encode()))
  with pytest.raises(AssertionError, match=words):
    _check_named_code(spec)


def test_a_yaml_that_is_no_pipeline_spec_fails_the_parse(compiled):
  with pytest.raises(kfp_server_checks.Refused, match='not a PipelineSpec'):
    _parsed(compiled + b'dag: {}\n')  # a field PipelineSpec does not have


def test_bad_option_is_refused_before_compiling(tmp_path):
  result = run_cli(['kubeflow_runner.py', 'compile', '--output',
                    tmp_path / 'p.yaml', '--architectures', 'vgg16'],
                   timeout=120)
  assert result.returncode == 2
  assert 'vgg16' in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'p.yaml').exists()


def test_a_runner_that_cannot_run_the_stages_is_refused_before_compiling(
    tmp_path):
  result = run_cli(['kubeflow_runner.py', 'compile', '--output',
                    tmp_path / 'p.yaml', '--beam-arg=--runner=DaskRunner'],
                   timeout=120)
  assert result.returncode == 2
  assert 'DaskRunner' in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'p.yaml').exists()
