"""runners/kfp_client.py with the real kfp.Client against a fake KFP API.

The fake refuses what a real KFP server refuses (testing/kfp_server_checks.py);
the last tests show each refusal reaches the caller as a clear error.
"""
import json
import logging
import socket
import time

import kfp
from kfp import compiler
from kfp import dsl
from kfp.client import client as kfp_client_module
import kfp_server_api
import pytest
import yaml

from runners import kfp_client
from runners import kfp_validation
from testing.kfp_fake_server import fake_kfp_server  # pylint: disable=unused-import

API = '/apis/v2beta1'
PIPELINE = 'tiny-pneumonia'
PARAMS = {'epochs': 7, 'architectures': 'baseline_cnn,resnet50',
          'min_auc': 0.85}
ROOT = 'gs://bucket/pipeline_root'


@dsl.component(base_image='python:3.10')
def _train(epochs: int, architectures: str, min_auc: float) -> str:
  return f'{epochs} {architectures} {min_auc}'


@dsl.pipeline(name='tiny-pneumonia')
def _tiny_pipeline(epochs: int = 1, architectures: str = 'baseline_cnn',
                   min_auc: float = 0.9):
  _train(epochs=epochs, architectures=architectures, min_auc=min_auc)


@pytest.fixture(scope='module')
def package(tmp_path_factory):
  path = tmp_path_factory.mktemp('package') / 'pipeline.yaml'
  compiler.Compiler().compile(_tiny_pipeline, str(path))
  return path


@pytest.fixture(autouse=True)
def _no_local_kfp_context(monkeypatch, tmp_path):
  """Keeps a developer's ~/.config/kfp/context.json and env out of the way."""
  monkeypatch.setattr(kfp_client_module.Client, '_LOCAL_KFP_CONTEXT',
                      str(tmp_path / 'no-kfp-context.json'))
  for name in ('KF_PIPELINES_ENDPOINT', 'KF_PIPELINES_UI_ENDPOINT',
               'KF_PIPELINES_IAP_OAUTH2_CLIENT_ID'):
    monkeypatch.delenv(name, raising=False)


def _closed_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_submit_uploads_pipeline_creates_experiment_and_starts_run(
    fake_kfp_server, package):
  server = fake_kfp_server
  ids = kfp_client.submit(server.url, str(package), PIPELINE, 'nightly',
                          PARAMS, pipeline_root=ROOT, run_name='first run')

  assert set(ids) == {'pipeline_id', 'version_id', 'experiment_id', 'run_id'}
  # The YAML went up byte for byte as a new pipeline of that name.
  [upload] = server.requests_to('POST', f'{API}/pipelines/upload')
  assert upload.query['name'] == PIPELINE
  assert upload.files['uploadfile'] == package.read_bytes()
  assert not server.requests_to('POST', f'{API}/pipelines/upload_version')
  assert list(server.pipelines) == [ids['pipeline_id']]
  assert server.versions[ids['version_id']]['pipeline_id'] == ids[
      'pipeline_id']
  # The experiment did not exist: looked up by name, then created.
  [created] = server.requests_to('POST', f'{API}/experiments')
  assert created.json['display_name'] == 'nightly'
  assert list(server.experiments) == [ids['experiment_id']]
  # The run references that version and carries parameters and root.
  [run] = server.requests_to('POST', f'{API}/runs')
  assert run.json['display_name'] == 'first run'
  assert run.json['experiment_id'] == ids['experiment_id']
  assert run.json['pipeline_version_reference'] == {
      'pipeline_id': ids['pipeline_id'],
      'pipeline_version_id': ids['version_id']}
  assert run.json['runtime_config'] == {'parameters': PARAMS,
                                        'pipeline_root': ROOT}
  assert 'pipeline_spec' not in run.json  # the uploaded version, not inline
  assert list(server.runs) == [ids['run_id']]


