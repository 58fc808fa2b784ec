"""Uploads, runs and schedules the compiled pipeline on Kubeflow Pipelines.

The client side of `python kubeflow_runner.py submit|schedule`, on the kfp 2.x
`kfp.Client` (KFP API v2beta1):

* the compiled YAML is uploaded as a new pipeline, or, when a pipeline of that
  name exists, as a new version of it named `<pipeline>-<UTC timestamp>`;
* the experiment is reused when it exists, created otherwise;
* the run (or recurring run) references that exact pipeline version and
  carries the runtime parameters and the pipeline root.

Problems talking to the server (unreachable host, HTTP errors) raise
`KfpClientError` with a one-line message naming the host and the operation;
invalid input (cron expression, parameter names, package path) raises
`ValueError` before anything is sent.
"""
import contextlib
import datetime
import os
import re
from typing import Any, Dict, Optional, Tuple
import warnings

from absl import logging
import yaml

# Bounds the reachability probe made before `kfp.Client` is built (which
# itself has no timeout, and retries an HTTP error for 25 s).
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30

# KFP's scheduler (robfig/cron) reads 6 fields, the first being seconds.
CRON_FIELDS = (
    # name, lowest, highest, names allowed
    ('seconds', 0, 59, None),
    ('minutes', 0, 59, None),
    ('hours', 0, 23, None),
    ('day-of-month', 1, 31, None),
    ('month', 1, 12, ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug',
                      'sep', 'oct', 'nov', 'dec')),
    ('day-of-week', 0, 6, ('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat')),
)
_CRON_LAYOUT = ' '.join(name for name, *_ in CRON_FIELDS)
_CRON_ITEM = re.compile(r'^(?:(\*|\?)|([0-9a-z]+)(?:-([0-9a-z]+))?)'
                        r'(?:/([0-9]+))?$', re.IGNORECASE)


class KfpClientError(RuntimeError):
  """The KFP API could not be reached or refused a request."""


def validate_cron(expression: str) -> str:
  """Checks a KFP cron expression; returns it with single spaces.

  KFP's cron has 6 fields, the first being seconds:
  `seconds minutes hours day-of-month month day-of-week`, so Sundays at
  03:00:00 is `0 0 3 * * 0`. Each field is `*`, `?`, a value, a range
  `a-b` or a comma-separated list of these, each optionally with a `/step`;
  months and weekdays may be named (`JAN`, `SUN`).

  Args:
    expression: the cron expression.

  Returns:
    The expression, whitespace-normalised.

  Raises:
    ValueError: not 6 fields of valid cron syntax; a 5-field (classic crontab)
      expression gets the 6-field equivalent in the message.
  """
  fields = str(expression).split()
  if len(fields) == 5 and not _cron_problems(fields, CRON_FIELDS[1:]):
    suggestion = '0 ' + ' '.join(fields)
    raise ValueError(
        f'cron expression {expression!r} has 5 fields, but KFP cron '
        f'expressions have 6, starting with seconds ({_CRON_LAYOUT}); '
        f'the same schedule at second 0 is {suggestion!r}')
  if len(fields) != 6:
    raise ValueError(
        f'cron expression {expression!r} has {len(fields)} fields; KFP needs '
        f'6 ({_CRON_LAYOUT}), e.g. \'0 0 3 * * 0\' for Sundays at 03:00:00')
  problems = _cron_problems(fields, CRON_FIELDS)
  if problems:
    raise ValueError(f'invalid cron expression {expression!r}: '
                     f'{"; ".join(problems)} (fields: {_CRON_LAYOUT})')
  return ' '.join(fields)


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
  client, ids = _prepare(host, package_path, pipeline_name, experiment,
                         params, client)
  run_name = run_name or f'{pipeline_name}-{_timestamp()}'
  with _talking_to(host, f'start run {run_name!r}'):
    run = client.run_pipeline(
        experiment_id=ids['experiment_id'],
        job_name=run_name,
        params=dict(params),
        pipeline_id=ids['pipeline_id'],
        version_id=ids['version_id'],
        pipeline_root=pipeline_root)
  ids['run_id'] = run.run_id
  url = _ui_url(client, f'runs/details/{run.run_id}')
  logging.info('Started run %r (%s) of pipeline %r version %s in experiment '
               '%r%s.', run_name, run.run_id, pipeline_name, ids['version_id'],
               experiment, f': {url}' if url else '')
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
  client, ids = _prepare(host, package_path, pipeline_name, experiment,
                         params, client)
  job_name = job_name or f'{pipeline_name}-recurring-{_timestamp()}'
  with _talking_to(host, f'create recurring run {job_name!r}'):
    job = client.create_recurring_run(
        experiment_id=ids['experiment_id'],
        job_name=job_name,
        cron_expression=cron,
        max_concurrency=1,
        no_catchup=True,
        enabled=True,
        params=dict(params),
        pipeline_id=ids['pipeline_id'],
        version_id=ids['version_id'],
        pipeline_root=pipeline_root)
  ids['recurring_run_id'] = job.recurring_run_id
  url = _ui_url(client, f'recurringrun/details/{job.recurring_run_id}')
  logging.info('Scheduled %r (%s) with cron %r: pipeline %r version %s in '
               'experiment %r%s.', job_name, job.recurring_run_id, cron,
               pipeline_name, ids['version_id'], experiment,
               f': {url}' if url else '')
  return ids


