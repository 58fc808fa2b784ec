"""kubeflow_runner.py compile: a KFP v2 YAML that open-source KFP can run."""
import importlib.util
import os

import yaml

from contract import settings as config
from testing.support import REPO
from testing.support import run_cli

# The external cohort's branch is always compiled in (an empty
# external_data_root means none this run).
STAGE_ORDER = ['ImageExampleGen', 'ExternalExampleGen', 'ImportSchemaGen',
               'StatisticsGen', 'ExampleValidator', 'AnomalyGate',
               'ExternalStatisticsGen', 'ExternalExampleValidator',
               'ExternalAnomalyGate', 'Trainer', 'SiteCalibration',
               'DeployedModel', 'Evaluator', 'Pusher', 'RunReport']
# Each task and what it must (transitively) wait for.
WIRING = {
    'StatisticsGen': {'ImageExampleGen', 'ImportSchemaGen'},
    'ExampleValidator': {'StatisticsGen', 'ImportSchemaGen'},
    'AnomalyGate': {'ExampleValidator'},
    'ExternalExampleGen': {'ImageExampleGen'},
    'ExternalStatisticsGen': {'ExternalExampleGen', 'ImportSchemaGen'},
    'ExternalExampleValidator': {'ExternalStatisticsGen', 'ImportSchemaGen'},
    'ExternalAnomalyGate': {'ExternalExampleValidator'},
    'Trainer': {'AnomalyGate', 'ExternalAnomalyGate', 'ImageExampleGen',
                'ImportSchemaGen'},
    'SiteCalibration': {'Trainer', 'ExternalExampleGen'},
    'Evaluator': {'SiteCalibration', 'DeployedModel', 'ImageExampleGen',
                  'ExternalExampleGen'},
    'Pusher': {'Evaluator', 'Trainer'},
    'RunReport': {'Pusher', 'Evaluator', 'Trainer', 'ImageExampleGen',
                  'DeployedModel'},
}
BEAM_TASKS = ('ImageExampleGen', 'StatisticsGen', 'Evaluator',
              'ExternalExampleGen', 'ExternalStatisticsGen')
IMAGE = 'registry.example.com/pneumonia-pipeline:1.2.3'


def _compile(tmp_path, *extra):
  output = tmp_path / 'pipeline.yaml'
  result = run_cli([
      'kubeflow_runner.py', 'compile', '--output', output, '--image', IMAGE,
      '--pipeline-root', 'gs://bucket/root', '--data-root', 'gs://bucket/xray',
      '--profile', 'quick', '--epochs', '7', '--architectures',
      'baseline_cnn,improved_cnn', '--min-auc', '0.85',
      '--external-data-root', 'gs://bucket/ext', '--min-external-auc', '0.8',
      *extra], timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(output) as f:
    return yaml.safe_load(f)


def _ancestors(tasks, name):
  seen, todo = set(), list(tasks[name].get('dependentTasks', []))
  while todo:
    task = todo.pop()
    if task not in seen:
      seen.add(task)
      todo.extend(tasks[task].get('dependentTasks', []))
  return seen


def test_compiled_yaml_runs_on_open_source_kfp(tmp_path):
  spec = _compile(tmp_path, '--beam-arg=--runner=FlinkRunner',
                  '--beam-arg=--flink_master=flink-jobmanager:8081')
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

  # The code the YAML names exists in the repository the image copies.
  named = set()
  for executor in executors.values():
    args = executor['container']['args']
    if '--executor_class_path' in args:
      named.add(args[args.index('--executor_class_path') + 1].rsplit('.', 1)[0])
  named.add(config.TRAINER_RUN_FN.rsplit('.', 1)[0])
  ours = {module for module in named if not module.startswith('tfx.')}
  assert ours >= {'components.image_example_gen.executor',
                  'trainer.run', 'components.evaluator.executor'}
  for module in ours:
    spec_ = importlib.util.find_spec(module)
    assert spec_ and spec_.origin.startswith(str(REPO)), module
    assert os.path.relpath(spec_.origin, REPO).split(os.sep)[0] in (
        'components', 'pipeline', 'trainer')


def test_bad_option_is_refused_before_compiling(tmp_path):
  result = run_cli(['kubeflow_runner.py', 'compile', '--output',
                    tmp_path / 'p.yaml', '--architectures', 'vgg16'],
                   timeout=120)
  assert result.returncode == 2
  assert 'vgg16' in result.stderr and 'Traceback' not in result.stderr
  assert not (tmp_path / 'p.yaml').exists()