def test_second_submit_uploads_a_version_and_reuses_the_experiment(
    fake_kfp_server, package):
  server = fake_kfp_server
  # Someone else's pipeline and experiment must stay apart from ours.
  other = kfp_client.submit(server.url, str(package), 'other-pipeline',
                            'other-experiment', {})
  start = len(server.requests)
  first = kfp_client.submit(server.url, str(package), PIPELINE, 'nightly',
                            PARAMS, pipeline_root=ROOT)
  assert first['pipeline_id'] != other['pipeline_id']
  assert first['experiment_id'] != other['experiment_id']
  del server.requests[:start]
  second = kfp_client.submit(server.url, str(package), PIPELINE, 'nightly',
                             {'epochs': 2})
  third = kfp_client.submit(server.url, str(package), PIPELINE, 'nightly', {})

  assert len(server.requests_to('POST', f'{API}/pipelines/upload')) == 1
  versions = server.requests_to('POST', f'{API}/pipelines/upload_version')
  assert len(versions) == 2
  for version in versions:
    assert version.query['pipelineid'] == first['pipeline_id']
    assert version.query['name'].startswith(PIPELINE + '-')
    assert version.files['uploadfile'] == package.read_bytes()
  assert versions[0].query['name'] != versions[1].query['name']
  assert len(server.pipelines) == 2
  assert len(server.versions) == 4
  assert len({first['version_id'], second['version_id'],
              third['version_id']}) == 3
  assert first['pipeline_id'] == second['pipeline_id'] == third['pipeline_id']
  # One experiment, found by name the second and third time.
  assert len(server.requests_to('POST', f'{API}/experiments')) == 1
  assert first['experiment_id'] == second['experiment_id'] == third[
      'experiment_id']
  runs = server.requests_to('POST', f'{API}/runs')
  assert [r.json['pipeline_version_reference']['pipeline_version_id']
          for r in runs] == [first['version_id'], second['version_id'],
                             third['version_id']]
  assert runs[1].json['runtime_config'] == {'parameters': {'epochs': 2}}
  assert len({r.json['display_name'] for r in runs}) == 3  # unique defaults


def test_schedule_creates_an_enabled_recurring_run_one_at_a_time(
    fake_kfp_server, package):
  server = fake_kfp_server
  ids = kfp_client.schedule(server.url, str(package), PIPELINE, 'weekly',
                            '0 0 3 * * 0', PARAMS, pipeline_root=ROOT,
                            job_name='sundays')

  assert set(ids) == {'pipeline_id', 'version_id', 'experiment_id',
                      'recurring_run_id'}
  [upload] = server.requests_to('POST', f'{API}/pipelines/upload')
  assert upload.files['uploadfile'] == package.read_bytes()
  assert not server.requests_to('POST', f'{API}/runs')
  [job] = server.requests_to('POST', f'{API}/recurringruns')
  body = job.json
  assert body['display_name'] == 'sundays'
  assert body['trigger'] == {'cron_schedule': {'cron': '0 0 3 * * 0'}}
  assert body['max_concurrency'] in (1, '1')
  assert body['no_catchup'] is True
  assert body['mode'] == 'ENABLE'
  assert body['experiment_id'] == ids['experiment_id']
  assert body['pipeline_version_reference'] == {
      'pipeline_id': ids['pipeline_id'],
      'pipeline_version_id': ids['version_id']}
  assert body['runtime_config'] == {'parameters': PARAMS,
                                    'pipeline_root': ROOT}
  assert server.recurring_runs[ids['recurring_run_id']]['status'] == 'ENABLED'

  # Scheduling again uploads a version of the same pipeline.
  again = kfp_client.schedule(server.url, str(package), PIPELINE, 'weekly',
                              '0  30 2 * * MON-FRI', {})
  assert again['pipeline_id'] == ids['pipeline_id']
  assert again['version_id'] != ids['version_id']
  assert again['experiment_id'] == ids['experiment_id']
  assert server.requests_to('POST', f'{API}/recurringruns')[1].json[
      'trigger'] == {'cron_schedule': {'cron': '0 30 2 * * MON-FRI'}}


def test_schedule_refuses_a_five_field_cron_before_any_request(
    fake_kfp_server, package):
  with pytest.raises(ValueError, match="'0 0 3 \\* \\* 0'"):
    kfp_client.schedule(fake_kfp_server.url, str(package), PIPELINE, 'weekly',
                        '0 3 * * 0', PARAMS)
  assert not fake_kfp_server.requests


def test_validate_cron_explains_the_seconds_field():
  with pytest.raises(ValueError) as error:
    kfp_client.validate_cron('0 3 * * 0')
  message = str(error.value)
  assert "'0 0 3 * * 0'" in message
  assert 'seconds' in message and '6' in message and '5 fields' in message


@pytest.mark.parametrize('expression, normalised', [
    ('0 0 3 * * 0', '0 0 3 * * 0'),
    ('  0 0 3 * *   0 ', '0 0 3 * * 0'),
    ('0 0 9 ? * 2-6', '0 0 9 ? * 2-6'),
    ('0 */15 8-18 1,15 JAN-jun mon', '0 */15 8-18 1,15 JAN-jun mon'),
    ('30 0 0 1 */3 *', '30 0 0 1 */3 *'),
])
def test_validate_cron_accepts_six_fields(expression, normalised):
  assert kfp_client.validate_cron(expression) == normalised


