"""A local stand-in for the Kubeflow Pipelines v2beta1 REST API.

Serves the endpoints `kfp.Client` (kfp 2.5) calls to upload a pipeline or a
pipeline version, find or create an experiment, and start a run or a
recurring run, on 127.0.0.1 and a free port. Every request is recorded
(method, path, query, JSON body, uploaded files) for assertions; state is
kept in memory; answers have the shape of the real API (snake_case fields,
UUID ids, RFC 3339 times, int64 as strings, errors as
{"error", "code", "message"}). It refuses what the real server refuses
(`testing/kfp_server_checks.py`): a package that is not a PipelineSpec,
run parameters the spec's root does not declare or of another type, a cron
robfig/cron cannot parse, max_concurrency outside 1..10.

  with FakeKfpServer() as server:
    client = kfp.Client(host=server.url)
    ...
    server.requests_to('POST', '/apis/v2beta1/runs')[0].json

or the `fake_kfp_server` fixture (import it into the test module).
"""
import dataclasses
import datetime
import http.server
import json
import re
import threading
from typing import Any, Dict, List, Optional, Tuple
import urllib.parse
import uuid

from google.protobuf import json_format
import pytest

from testing import kfp_server_checks

API = '/apis/v2beta1'
# gRPC status codes the real server puts in error bodies.
_GRPC_CODE = {400: 3, 404: 5, 409: 6, 500: 13, 503: 14}


@dataclasses.dataclass
class RecordedRequest:
  """One request as the server saw it."""
  method: str
  path: str
  query: Dict[str, str]  # last value of each query parameter
  json: Any = None  # parsed JSON body, if any
  files: Dict[str, bytes] = dataclasses.field(default_factory=dict)
  filenames: Dict[str, str] = dataclasses.field(default_factory=dict)
  form: Dict[str, str] = dataclasses.field(default_factory=dict)


