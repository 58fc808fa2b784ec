"""The compiled Kubeflow pipeline's own tasks, run as KFP v2 would start them.

`kubeflow_runner.compile_spec` compiles the pipeline into KFP v2 IR YAML;
testing/kfp_launcher/ then runs every task's container command and args from
that YAML, in dependency order, with the executor input the KFP v2 driver
would build (run parameters, constants, upstream artifacts and their
metadata) and the executor output fed downstream, in this environment instead
of the image (each task in a fork of an interpreter that imported TFX while
the pipeline compiled). The data root, epochs, image size, architectures and
gates are overridden at run time and the outputs show each one reached its
executor: the compiled defaults would give other numbers.
"""
import glob
import json
import os
import sys

import pytest
import yaml

import kubeflow_runner
from contract import layout
from testing import images
from testing import kfp_launcher
from testing.kfp_launcher import prewarm
from testing.support import REPO

_PER_CLASS = 20  # runtime data: 40 real images, 20 patients a class
_DEFAULT_PER_CLASS = 3  # the compiled default data_root holds fewer
IMAGE = 'registry.example.com/pneumonia-pipeline:test'


def _compile(tmp_path, monkeypatch, default_data):
  """The YAML kubeflow_runner.py writes; the image's code folder is this
  repository (what the Dockerfile copies to /pipeline)."""
  monkeypatch.setattr(kubeflow_runner, 'IMAGE_CODE_DIR', str(REPO))
  output = tmp_path / 'pipeline.yaml'
  args = kubeflow_runner.parse_args([
      'compile', '--output', str(output), '--image', IMAGE,
      '--pipeline-root', str(tmp_path / 'root'),
      '--data-root', str(default_data),
      '--serving-model-dir', str(tmp_path / 'serving'),
      '--reports-dir', str(tmp_path / 'reports'),
      '--profile', 'quick', '--epochs', '3', '--image-size', '128',
      '--architectures', 'baseline_cnn,improved_cnn',
      '--min-auc', '0.99', '--min-recall', '0.99',
      '--beam-arg=--direct_num_workers=1'])
  kubeflow_runner.write_yaml(kubeflow_runner.compile_spec(args), str(output))
  return output


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def test_compiled_tasks_run_from_ingestion_to_a_pushed_model(
    kermany_224, tmp_path, monkeypatch):
  # Interpreters importing TFX's entrypoint while the pipeline compiles.
  pods = tmp_path / 'pods'
  pods.mkdir()
  zygotes = [prewarm.Zygote([prewarm.TFX_ENTRYPOINT], str(REPO),
                            str(pods / f'zygote-{i}.log'),
                            dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
             for i in range(2)]
  try:
    _compile_and_run(kermany_224, tmp_path, monkeypatch, zygotes)
  finally:
    for zygote in zygotes:
      zygote.close()


def _compile_and_run(kermany_224, tmp_path, monkeypatch, zygotes):
  default_data, data = tmp_path / 'default_data', tmp_path / 'data'
  images.copy_patients(kermany_224, default_data, count=_DEFAULT_PER_CLASS)
  images.copy_patients(kermany_224, data, first=_DEFAULT_PER_CLASS,
                       count=_PER_CLASS)
  spec_path = _compile(tmp_path, monkeypatch, default_data)
  with open(spec_path) as f:
    compiled = yaml.safe_load(f)
  defaults = compiled['root']['inputDefinitions']['parameters']
  assert defaults['data_root']['defaultValue'] == str(default_data)
  assert defaults['epochs']['defaultValue'] == 3
  # What the KFP v2 driver and TFX's entrypoint need (TFX writes schema
  # 2.0.0 by default, which they cannot run): typed component parameters,
  # `constant` runtime values, and the entrypoint told to read
  # parameterValues, the only field KFP fills.
  assert compiled['schemaVersion'] == '2.1.0'
  for name, component in compiled['components'].items():
    for key, param in component.get('inputDefinitions', {}).get(
        'parameters', {}).items():
      assert 'parameterType' in param and 'type' not in param, (name, key)
  assert 'constantValue' not in yaml.safe_dump(compiled)
  for name, executor in compiled['deploymentSpec']['executors'].items():
    assert '--json_serialized_inputs_spec_args' in executor['container'][
        'args'], name

  run = kfp_launcher.LocalKfpRun(
      str(spec_path), pipeline_root=str(tmp_path / 'root'),
      work_dir=str(tmp_path / 'pods'), code_dir=str(REPO), zygotes=zygotes,
      parameters={'data_root': str(data), 'epochs': 1, 'image_size': 32,
                  'batch_size': 8, 'architectures': 'baseline_cnn',
                  'min_auc': 0.0, 'min_recall': 0.0},
      env={'TF_CPP_MIN_LOG_LEVEL': '2'})
  tasks = run.run(parallel=2)
  assert sorted(tasks) == sorted(compiled['root']['dag']['tasks'])

  # Every task ran its own container command from the YAML.
  executors = compiled['deploymentSpec']['executors']
  for name, task in tasks.items():
    container = executors[compiled['components'][compiled['root']['dag'][
        'tasks'][name]['componentRef']['name']]['executorLabel']]['container']
    assert task.command[1:len(container['command'])] == container[
        'command'][1:], name
    assert task.command[0] == sys.executable
    assert len(task.command) == len(container['command']) + len(
        container['args']), name

  # The overrides were in the executor input KFP would pass ...
  trainer_values = tasks['Trainer'].executor_input['inputs']['parameterValues']
  assert (trainer_values['epochs'], trainer_values['image_size']) == (1, 32)
  assert tasks['ImageExampleGen'].executor_input['inputs'][
      'parameterValues']['input_base'] == str(data)

  # ... and reached the executors. data_root: the runtime folder was
  # ingested, not the compiled default.
  examples = tasks['ImageExampleGen'].artifacts['examples']['uri']
  report = _read_json(os.path.join(examples, layout.INGESTION_REPORT_FILE))
  assert report['counts']['all']['total'] == 2 * _PER_CLASS, report['counts']

  # epochs, image_size, architectures: what the Trainer ran with.
  model_run = tasks['Trainer'].artifacts['model_run']['uri']
  settings = _read_json(os.path.join(model_run,
                                     layout.TRAINING_SETTINGS_FILE))
  flat = json.dumps(settings)
  assert '"image_size": 32' in flat and '"epochs": 1' in flat, settings
  histories = glob.glob(os.path.join(model_run, '*',
                                     layout.HISTORY_STEM + '.json'))
  assert [os.path.basename(os.path.dirname(p)) for p in histories] == [
      'baseline_cnn'], histories
  assert len(_read_json(histories[0])) == 1

  # The gates: blessed against the runtime bounds (0.0, not 0.99), pushed.
  evaluation = tasks['Evaluator'].artifacts['evaluation']['uri']
  decision = _read_json(os.path.join(evaluation, layout.DECISION_FILE))
  assert decision[layout.BLESSED] is True, decision
  assert '0.99' not in json.dumps(decision), decision
  versions = [v for v in os.listdir(tmp_path / 'serving') if v.isdigit()]
  assert len(versions) == 1, os.listdir(tmp_path / 'serving')
  assert (tmp_path / 'serving' / versions[0] / 'saved_model.pb').exists()
  pushed = tasks['Pusher'].artifacts['pushed_model']['metadata']
  assert pushed.get('pushed') == 1, pushed

  # And the run report.
  reports = glob.glob(str(tmp_path / 'reports' / '2*' / layout.REPORT_FILE))
  assert len(reports) == 1, os.listdir(tmp_path / 'reports')
  assert (tmp_path / 'reports' / layout.LATEST_REPORT /
          layout.REPORT_FILE).exists()


# A task that writes what it was handed (argv, executor input) into its
# output artifact, with metadata of every kind the launcher converts.
_TASK_CODE = """
import json, os, sys
executor_input = json.loads(sys.argv[1])
out = executor_input['outputs']['artifacts']['out']['artifacts'][0]
os.makedirs(out['uri'])
with open(os.path.join(out['uri'], 'seen.json'), 'w') as f:
  json.dump({'argv': sys.argv[2:], 'input': executor_input}, f)
os.makedirs(os.path.dirname(executor_input['outputs']['outputFile']))
with open(executor_input['outputs']['outputFile'], 'w') as f:
  json.dump({'artifacts': {'out': {'artifacts': [{'metadata': {
      'count': 3, 'flag': True, 'splits': ['a', 'b'], 'nested': {'k': 'v'}}
  }]}}}, f)
"""


def _synthetic_spec(word_value=None, n_spec=None):
  """Two tasks, a producer and a consumer, in KFP v2 IR (schema 2.1)."""
  component = lambda params: {
      'executorLabel': 'exec-task',
      'inputDefinitions': {'parameters': params, 'artifacts': {
          'data': {'artifactType': {'schemaTitle': 'system.Dataset'},
                   'isOptional': True}}},
      'outputDefinitions': {'artifacts': {
          'out': {'artifactType': {'schemaTitle': 'system.Dataset'}}}}}
  params = {'n': n_spec or {'parameterType': 'NUMBER_INTEGER'},
            'word': {'parameterType': 'STRING'}}
  return {
      'pipelineInfo': {'name': 'p'}, 'schemaVersion': '2.1.0',
      'sdkVersion': 'test',
      'deploymentSpec': {'executors': {'exec-task': {'container': {
          'image': 'x', 'command': ['python', '-c', _TASK_CODE],
          'args': ['{{$}}', "{{$.inputs.parameters['word']}}",
                   "n={{$.inputs.parameters['n']}}",
                   "{{$.outputs.artifacts['out'].uri}}"]}}}},
      'components': {'comp-task': component(params)},
      'root': {
          'inputDefinitions': {'parameters': {
              'n': {'parameterType': 'NUMBER_INTEGER', 'defaultValue': 2}}},
          'dag': {'tasks': {
              'producer': {
                  'componentRef': {'name': 'comp-task'},
                  'taskInfo': {'name': 'producer'},
                  'inputs': {'parameters': {
                      'n': {'componentInputParameter': 'n'},
                      'word': {'runtimeValue': word_value or {
                          'constant': 'hello'}}}}},
              'consumer': {
                  'componentRef': {'name': 'comp-task'},
                  'taskInfo': {'name': 'consumer'},
                  'dependentTasks': ['producer'],
                  'inputs': {
                      'parameters': {
                          'n': {'componentInputParameter': 'n'},
                          'word': {'runtimeValue': {'constant': 'bye'}}},
                      'artifacts': {'data': {'taskOutputArtifact': {
                          'producerTask': 'producer',
                          'outputArtifactKey': 'out'}}}}}}}}}


def _launch(tmp_path, spec, **parameters):
  path = tmp_path / 'p.yaml'
  path.write_text(yaml.safe_dump(spec))
  return kfp_launcher.LocalKfpRun(
      str(path), str(tmp_path / 'root'), str(tmp_path / 'pods'), str(REPO),
      parameters=parameters, run_id='run-1')


def test_the_launcher_hands_tasks_what_kfp_would(tmp_path):
  """Placeholders, parameter values, artifact URIs and upstream metadata
  as KFP's driver and launcher pass them (no TFX involved)."""
  tasks = _launch(tmp_path, _synthetic_spec(), n=5).run()
  assert list(tasks) == ['producer', 'consumer']
  seen = {name: _read_json(os.path.join(task.artifacts['out']['uri'],
                                        'seen.json'))
          for name, task in tasks.items()}
  out_uri = str(tmp_path / 'root' / 'run-1' / 'producer' / 'out')
  assert seen['producer']['argv'] == ['hello', 'n=5', out_uri]
  assert seen['producer']['input']['inputs']['parameterValues'] == {
      'n': 5, 'word': 'hello'}
  assert 'parameters' not in seen['producer']['input']['inputs']
  upstream = seen['consumer']['input']['inputs']['artifacts']['data'][
      'artifacts'][0]
  assert upstream['uri'] == out_uri and upstream['name'] == '1'
  assert upstream['type'] == {'instanceSchema': 'title: system.Dataset'}
  # As MLMD stores them: bool -> 0/1, list and struct wrapped, display_name.
  assert upstream['metadata'] == {
      'count': 3, 'flag': 1, 'splits': {'list': ['a', 'b']},
      'nested': {'struct': {'k': 'v'}}, 'display_name': 'out'}


def test_the_launcher_refuses_what_kfp_refuses(tmp_path):
  """What the API server or the driver would refuse (no task starts)."""
  assert _launch(tmp_path, _synthetic_spec()).parameters[
      'n'].number_value == 2
  with pytest.raises(kfp_launcher.KfpError, match='unknown run parameters'):
    _launch(tmp_path, _synthetic_spec(), epochs=1)
  with pytest.raises(kfp_launcher.KfpError, match='type mismatch'):
    _launch(tmp_path, _synthetic_spec(), n='one')
  # Schema 2.0 as TFX writes it by default: legacy constants ...
  legacy = _launch(tmp_path, _synthetic_spec(
      word_value={'constantValue': {'stringValue': 'hello'}}))
  with pytest.raises(kfp_launcher.KfpError, match='not implemented'):
    legacy.run()
  # ... and component parameters typed only by the deprecated `type`.
  untyped = _launch(tmp_path, _synthetic_spec(n_spec={'type': 'INT'}))
  with pytest.raises(kfp_launcher.KfpError, match='type mismatch'):
    untyped.run()
