"""Uploads, runs and schedules the compiled pipeline on Kubeflow Pipelines.

The client side of `python kubeflow_runner.py submit|schedule`, on the kfp 2.x
`kfp.Client` (KFP API v2beta1):

* the compiled YAML is uploaded as a new pipeline, or, when a pipeline of that
  name exists, as a new version of it named `<pipeline>-<UTC timestamp>`;
* the experiment is reused when it exists, created otherwise;
* the run (or recurring run) references that exact pipeline version and
  carries the runtime parameters and the pipeline root.

Problems talking to the server (unreachable host, HTTP errors) raise
`KfpClientError` with a one-line message naming the host and the operation
(`runners.kfp_connection`); invalid input (cron expression, parameter names,
package path) raises `ValueError` before anything is sent
(`runners.kfp_validation`).
"""
import datetime
from typing import Any, Dict, NamedTuple, Optional, Tuple

from absl import logging

from runners import kfp_connection
from runners import kfp_validation

# Callers use these through this module, the KFP client's one entry point.
KfpClientError = kfp_connection.KfpClientError
validate_cron = kfp_validation.validate_cron

_talking_to = kfp_connection.talking_to


class _Launch(NamedTuple):
  """What submit or schedule creates once the pipeline version is uploaded."""
  method: str  # of kfp.Client
  name_infix: str  # default name: <pipeline><infix>-<UTC timestamp>
  operation: str  # named in a KfpClientError
  id_key: str  # id attribute of what the method returns; key in the ids
  ui_route: str  # KFP UI page of what was created, before its id


_RUN = _Launch('run_pipeline', '', 'start run', 'run_id', 'runs/details')
_RECURRING_RUN = _Launch('create_recurring_run', '-recurring',
                         'create recurring run', 'recurring_run_id',
                         'recurringrun/details')


def submit(host: str,
           package_path: str,
           pipeline_name: str,
           experiment: str,
           params: Dict[str, Any],
           pipeline_root: Optional[str] = None,
           run_name: Optional[str] = None,
           client=None) -> Dict[str, str]:
  """Uploads the compiled pipeline (or a new version of it) and starts a run.

  Args:
    host: KFP API endpoint, e.g. `http://localhost:8080`.
    package_path: the compiled KFP v2 IR YAML.
    pipeline_name: display name of the pipeline on the server.
    experiment: experiment of the run; created when missing.
    params: runtime parameters (names from the YAML's root inputs).
    pipeline_root: where the run writes artifacts; None keeps the compiled one.
    run_name: display name of the run; default `<pipeline>-<UTC timestamp>`.
    client: a `kfp.Client`-like object; None connects to `host`.

  Returns:
    {'pipeline_id', 'version_id', 'experiment_id', 'run_id'}.

  Raises:
    KfpClientError: the server is unreachable or refused a request.
    ValueError: bad package or parameter names.
  """
  ids, run_name, at_url = _launch(
      _RUN, host, package_path, pipeline_name, experiment, params,
      pipeline_root, run_name, client)
  logging.info('Started run %r (%s) of pipeline %r version %s in experiment '
               '%r%s.', run_name, ids['run_id'], pipeline_name,
               ids['version_id'], experiment, at_url)
  return ids


def schedule(host: str,
             package_path: str,
             pipeline_name: str,
             experiment: str,
             cron: str,
             params: Dict[str, Any],
             pipeline_root: Optional[str] = None,
             job_name: Optional[str] = None,
             client=None) -> Dict[str, str]:
  """Uploads the pipeline (or a new version) and creates a recurring run.

  The recurring run is enabled, runs one at a time (max_concurrency=1) and
  does not catch up on runs missed while it was paused (no_catchup).

  Args:
    host: KFP API endpoint, e.g. `http://localhost:8080`.
    package_path: the compiled KFP v2 IR YAML.
    pipeline_name: display name of the pipeline on the server.
    experiment: experiment of the runs; created when missing.
    cron: 6-field cron with seconds (`validate_cron`), e.g. `0 0 3 * * 0`.
    params: runtime parameters of every run.
    pipeline_root: where runs write artifacts; None keeps the compiled one.
    job_name: display name of the recurring run; default
      `<pipeline>-recurring-<UTC timestamp>`.
    client: a `kfp.Client`-like object; None connects to `host`.

  Returns:
    {'pipeline_id', 'version_id', 'experiment_id', 'recurring_run_id'}.

  Raises:
    KfpClientError: the server is unreachable or refused a request.
    ValueError: bad cron expression, package or parameter names.
  """
  cron = validate_cron(cron)
  ids, job_name, at_url = _launch(
      _RECURRING_RUN, host, package_path, pipeline_name, experiment, params,
      pipeline_root, job_name, client, cron_expression=cron,
      max_concurrency=1, no_catchup=True, enabled=True)
  logging.info('Scheduled %r (%s) with cron %r: pipeline %r version %s in '
               'experiment %r%s.', job_name, ids['recurring_run_id'], cron,
               pipeline_name, ids['version_id'], experiment, at_url)
  return ids