class ApiError(Exception):
  """Answered as an HTTP error with a gRPC-gateway style body."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


class FakeKfpServer:
  """In-memory KFP API server running on a background thread."""

  def __init__(self, multi_user: bool = False):
    self.multi_user = multi_user
    self.requests: List[RecordedRequest] = []
    self.pipelines: Dict[str, dict] = {}
    self.versions: Dict[str, dict] = {}  # id -> version (with pipeline_id)
    self.uploads: Dict[str, bytes] = {}  # version id -> uploaded package
    self.experiments: Dict[str, dict] = {}
    self.runs: Dict[str, dict] = {}
    self.recurring_runs: Dict[str, dict] = {}
    self._errors: List[list] = []  # [method, path regex, status, msg, times]
    self._sequence = 0
    self._lock = threading.Lock()
    self._httpd: Optional[http.server.ThreadingHTTPServer] = None
    self._thread: Optional[threading.Thread] = None

  # --- lifecycle ---------------------------------------------------------

  @property
  def url(self) -> str:
    host, port = self._httpd.server_address[:2]
    return f'http://{host}:{port}'

  def start(self) -> 'FakeKfpServer':
    handler = type('Handler', (_Handler,), {'fake': self})
    self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    self._httpd.daemon_threads = True
    self._thread = threading.Thread(target=self._httpd.serve_forever,
                                    kwargs={'poll_interval': 0.05},
                                    name='fake-kfp', daemon=True)
    self._thread.start()
    return self

  def stop(self) -> None:
    if self._httpd:
      self._httpd.shutdown()
      self._httpd.server_close()
      self._thread.join(timeout=5)
      self._httpd = None

  def __enter__(self) -> 'FakeKfpServer':
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()

  # --- test helpers ------------------------------------------------------

  def fail(self, method: str, path_pattern: str, status: int,
           message: str = 'injected failure', times: int = 1) -> None:
    """Answers the next `times` matching requests with an HTTP error.

    `path_pattern` is a regular expression matched against the whole path.
    """
    with self._lock:
      self._errors.append([method, re.compile(path_pattern), status, message,
                           times])

  def requests_to(self, method: str, path: str) -> List[RecordedRequest]:
    """Recorded requests with this method and exact path, in order."""
    return [r for r in self.requests if r.method == method and r.path == path]

  def endpoints(self) -> List[Tuple[str, str]]:
    """(method, path) of every request so far, in order; ids replaced."""
    uuid_re = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                         r'[0-9a-f]{12}')
    return [(r.method, uuid_re.sub('{id}', r.path)) for r in self.requests]

  # --- request handling --------------------------------------------------

  def record(self, request: RecordedRequest) -> None:
    """Adds a request to `requests` (once)."""
    with self._lock:
      if not any(r is request for r in self.requests):
        self.requests.append(request)

  def handle(self, request: RecordedRequest) -> dict:
    """The JSON answer to a request, or raises ApiError."""
    with self._lock:
      for error in self._errors:
        method, pattern, status, message, times = error
        if times > 0 and method == request.method and pattern.fullmatch(
            request.path):
          error[4] -= 1
          raise ApiError(status, message)
      for method, pattern, handler in self._routes():
        match = re.fullmatch(API + pattern, request.path)
        if method == request.method and match:
          return handler(request, *match.groups())
      raise ApiError(404, f'fake KFP server: no route for {request.method} '
                     f'{request.path}')

  def _routes(self):
    uid = '([^/]+)'
    return [
        ('GET', '/healthz', self._healthz),
        ('GET', '/pipelines', self._list_pipelines),
        ('POST', '/pipelines/upload', self._upload_pipeline),
        ('POST', '/pipelines/upload_version', self._upload_version),
        ('GET', f'/pipelines/{uid}', self._get_pipeline),
        ('GET', f'/pipelines/{uid}/versions', self._list_versions),
        ('GET', f'/pipelines/{uid}/versions/{uid}', self._get_version),
        ('GET', '/experiments', self._list_experiments),
        ('POST', '/experiments', self._create_experiment),
        ('GET', f'/experiments/{uid}', self._get_experiment),
        ('POST', '/runs', self._create_run),
        ('GET', f'/runs/{uid}', self._get_run),
        ('POST', '/recurringruns', self._create_recurring_run),
        ('GET', f'/recurringruns/{uid}', self._get_recurring_run),
    ]

  def _new_id_and_time(self) -> Tuple[str, str, int]:
    self._sequence += 1
    created = (datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) +
               datetime.timedelta(seconds=self._sequence))
    return str(uuid.uuid4()), created.strftime('%Y-%m-%dT%H:%M:%SZ'), \
        self._sequence

  def _healthz(self, request):
    del request
    return {'commit_sha': 'fake', 'tag_name': '2.0.5',
            'multi_user': self.multi_user}

  # pipelines

  def _list_pipelines(self, request):
    pipelines = _filtered(self.pipelines.values(), request.query)
    return _page('pipelines', pipelines, request.query)

  def _get_pipeline(self, request, pipeline_id):
    del request
    return _public(self._existing(self.pipelines, pipeline_id, 'pipeline'))

  def _upload_pipeline(self, request):
    package, spec = self._package(request, 'Failed to create a pipeline')
    name = request.query.get('name') or request.filenames['uploadfile']
    if any(p['display_name'] == name for p in self.pipelines.values()):
      raise ApiError(409, f'Failed to create a pipeline. The pipeline '
                     f'{name!r} already exists')
    pipeline_id, created, seq = self._new_id_and_time()
    pipeline = {'pipeline_id': pipeline_id, 'display_name': name,
                'description': request.query.get('description', ''),
                'created_at': created, '_seq': seq}
    if request.query.get('namespace'):
      pipeline['namespace'] = request.query['namespace']
    self.pipelines[pipeline_id] = pipeline
    self._add_version(pipeline_id, name, package, spec, '')  # first version
    return _public(pipeline)

  def _upload_version(self, request):
    package, spec = self._package(request,
                                  'Failed to upload a pipeline version')
    pipeline_id = request.query.get('pipelineid')
    if not pipeline_id:
      raise ApiError(400, 'Failed to upload a pipeline version: pipeline id '
                     'is empty')
    self._existing(self.pipelines, pipeline_id, 'pipeline')
    name = request.query.get('name') or request.filenames['uploadfile']
    if any(v['pipeline_id'] == pipeline_id and v['display_name'] == name
           for v in self.versions.values()):
      raise ApiError(409, f'Failed to create a pipeline version. The version '
                     f'{name!r} already exists')
    return _public(self._add_version(pipeline_id, name, package, spec,
                                     request.query.get('description', '')))

  def _add_version(self, pipeline_id, name, package, spec, description):
    version_id, created, seq = self._new_id_and_time()
    version = {'pipeline_id': pipeline_id, 'pipeline_version_id': version_id,
               'display_name': name, 'description': description,
               'created_at': created,
               'pipeline_spec': json_format.MessageToDict(spec),
               '_spec': spec, '_seq': seq}
    self.versions[version_id] = version
    self.uploads[version_id] = package
    return version

  def _list_versions(self, request, pipeline_id):
    self._existing(self.pipelines, pipeline_id, 'pipeline')
    versions = [v for v in self.versions.values()
                if v['pipeline_id'] == pipeline_id]
    versions = _filtered(versions, request.query)
    sort_by = request.query.get('sort_by', '').split()
    if sort_by and sort_by[0] not in ('created_at', 'name', 'display_name'):
      raise ApiError(400, f'unsupported sort_by {request.query["sort_by"]!r}')
    key = '_seq' if not sort_by or sort_by[0] == 'created_at' else (
        'display_name')
    versions.sort(key=lambda v: v[key], reverse=sort_by[1:] == ['desc'])
    return _page('pipeline_versions', versions, request.query)

  def _get_version(self, request, pipeline_id, version_id):
    del request
    version = self._existing(self.versions, version_id, 'pipeline version')
    if version['pipeline_id'] != pipeline_id:
      raise ApiError(404, f'pipeline version {version_id} not found')
    return _public(version)

  def _package(self, request, what: str):
    """(uploaded bytes, their PipelineSpec), or a refusal as the server's."""
    if 'uploadfile' not in request.files:
      raise ApiError(400, 'Failed to read the pipeline file: uploadfile is '
                     'missing')
    package = request.files['uploadfile']
    try:
      spec, _ = kfp_server_checks.parse_package(
          package, request.filenames['uploadfile'])
    except kfp_server_checks.Refused as e:
      raise ApiError(400, f'{what}: {e}') from e
    return package, spec

  # experiments

  def _list_experiments(self, request):
    namespace = request.query.get('namespace', '')
    experiments = [e for e in self.experiments.values()
                   if e.get('namespace', '') == namespace]
    return _page('experiments', _filtered(experiments, request.query),
                 request.query)

  def _create_experiment(self, request):
    body = request.json or {}
    name = body.get('display_name')
    if not name:
      raise ApiError(400, 'Experiment display name is empty')
    namespace = body.get('namespace') or ''
    if any(e['display_name'] == name and e.get('namespace', '') == namespace
           for e in self.experiments.values()):
      raise ApiError(409, f'Experiment {name!r} already exists')
    experiment_id, created, seq = self._new_id_and_time()
    experiment = {'experiment_id': experiment_id, 'display_name': name,
                  'description': body.get('description') or '',
                  'created_at': created, 'storage_state': 'AVAILABLE',
                  '_seq': seq}
    if namespace:
      experiment['namespace'] = namespace
    self.experiments[experiment_id] = experiment
    return _public(experiment)

  def _get_experiment(self, request, experiment_id):
    del request
    return _public(self._existing(self.experiments, experiment_id,
                                  'experiment'))

  # runs

  def _create_run(self, request):
    body = dict(request.json or {})
    self._check_run_body(body, 'Failed to create a run')
    run_id, created, seq = self._new_id_and_time()
    run = dict(body, run_id=run_id, created_at=created, state='PENDING',
               storage_state='AVAILABLE', _seq=seq)
    self.runs[run_id] = run
    return _public(run)

  def _get_run(self, request, run_id):
    del request
    return _public(self._existing(self.runs, run_id, 'run'))

  def _create_recurring_run(self, request):
    body = dict(request.json or {})
    trigger = body.get('trigger') or {}
    if not (trigger.get('cron_schedule') or trigger.get('periodic_schedule')):
      raise ApiError(400, 'Recurring run has no trigger')
    # The order of api_converter.go toModelJob: concurrency, then cron; the
    # pipeline and its parameters are checked after.
    what = 'Failed to create a recurring run'
    try:
      kfp_server_checks.check_max_concurrency(body.get('max_concurrency'))
      if 'cron_schedule' in trigger:
        kfp_server_checks.check_cron(
            (trigger['cron_schedule'] or {}).get('cron', ''))
    except kfp_server_checks.Refused as e:
      raise ApiError(400, f'{what}: {e}') from e
    self._check_run_body(body, what)
    job_id, created, seq = self._new_id_and_time()
    job = dict(body, recurring_run_id=job_id, created_at=created,
               updated_at=created, _seq=seq,
               status='ENABLED' if body.get('mode') == 'ENABLE' else 'DISABLED')
    if 'max_concurrency' in job:  # int64: a string in JSON
      job['max_concurrency'] = str(job['max_concurrency'])
    self.recurring_runs[job_id] = job
    return _public(job)

  def _get_recurring_run(self, request, job_id):
    del request
    return _public(self._existing(self.recurring_runs, job_id,
                                  'recurring run'))

  def _check_run_body(self, body, what: str):
    """Name, experiment, pipeline; then the parameters against its spec."""
    if not body.get('display_name'):
      raise ApiError(400, 'Run name is empty')
    if body.get('experiment_id'):
      self._existing(self.experiments, body['experiment_id'], 'experiment')
    reference = body.get('pipeline_version_reference')
    try:
      if reference:
        version = self._existing(self.versions,
                                 reference.get('pipeline_version_id'),
                                 'pipeline version')
        if reference.get('pipeline_id') not in (None,
                                                version['pipeline_id']):
          raise ApiError(400, 'pipeline version belongs to another pipeline')
        spec = version['_spec']
      elif body.get('pipeline_spec'):
        spec = kfp_server_checks.parse_spec_dict(body['pipeline_spec'])
      else:
        raise ApiError(400, 'Neither a pipeline version nor a spec is given')
      kfp_server_checks.check_run_parameters(
          spec, (body.get('runtime_config') or {}).get('parameters'))
    except kfp_server_checks.Refused as e:
      raise ApiError(400, f'{what}: {e}') from e

  @staticmethod
  def _existing(table: dict, key, what: str) -> dict:
    if key not in table:
      raise ApiError(404, f'{what} {key} not found')
    return table[key]