def _prepare(host, package_path, pipeline_name, experiment, params, client):
  """Checks the inputs, connects, uploads, and finds the experiment.

  Returns:
    (client, {'pipeline_id', 'version_id', 'experiment_id'}).
  """
  _check_params(package_path, params)
  client = client or _connect(host)
  pipeline_id, version_id = _upload(client, host, package_path, pipeline_name)
  with _talking_to(host, f'get or create experiment {experiment!r}'):
    experiment_id = client.create_experiment(name=experiment).experiment_id
  logging.info('Experiment %r: %s', experiment, experiment_id)
  return client, {'pipeline_id': pipeline_id, 'version_id': version_id,
                  'experiment_id': experiment_id}


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


def _connect(host: str):
  """A `kfp.Client` for `host`, after a bounded reachability check."""
  _probe(host)
  import kfp  # pylint: disable=g-import-not-at-top
  with _talking_to(host, 'connect'), warnings.catch_warnings():
    # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later".
    warnings.simplefilter('ignore', FutureWarning)
    return kfp.Client(host=host)


def _probe(host: str) -> None:
  """Fails fast when `host` does not answer the KFP health check.

  `kfp.Client` checks health itself, but with no timeout and five retries 5 s
  apart on HTTP errors. Refusals that credentials may lift (401, 403) are left
  to it: it may hold an auth cookie from ~/.config/kfp/context.json.
  """
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  config = kfp_server_api.Configuration(host=_base_url(host))
  config.retries = False
  api = kfp_server_api.HealthzServiceApi(kfp_server_api.ApiClient(config))
  try:
    with _talking_to(host, 'health check'):
      api.get_healthz(
          _request_timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS))
  except KfpClientError as e:
    status = getattr(e.__cause__, 'status', None)
    if status == 404:
      raise KfpClientError(f'{e} (is {host} the KFP API endpoint?)') from e
    if status not in (401, 403):
      raise


def _base_url(host: str) -> str:
  """The API base URL `kfp.Client` derives from `host`."""
  if not host or not host.strip():
    raise ValueError('no KFP host given (e.g. http://localhost:8080)')
  host = host.strip()
  if not host.startswith('http'):
    host = 'https://' + host  # as kfp.Client does
  return host.rstrip('/')


