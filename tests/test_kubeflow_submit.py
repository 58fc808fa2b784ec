"""kubeflow_runner.py submit/schedule against a fake KFP API server.

The real kfp.Client talks to testing/kfp_fake_server.py, which refuses what a
real KFP server refuses (a package that is not a PipelineSpec, parameters
the pipeline does not declare or of another type, a cron or concurrency the
server rejects); what reaches the server is asserted: the compiled pipeline
uploaded, the run and the recurring run with cron, concurrency, catch-up,
pipeline root and the runtime parameters. No real cluster is involved (see
README).
"""
import yaml

from testing.kfp_fake_server import fake_kfp_server  # pylint: disable=unused-import
from testing.support import run_cli

API = '/apis/v2beta1'


def test_submit_then_schedule_the_compiled_pipeline(fake_kfp_server):
  server = fake_kfp_server
  common = ['--host', server.url, '--experiment', 'pneumonia-weekly',
            '--image', 'registry.example.com/pneumonia:7',
            '--pipeline-root', 's3://lab-bucket/pipeline-root',
            '--data-root', 's3://lab-bucket/chest_xray', '--profile', 'quick',
            '--epochs', '4', '--min-recall', '0.93']
  submitted = run_cli(['kubeflow_runner.py', 'submit', *common], timeout=600)
  assert submitted.returncode == 0, submitted.stderr[-3000:]
  [upload] = server.requests_to('POST', f'{API}/pipelines/upload')
  package = yaml.safe_load(upload.files['uploadfile'])
  assert 'Trainer' in package['root']['dag']['tasks']
  [run] = server.requests_to('POST', f'{API}/runs')
  config = run.json['runtime_config']
  assert config['pipeline_root'] == 's3://lab-bucket/pipeline-root'
  assert config['parameters']['epochs'] == 4
  assert config['parameters']['min_recall'] == 0.93
  assert config['parameters']['data_root'] == 's3://lab-bucket/chest_xray'
  # Every runtime parameter is given (the server checked names and types).
  assert set(config['parameters']) == set(
      package['root']['inputDefinitions']['parameters'])

  scheduled = run_cli(['kubeflow_runner.py', 'schedule', *common,
                       '--cron', '0 0 3 * * 0'], timeout=600)
  assert scheduled.returncode == 0, scheduled.stderr[-3000:]
  # The same pipeline, a new version; the same experiment.
  assert len(server.requests_to('POST', f'{API}/pipelines/upload')) == 1
  assert len(server.requests_to('POST', f'{API}/pipelines/upload_version')) == 1
  assert len(server.requests_to('POST', f'{API}/experiments')) == 1
  [job] = server.requests_to('POST', f'{API}/recurringruns')
  body = job.json
  assert body['trigger'] == {'cron_schedule': {'cron': '0 0 3 * * 0'}}
  assert body['max_concurrency'] in (1, '1')
  assert body['no_catchup'] is True
  assert body['runtime_config']['pipeline_root'] == (
      's3://lab-bucket/pipeline-root')
  assert body['runtime_config']['parameters']['epochs'] == 4


def test_five_field_cron_is_refused_at_once(fake_kfp_server):
  result = run_cli(['kubeflow_runner.py', 'schedule', '--host',
                    fake_kfp_server.url, '--cron', '0 3 * * 0'], timeout=60)
  assert result.returncode == 2
  assert '0 0 3 * * 0' in result.stderr
  assert not fake_kfp_server.requests