def _public(item: dict) -> dict:
  return {k: v for k, v in item.items() if not k.startswith('_')}


def _page(field: str, items, query) -> dict:
  """A list answer; page_token is not supported (one page of page_size)."""
  items = list(items)
  size = int(query.get('page_size') or 0) or len(items)
  answer = {'total_size': len(items)}
  if items:  # the real API omits empty lists
    answer[field] = [_public(item) for item in items[:size]]
  return answer


def _filtered(items, query) -> list:
  """Applies a v2beta1 Filter (EQUALS predicates on names) from ?filter=."""
  items = list(items)
  if not query.get('filter'):
    return items
  try:
    predicates = json.loads(query['filter'])['predicates']
  except (ValueError, KeyError, TypeError) as e:
    raise ApiError(400, f'Invalid filter: {query["filter"]}') from e
  for predicate in predicates:
    operation = predicate.get('operation')
    key = predicate.get('key')
    value = predicate.get('stringValue', predicate.get('string_value'))
    if operation not in ('EQUALS', 1) or key not in ('display_name', 'name'):
      raise ApiError(400, f'fake KFP server: unsupported predicate {predicate}')
    items = [item for item in items if item.get('display_name') == value]
  return items


def _multipart(content_type: str, body: bytes):
  """Parts of a multipart/form-data body: {name: (filename, bytes)}."""
  match = re.search(r'boundary="?([^";]+)"?', content_type)
  if not match:
    raise ApiError(400, 'multipart body without boundary')
  delimiter = b'--' + match.group(1).encode()
  parts = {}
  for chunk in body.split(delimiter)[1:]:
    if chunk.startswith(b'--'):  # closing delimiter
      break
    head, _, data = chunk[2:].partition(b'\r\n\r\n')  # skip the CRLF
    if data.endswith(b'\r\n'):
      data = data[:-2]
    disposition = next(
        (line for line in head.decode('utf-8').split('\r\n')
         if line.lower().startswith('content-disposition:')), '')
    name = re.search(r'\bname="([^"]*)"', disposition)
    filename = re.search(r'\bfilename="([^"]*)"', disposition)
    if name:
      parts[name.group(1)] = (filename.group(1) if filename else None, data)
  return parts