def _launch(launch: _Launch, host, package_path, pipeline_name, experiment,
            params, pipeline_root, name, client, **options):
  """Checks the inputs, uploads, finds the experiment, then creates `launch`.

  A run and a recurring run differ only in the `_Launch` and the recurring
  run's `options`, so submit and schedule share every step.

  Returns:
    (ids: {'pipeline_id', 'version_id', 'experiment_id', launch.id_key},
     the name used, ': <UI address>' or '' when the client has no UI host).
  """
  kfp_validation.check_params(package_path, params)
  client = client or kfp_connection.connect(host)
  pipeline_id, version_id = _upload(client, host, package_path, pipeline_name)
  with _talking_to(host, f'get or create experiment {experiment!r}'):
    experiment_id = client.create_experiment(name=experiment).experiment_id
  logging.info('Experiment %r: %s', experiment, experiment_id)
  ids = {'pipeline_id': pipeline_id, 'version_id': version_id,
         'experiment_id': experiment_id}
  name = name or f'{pipeline_name}{launch.name_infix}-{_timestamp()}'
  with _talking_to(host, f'{launch.operation} {name!r}'):
    created = getattr(client, launch.method)(
        experiment_id=experiment_id,
        job_name=name,
        **options,
        params=dict(params),
        pipeline_id=pipeline_id,
        version_id=version_id,
        pipeline_root=pipeline_root)
  ids[launch.id_key] = getattr(created, launch.id_key)
  url = _ui_url(client, f'{launch.ui_route}/{ids[launch.id_key]}')
  return ids, name, f': {url}' if url else ''


def _upload(client, host: str, package_path: str,
            pipeline_name: str) -> Tuple[str, str]:
  """Uploads the package as a pipeline or a new version of it.

  Returns:
    (pipeline id, id of the version just uploaded).
  """
  with _talking_to(host, f'look up pipeline {pipeline_name!r}'):
    pipeline_id = client.get_pipeline_id(pipeline_name)
  if pipeline_id is None:
    with _talking_to(host, f'upload pipeline {pipeline_name!r}'):
      pipeline_id = client.upload_pipeline(
          pipeline_package_path=package_path,
          pipeline_name=pipeline_name).pipeline_id
      # The upload created the pipeline's first (and only) version.
      versions = client.list_pipeline_versions(
          pipeline_id=pipeline_id, page_size=1,
          sort_by='created_at desc').pipeline_versions
    if not versions:
      raise KfpClientError(
          f'KFP at {host}: uploaded pipeline {pipeline_name!r} ({pipeline_id})'
          ' but the server lists no version of it')
    version_id = versions[0].pipeline_version_id
    logging.info('Uploaded %s as new pipeline %r: %s, version %s.',
                 package_path, pipeline_name, pipeline_id, version_id)
  else:
    version_name = f'{pipeline_name}-{_timestamp()}'
    with _talking_to(host, f'upload version {version_name!r} of pipeline '
                     f'{pipeline_name!r}'):
      version_id = client.upload_pipeline_version(
          pipeline_package_path=package_path,
          pipeline_version_name=version_name,
          pipeline_id=pipeline_id).pipeline_version_id
    logging.info('Uploaded %s as version %r (%s) of pipeline %r (%s).',
                 package_path, version_name, version_id, pipeline_name,
                 pipeline_id)
  return pipeline_id, version_id


def _timestamp() -> str:
  """UTC time to the microsecond, e.g. `20250105-030000-123456`."""
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y%m%d-%H%M%S-%f')


def _ui_url(client, route: str) -> Optional[str]:
  """The KFP UI address of `route`, when the client exposes its UI host."""
  prefix = getattr(client, '_get_url_prefix', None)
  if not callable(prefix):
    return None
  try:
    return f'{prefix()}/#/{route}'
  except Exception:  # pylint: disable=broad-except
    return None
