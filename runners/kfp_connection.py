"""Connects to the KFP API and turns what goes wrong into one-line errors.

`kfp.Client` has no timeout of its own and reports failures as multi-line
`ApiException`s or urllib3 object reprs; here the host is probed with a bound
first, and every request made inside `talking_to` fails as a
`KfpClientError` naming the host and the operation.
"""
import contextlib
import warnings

import yaml

# Bounds the reachability probe made before `kfp.Client` is built (which
# itself has no timeout, and retries an HTTP error for 25 s).
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30


class KfpClientError(RuntimeError):
  """The KFP API could not be reached or refused a request."""


def connect(host: str):
  """A `kfp.Client` for `host`, after a bounded reachability check."""
  _probe(host)
  import kfp  # pylint: disable=g-import-not-at-top
  with talking_to(host, 'connect'), warnings.catch_warnings():
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
    with talking_to(host, 'health check'):
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
def talking_to(host: str, operation: str):
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
                         f'{one_line(reason)}') from e
  except ValueError as e:  # kfp's own checks, e.g. duplicate names
    raise KfpClientError(
        f'KFP at {host}: {operation} failed: {one_line(e)}') from e


def _describe_http(error) -> str:
  """'HTTP 409 Conflict: <server message>' from an ApiException."""
  if not error.status:  # SSL and other errors the client raises itself
    return one_line(error.reason)
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
  return f'{text}: {one_line(message)}' if message else text


def one_line(value, limit: int = 300) -> str:
  """`value` as text on one line, without urllib3's object reprs."""
  text = ' '.join(str(value).split())
  if '>: ' in text:  # "<urllib3.connection.HTTPConnection object at 0x..>: ..."
    text = text.split('>: ', 1)[1]
  return text if len(text) <= limit else text[:limit - 3] + '...'