@pytest.mark.parametrize('expression, words', [
    ('', ['0 fields']),
    ('@weekly', ['1 fields']),
    ('0 0 3 * * 0 2025', ['7 fields']),
    ('0 0 3 * * 7', ['day-of-week', 'outside 0-6']),
    ('60 0 3 * * 0', ['seconds', 'outside 0-59']),
    ('0 0 24 * * 0', ['hours']),
    ('0 0 3 0 * 0', ['day-of-month', 'outside 1-31']),
    ('0 0 3 * * SUNDAY', ['day-of-week', "'SUNDAY'"]),
    ('0 0 3 * FOO 0', ['month']),
    ('0 0 3 * * 5-1', ['backwards']),
    ('0 0 */0 * * 0', ['step 0']),
    ('0 0 3; * * 0', ['hours']),
    ('0 0 3 L * 0', ['day-of-month']),
])
def test_validate_cron_rejects(expression, words):
  with pytest.raises(ValueError) as error:
    kfp_client.validate_cron(expression)
  for word in words:
    assert word in str(error.value)


def test_unreachable_host_fails_fast_with_one_line(package):
  host = f'http://127.0.0.1:{_closed_port()}'
  start = time.monotonic()
  with pytest.raises(kfp_client.KfpClientError) as error:
    kfp_client.submit(host, str(package), PIPELINE, 'nightly', PARAMS)
  assert time.monotonic() - start < 5
  message = str(error.value)
  assert host in message and 'unreachable' in message
  assert 'Connection refused' in message
  assert '\n' not in message and ' object at 0x' not in message


def test_http_errors_name_the_host_and_the_operation(fake_kfp_server,
                                                     package):
  server = fake_kfp_server
  server.fail('POST', f'{API}/runs', 500, 'database is\ndown')
  with pytest.raises(kfp_client.KfpClientError) as error:
    kfp_client.submit(server.url, str(package), PIPELINE, 'nightly', PARAMS,
                      run_name='doomed')
  message = str(error.value)
  assert server.url in message and "start run 'doomed'" in message
  assert 'HTTP 500' in message and 'database is down' in message
  assert '\n' not in message

  server.fail('POST', f'{API}/pipelines/upload_version', 409, 'exists')
  with pytest.raises(kfp_client.KfpClientError, match='upload version .*'
                     'HTTP 409.*exists'):
    kfp_client.schedule(server.url, str(package), PIPELINE, 'nightly',
                        '0 0 3 * * 0', PARAMS)


def test_a_host_that_is_not_kfp_fails_at_once(fake_kfp_server, package):
  server = fake_kfp_server
  server.fail('GET', f'{API}/healthz', 404, 'no such page', times=100)
  start = time.monotonic()
  with pytest.raises(kfp_client.KfpClientError, match='health check.*404'):
    kfp_client.submit(server.url, str(package), PIPELINE, 'nightly', PARAMS)
  assert time.monotonic() - start < 5  # kfp.Client alone retries for 25 s
  assert [r.path for r in server.requests] == [f'{API}/healthz']


def test_unknown_parameters_and_bad_packages_are_refused_before_upload(
    fake_kfp_server, package, tmp_path):
  server = fake_kfp_server
  with pytest.raises(ValueError, match='no parameter.*epoch_count.*takes: '
                     'architectures, epochs, min_auc'):
    kfp_client.submit(server.url, str(package), PIPELINE, 'nightly',
                      {'epoch_count': 3})
  with pytest.raises(ValueError, match='not found'):
    kfp_client.submit(server.url, str(tmp_path / 'missing.yaml'), PIPELINE,
                      'nightly', {})
  not_a_pipeline = tmp_path / 'notes.yaml'
  not_a_pipeline.write_text('- just\n- a list\n')
  with pytest.raises(ValueError, match='not a KFP pipeline'):
    kfp_client.submit(server.url, str(not_a_pipeline), PIPELINE, 'nightly', {})
  # A root that is not a component: a clear refusal, not an AttributeError.
  for text in ('root: train\n', 'root: {inputDefinitions: [a]}\n'):
    not_a_pipeline.write_text(text)
    with pytest.raises(ValueError, match='not a KFP pipeline|no parameter'):
      kfp_client.submit(server.url, str(not_a_pipeline), PIPELINE, 'nightly',
                        {'epochs': 3})
  assert not server.requests