class _Handler(http.server.BaseHTTPRequestHandler):
  """Parses a request, hands it to the FakeKfpServer, writes the answer."""
  fake: FakeKfpServer = None
  protocol_version = 'HTTP/1.1'
  disable_nagle_algorithm = True  # else ~40 ms per keep-alive request

  def do_GET(self):  # pylint: disable=invalid-name
    self._serve()

  def do_POST(self):  # pylint: disable=invalid-name
    self._serve()

  def do_DELETE(self):  # pylint: disable=invalid-name
    self._serve()

  def log_message(self, *args):  # quiet
    del args

  def _serve(self):
    url = urllib.parse.urlsplit(self.path)
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(
        url.query, keep_blank_values=True).items()}
    request = RecordedRequest(self.command, url.path, query)
    length = int(self.headers.get('Content-Length') or 0)
    body = self.rfile.read(length) if length else b''
    content_type = self.headers.get('Content-Type', '')
    try:
      if body and content_type.startswith('multipart/form-data'):
        for name, (filename, data) in _multipart(content_type, body).items():
          if filename is None:
            request.form[name] = data.decode('utf-8')
          else:
            request.files[name] = data
            request.filenames[name] = filename
      elif body:
        try:
          request.json = json.loads(body)
        except ValueError as e:
          raise ApiError(400, f'invalid JSON body: {e}') from e
      self.fake.record(request)
      self._answer(200, self.fake.handle(request))
    except ApiError as e:
      self.fake.record(request)
      self._answer(e.status, {'error': e.message, 'message': e.message,
                              'code': _GRPC_CODE.get(e.status, 2),
                              'details': []})

  def _answer(self, status: int, payload: dict):
    data = json.dumps(payload).encode()
    self.send_response(status)
    self.send_header('Content-Type', 'application/json')
    self.send_header('Content-Length', str(len(data)))
    self.end_headers()
    self.wfile.write(data)


@pytest.fixture
def fake_kfp_server():
  """A running FakeKfpServer, stopped after the test."""
  with FakeKfpServer() as server:
    yield server