@contextlib.contextmanager
def _talking_to(host: str, operation: str):
  """Turns transport and HTTP errors into a one-line KfpClientError."""
  import kfp_server_api  # pylint: disable=g-import-not-at-top
  import urllib3  # pylint: disable=g-import-not-at-top
  try:
    yield
  except kfp_server_api.ApiException as e:
    raise KfpClientError(
        f'KFP at {host}: {operation} failed: {_describe_http(e)}') from e
  except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as e:
    reason = getattr(e, 'reason', None) or e
    raise KfpClientError(f'KFP at {host} is unreachable ({operation} failed): '
                         f'{_one_line(reason)}') from e
  except ValueError as e:  # kfp's own checks, e.g. duplicate names
    raise KfpClientError(
        f'KFP at {host}: {operation} failed: {_one_line(e)}') from e


def _describe_http(error) -> str:
  """'HTTP 409 Conflict: <server message>' from an ApiException."""
  if not error.status:  # SSL and other errors the client raises itself
    return _one_line(error.reason)
  text = f'HTTP {error.status} {error.reason or ""}'.strip()
  body = error.body
  if isinstance(body, bytes):
    body = body.decode('utf-8', 'replace')
  message = None
  if body:
    try:
      parsed = yaml.safe_load(body)  # JSON is YAML
    except yaml.YAMLError:
      parsed = None
    if isinstance(parsed, dict):
      message = parsed.get('message') or parsed.get('error')
    elif not body.lstrip().startswith('<'):  # not an HTML error page
      message = body
  return f'{text}: {_one_line(message)}' if message else text


def _one_line(value, limit: int = 300) -> str:
  """`value` as text on one line, without urllib3's object reprs."""
  text = ' '.join(str(value).split())
  if '>: ' in text:  # "<urllib3.connection.HTTPConnection object at 0x..>: ..."
    text = text.split('>: ', 1)[1]
  return text if len(text) <= limit else text[:limit - 3] + '...'


def _check_params(package_path: str, params: Dict[str, Any]) -> None:
  """Refuses a missing package and parameters its pipeline does not take."""
  if not os.path.isfile(package_path):
    raise ValueError(f'pipeline package not found: {package_path}')
  try:
    with open(package_path) as f:  # a platform spec may follow the pipeline
      spec = next(iter(yaml.safe_load_all(f)), None)
  except (yaml.YAMLError, UnicodeDecodeError) as e:
    raise ValueError(f'{package_path} is not a KFP pipeline YAML: '
                     f'{_one_line(e)}') from e
  if not isinstance(spec, dict):
    raise ValueError(f'{package_path} is not a KFP pipeline YAML')
  spec = spec.get('pipelineSpec', spec)
  if 'root' not in spec:
    raise ValueError(f'{package_path} is not a KFP pipeline YAML (no root)')
  known = set(((spec['root'].get('inputDefinitions') or {})
               .get('parameters') or {}))
  unknown = sorted(set(params) - known)
  if unknown:
    raise ValueError(
        f'the pipeline in {package_path} has no parameter(s) '
        f'{", ".join(unknown)}; it takes: {", ".join(sorted(known)) or "none"}')


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


def _cron_problems(fields, specs) -> list:
  """What is wrong with each cron field, as readable strings."""
  problems = []
  for value, (name, low, high, names) in zip(fields, specs):
    for item in value.split(','):
      problem = _cron_item_problem(item, low, high, names)
      if problem:
        problems.append(f'{name} field {value!r}: {problem}')
        break
  return problems


def _cron_item_problem(item, low, high, names) -> Optional[str]:
  """Why one comma-separated cron item is invalid, or None."""
  match = _CRON_ITEM.match(item)
  if not match:
    return f'{item!r} is not *, ?, a value or a range, with an optional /step'
  _, start, end, step = match.groups()
  if step is not None and int(step) == 0:
    return 'step 0'
  bounds = []
  for token in (start, end):
    if token is None:
      continue
    if token.isdigit():
      number = int(token)
    elif names and token.lower() in names:
      number = names.index(token.lower()) + low
    else:
      return f'{token!r} is not a number' + (
          f' or one of {", ".join(n.upper() for n in names)}' if names else '')
    if not low <= number <= high:
      return f'{number} is outside {low}-{high}'
    bounds.append(number)
  if len(bounds) == 2 and bounds[0] > bounds[1]:
    return f'range {item!r} runs backwards'
  return None