def test_logs_what_it_did_with_the_run_url(fake_kfp_server, package, caplog):
  caplog.set_level(logging.INFO)
  ids = kfp_client.submit(fake_kfp_server.url, str(package), PIPELINE,
                          'nightly', PARAMS)
  text = caplog.text
  assert f'{fake_kfp_server.url}/#/runs/details/{ids["run_id"]}' in text
  assert f'new pipeline {PIPELINE!r}' in text and ids['version_id'] in text


def test_an_injected_client_is_used_as_is(fake_kfp_server, package):
  import kfp  # pylint: disable=g-import-not-at-top
  client = kfp.Client(host=fake_kfp_server.url)
  calls_before = len(fake_kfp_server.requests)
  ids = kfp_client.submit('http://ignored.invalid', str(package), PIPELINE,
                          'nightly', PARAMS, client=client)
  paths = [r.path for r in fake_kfp_server.requests[calls_before:]]
  assert f'{API}/healthz' not in paths  # no probe of the (ignored) host
  assert fake_kfp_server.runs[ids['run_id']]['experiment_id'] == ids[
      'experiment_id']


# --- what a real KFP server refuses, and how the refusal reaches the caller


@pytest.fixture
def uploaded(fake_kfp_server, package):
  """(kfp.Client, ids of a pipeline version and experiment) on the fake."""
  ids = kfp_client.submit(fake_kfp_server.url, str(package), PIPELINE,
                          'nightly', PARAMS)
  return kfp.Client(host=fake_kfp_server.url), ids


def _refusal(call) -> str:
  """The message of the HTTP 400 InvalidArgument the server answers."""
  with pytest.raises(kfp_server_api.ApiException) as error:
    call()
  assert error.value.status == 400
  body = json.loads(error.value.body)
  assert body['code'] == 3 and body['error'] == body['message']
  return body['message']


def _schedule(client, ids, cron='0 0 3 * * 0', max_concurrency=1, **kwargs):
  return client.create_recurring_run(
      experiment_id=ids['experiment_id'], job_name='weekly',
      cron_expression=cron, max_concurrency=max_concurrency,
      pipeline_id=ids['pipeline_id'], version_id=ids['version_id'], **kwargs)


def test_server_refuses_a_parameter_the_pipeline_does_not_take(
    fake_kfp_server, uploaded, package, monkeypatch):
  client, ids = uploaded
  message = _refusal(lambda: client.run_pipeline(
      experiment_id=ids['experiment_id'], job_name='typo',
      pipeline_id=ids['pipeline_id'], version_id=ids['version_id'],
      params={'epochs': 2, 'epoch_count': 3}))
  assert 'not required by pipeline: epoch_count' in message
  assert 'epochs' not in message.replace('epoch_count', '')
  assert len(fake_kfp_server.runs) == 1  # the fixture's run only
  # Without our own check first, the runner would still say what is wrong.
  monkeypatch.setattr(kfp_validation, 'check_params', lambda *args: None)
  with pytest.raises(kfp_client.KfpClientError,
                     match="start run 'typo' failed: HTTP 400.*not required "
                     'by pipeline: epoch_count'):
    kfp_client.submit(fake_kfp_server.url, str(package), PIPELINE, 'nightly',
                      {'epoch_count': 3}, run_name='typo')


def test_server_refuses_a_parameter_of_the_wrong_type(fake_kfp_server,
                                                      package):
  # The runner checks names only: a wrong type is the server's refusal.
  server = fake_kfp_server
  for params, words in [
      ({'epochs': '7'}, 'epochs requires type double or integer'),
      ({'min_auc': True}, 'min_auc requires type double or integer'),
      ({'architectures': ['resnet50']}, 'architectures requires type string'),
  ]:
    with pytest.raises(kfp_client.KfpClientError) as error:
      kfp_client.submit(server.url, str(package), PIPELINE, 'nightly',
                        params, run_name='typed')
    message = str(error.value)
    assert "start run 'typed' failed: HTTP 400" in message, message
    assert words in message and '\n' not in message
  with pytest.raises(kfp_client.KfpClientError,
                     match="create recurring run 'sundays' failed: HTTP 400"
                     '.*min_auc requires type double or integer'):
    kfp_client.schedule(server.url, str(package), PIPELINE, 'nightly',
                        '0 0 3 * * 0', {'min_auc': 'high'},
                        job_name='sundays')
  assert not server.runs and not server.recurring_runs


@pytest.mark.parametrize('cron, reason', [
    # A crontab line: robfig reads seconds first, so its month is 0.
    ('0 3 * * 0', 'Beginning of range (0) below minimum (1): 0'),
    ('0 0 3 * * 0 2025', 'Expected 5 to 6 fields, found 7'),
    ('0 0 3 * * 7', 'End of range (7) above maximum (6): 7'),
    ('0 0 3 * * SUNDAY', 'Failed to parse int from SUNDAY'),
    ('0 0 */0 * * 0', 'Step of range should be a positive number'),
    ('@fortnightly', 'Unrecognized descriptor'),
])
def test_server_refuses_a_cron_robfig_cannot_parse(fake_kfp_server, uploaded,
                                                   cron, reason):
  client, ids = uploaded
  message = _refusal(lambda: _schedule(client, ids, cron))
  assert 'Schedule cron is not a supported format' in message
  assert reason in message
  assert not fake_kfp_server.recurring_runs


def test_server_takes_what_robfig_takes_even_five_fields(fake_kfp_server,
                                                         uploaded):
  # '0 3 * * 1' is "minute 3 of every hour in January" to the server, which
  # is why runners/kfp_validation.py refuses 5 fields itself.
  client, ids = uploaded
  for cron in ('0 0 3 * * 0', '0 3 * * 1', '@weekly', '@every 1h30m'):
    _schedule(client, ids, cron)
  assert len(fake_kfp_server.recurring_runs) == 4
  with pytest.raises(ValueError, match='5 fields'):
    kfp_client.validate_cron('0 3 * * 1')


def test_server_refuses_max_concurrency_outside_1_to_10(fake_kfp_server,
                                                        uploaded):
  client, ids = uploaded
  for bad in (0, 11):
    message = _refusal(lambda: _schedule(client, ids, max_concurrency=bad))
    assert ('Max concurrency of a recurring run must be at least 1 and at '
            f'most 10. Received {bad}') in message
  assert not fake_kfp_server.recurring_runs
  for good in (1, 10):
    _schedule(client, ids, max_concurrency=good)
  assert len(fake_kfp_server.recurring_runs) == 2


def _documents(package_path):
  with open(package_path) as f:
    return list(yaml.safe_load_all(f))


def _unknown_field(spec):
  spec['tasks'] = []


def _wrong_type(spec):
  spec['sdkVersion'] = {'kfp': 2}


def _no_name(spec):
  del spec['pipelineInfo']['name']


def _old_schema(spec):
  spec['schemaVersion'] = '2.0.0'


@pytest.mark.parametrize('change, reason', [
    (_unknown_field, 'unknown template format (not a PipelineSpec: '),
    (_wrong_type, 'unknown template format (not a PipelineSpec: '),
    (_no_name, 'unknown template format (no pipelineInfo.name)'),
    (_old_schema, 'KFP only supports schema version 2.1.0, but the pipeline '
     'spec has version 2.0.0'),
], ids=['unknown_field', 'wrong_type', 'no_name', 'old_schema'])
def test_server_refuses_a_package_that_is_not_a_pipeline_spec(
    fake_kfp_server, package, tmp_path, change, reason):
  # Each has a root, so passes the runner's own look at the package.
  [spec] = _documents(package)
  change(spec)
  bad = tmp_path / 'bad.yaml'
  bad.write_text(yaml.safe_dump(spec))
  with pytest.raises(kfp_client.KfpClientError) as error:
    kfp_client.submit(fake_kfp_server.url, str(bad), PIPELINE, 'nightly', {})
  message = str(error.value)
  assert f"upload pipeline '{PIPELINE}' failed: HTTP 400" in message
  assert reason in message, message
  assert not fake_kfp_server.pipelines and not fake_kfp_server.runs


def test_a_platform_spec_may_follow_the_pipeline_spec_but_not_a_second_one(
    fake_kfp_server, package, tmp_path):
  [spec] = _documents(package)
  platform = {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
      'exec-train': {'nodeSelector': {'labels': {'pool': 'cpu'}}}}}}}}
  two = tmp_path / 'two.yaml'
  two.write_text(yaml.safe_dump_all([spec, platform]))
  ids = kfp_client.submit(fake_kfp_server.url, str(two), PIPELINE, 'nightly',
                          PARAMS)
  assert fake_kfp_server.versions[ids['version_id']]['pipeline_spec'][
      'pipelineInfo'] == spec['pipelineInfo']

  twice = tmp_path / 'twice.yaml'
  twice.write_text(yaml.safe_dump_all([spec, spec]))
  with pytest.raises(kfp_client.KfpClientError,
                     match='HTTP 400.*multiple pipeline specs provided'):
    kfp_client.submit(fake_kfp_server.url, str(twice), PIPELINE, 'nightly', {})
