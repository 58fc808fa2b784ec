"""What a real KFP v2beta1 API server refuses in an upload, a run, a schedule.

`testing/kfp_fake_server.py` answers these refusals as the real server does
(HTTP 400, gRPC code 3 InvalidArgument); the compile test parses our YAML
with `parse_package` too. Each check restates in Python what the server's Go
code does, read in kubeflow/pipelines (recent master):
  backend/src/apiserver/server/util.go ReadPipelineFile (file types);
  backend/src/apiserver/template/template.go New, isPipelineSpec, and
    v2_template.go NewV2SpecTemplate (the package), validatePipelineJobInputs
    (run parameters, called by RunWorkflow and ScheduledWorkflow);
  backend/src/apiserver/server/api_converter.go toModelJob (max concurrency,
    then `cron.Parse` of github.com/robfig/cron v1.2.0, pinned in go.mod;
    its parser.go and spec.go give the fields and bounds).
The protos are kfp's own `PipelineSpec`/`PlatformSpec` (the SDK's copy,
which may lack fields newer than kfp 2.5's).
"""
import json
import re
from typing import Any, Dict, Iterable, Optional, Tuple

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
import yaml

# template.go: the only schema version the v2 server runs.
SCHEMA_VERSION = '2.1.0'
# api_converter.go toModelJob: "Max concurrency of a recurring run must be at
# least 1 and at most 10".
MAX_CONCURRENCY = (1, 10)


class Refused(ValueError):
  """The real server would answer this with InvalidArgument (HTTP 400)."""


def parse_package(data: bytes, filename: str = 'pipeline.yaml') -> Tuple[
    pipeline_spec_pb2.PipelineSpec, Optional[pipeline_spec_pb2.PlatformSpec]]:
  """The package's pipeline spec and platform spec, as the server reads them.

  server/util.go ReadPipelineFile takes a `.yaml`/`.yml` file (or a zip or
  tarball, not emulated here). template.go `New` then needs one YAML
  document that parses as a PipelineSpec (protojson: unknown fields and
  wrong types fail) with a pipeline name and a root; else the format is
  unknown. v2_template.go NewV2SpecTemplate reads every document: one
  pipeline spec (schema 2.1.0, a name with a lower-case letter or digit),
  at most one platform spec with a `kubernetes` platform; other documents,
  and documents that are not mappings, are skipped.

  Raises:
    Refused: with the server's reason.
  """
  if not filename.endswith(('.yaml', '.yml')):
    raise Refused('Unexpected pipeline file format. Support .zip, .tar.gz or '
                  'YAML. (the fake server takes YAML only)')
  try:
    documents = [d for d in yaml.safe_load_all(data) if isinstance(d, dict)]
  except yaml.YAMLError as e:
    raise Refused(f'failed to parse pipeline spec YAML: {_one_line(e)}') from e
  spec, platform, first_problem = None, None, None
  for document in documents:
    parsed, problem = _as_pipeline_spec(document)
    if parsed is not None:
      if spec is not None:
        raise Refused('pipeline spec is invalid: multiple pipeline specs '
                      'provided')
      spec = parsed
    elif _as_kubernetes_platform_spec(document) is not None:
      if platform is not None:
        raise Refused('platform spec is invalid: multiple platform specs '
                      'provided')
      platform = _as_kubernetes_platform_spec(document)
    else:
      first_problem = first_problem or problem
  if spec is None:
    raise Refused('pipeline spec is invalid: unknown template format'
                  + (f' ({first_problem})' if first_problem else ''))
  if spec.schema_version != SCHEMA_VERSION:
    raise Refused(f'pipeline spec is invalid: KFP only supports schema '
                  f'version {SCHEMA_VERSION}, but the pipeline spec has '
                  f'version {spec.schema_version}')
  # The server's name pattern is not anchored: one [a-z0-9] anywhere will do.
  if not re.search(r'[a-z0-9]', spec.pipeline_info.name):
    raise Refused('pipeline spec is invalid: invalid v2 pipeline spec: name '
                  'should consist of lower case alphanumeric characters, '
                  "'-' or '.', and must start and end with an alphanumeric "
                  'character')
  return spec, platform


def parse_spec_dict(document: Dict[str, Any]) -> pipeline_spec_pb2.PipelineSpec:
  """An inline `pipeline_spec` of a run, checked like an uploaded one."""
  spec, _ = parse_package(json.dumps(document).encode())
  return spec


def _as_pipeline_spec(document) -> Tuple[Optional[Any], Optional[str]]:
  """(spec, None) when template.go isPipelineSpec holds, else (None, why)."""
  spec = pipeline_spec_pb2.PipelineSpec()
  try:
    json_format.ParseDict(_as_json(document), spec)
  except json_format.ParseError as e:
    return None, f'not a PipelineSpec: {_one_line(e)}'
  if not spec.pipeline_info.name:
    return None, 'no pipelineInfo.name'
  if not spec.HasField('root'):
    return None, 'no root'
  return spec, None


def _as_kubernetes_platform_spec(document) -> Optional[Any]:
  """The PlatformSpec when v2_template.go IsPlatformSpecWithKubernetesConfig
  holds, else None."""
  platform = pipeline_spec_pb2.PlatformSpec()
  try:
    json_format.ParseDict(_as_json(document), platform)
  except json_format.ParseError:
    return None
  return platform if 'kubernetes' in platform.platforms else None


def _as_json(document):
  """The document as the server's JSON round trip sees it (YAML dates are
  strings)."""
  return json.loads(json.dumps(document, default=str))


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


# parameterType -> (what the server calls it, test of the JSON value).
# Integers are only checked to be numbers, as the server does.
_VALUE_KINDS = {
    'NUMBER_DOUBLE': ('double or integer', _is_number),
    'NUMBER_INTEGER': ('double or integer', _is_number),
    'STRING': ('string', lambda value: isinstance(value, str)),
    'BOOLEAN': ('bool', lambda value: isinstance(value, bool)),
    'LIST': ('list', lambda value: isinstance(value, list)),
    'STRUCT': ('struct', lambda value: isinstance(value, dict)),
}


def check_run_parameters(spec: pipeline_spec_pb2.PipelineSpec,
                         parameters: Optional[Dict[str, Any]]) -> None:
  """v2_template.go validatePipelineJobInputs, for a run or recurring run.

  Every root input parameter without a default (and not optional) must be
  given; each given one must exist among the root's inputDefinitions and be
  a JSON value of its parameterType.

  Raises:
    Refused: naming the parameter.
  """
  declared = spec.root.input_definitions.parameters
  given = parameters or {}
  type_names = pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name
  for name in sorted(declared):
    param = declared[name]
    if name not in given:
      if not param.is_optional and not param.HasField('default_value'):
        raise Refused(f'invalid pipeline job inputs: parameter {name} is not '
                      'optional, yet has neither default value nor user '
                      'provided value')
      continue
    kind = type_names(param.parameter_type)
    if kind not in _VALUE_KINDS:  # unspecified, TASK_FINAL_STATUS
      raise Refused(f'invalid pipeline job inputs: input parameter {name} '
                    f'has type {kind}, which a run cannot set')
    described, fits = _VALUE_KINDS[kind]
    value = given[name]
    if not fits(value):
      raise Refused(f'invalid pipeline job inputs: input parameter {name} '
                    f'requires type {described}, but the parameter value '
                    f'{value!r} is not of {described} value type')
  extra = [name for name in given if name not in declared]
  if extra:
    raise Refused('invalid pipeline job inputs: parameter(s) provided are not '
                  f'required by pipeline: {", ".join(extra)}')


def check_max_concurrency(value) -> None:
  """api_converter.go toModelJob: 1..10; absent is 0 (int64 default)."""
  try:
    number = int(value if value is not None else 0)
  except (TypeError, ValueError) as e:
    raise Refused(f'invalid value for max_concurrency: {value!r}') from e
  low, high = MAX_CONCURRENCY
  if not low <= number <= high:
    raise Refused(f'Max concurrency of a recurring run must be at least {low} '
                  f'and at most {high}. Received {number}')


# robfig/cron v1.2.0 (KFP's go.mod) spec.go: (lowest, highest, names) of
# seconds, minutes, hours, day of month, month, day of week.
_CRON_BOUNDS = (
    (0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None),
    (1, 12, ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep',
             'oct', 'nov', 'dec')),
    (0, 6, ('sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat')),
)
_DESCRIPTORS = ('@yearly', '@annually', '@monthly', '@weekly', '@daily',
                '@midnight', '@hourly')
_GO_DURATION = re.compile(r'[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+)')


def check_cron(expression: str) -> None:
  """api_converter.go toModelJob: `cron.Parse` of robfig/cron v1.2.0.

  That parser (Second|Minute|Hour|Dom|Month|DowOptional|Descriptor) takes
  seconds first and 5 or 6 fields: with 5, day-of-week is `*`, so the
  crontab `0 3 * * 0` reads month 0 and is refused, while `0 3 * * 1` is
  taken as "second 0 of minute 3 of every hour in January" (this is why
  runners/kfp_validation.py refuses every 5-field expression itself).
  `@daily`-style descriptors and `@every <Go duration>` are accepted.

  Raises:
    Refused: with robfig's reason.
  """
  try:
    _parse_cron(expression)
  except ValueError as e:
    raise Refused('Schedule cron is not a supported format(https://godoc.org/'
                  f'github.com/robfig/cron). Error: {e}') from None


def _parse_cron(spec: str) -> None:
  if not spec:
    raise ValueError('Empty spec string')
  if spec.startswith('@'):
    if spec in _DESCRIPTORS:
      return
    if spec.startswith('@every '):
      if not _GO_DURATION.fullmatch(spec[len('@every '):]):
        raise ValueError(f'Failed to parse duration {spec}')
      return
    raise ValueError(f'Unrecognized descriptor: {spec}')
  fields = spec.split()
  if not 5 <= len(fields) <= 6:
    raise ValueError(f'Expected 5 to 6 fields, found {len(fields)}: {spec}')
  fields += ['*'] * (6 - len(fields))
  for field, (low, high, names) in zip(fields, _CRON_BOUNDS):
    for item in (i for i in field.split(',') if i):  # Go FieldsFunc
      _check_cron_range(item, low, high, names)


def _check_cron_range(expr: str, low: int, high: int,
                      names: Optional[Iterable[str]]) -> None:
  """One comma-separated item: `*`, `?`, a value or a range, `/step`."""
  range_and_step = expr.split('/')
  low_high = range_and_step[0].split('-')
  if low_high[0] in ('*', '?'):
    start, end = low, high
  else:
    start = _cron_number(low_high[0], low, names)
    if len(low_high) > 2:
      raise ValueError(f'Too many hyphens: {expr}')
    end = _cron_number(low_high[1], low, names) if len(low_high) == 2 else (
        start)
  step = 1
  if len(range_and_step) > 2:
    raise ValueError(f'Too many slashes: {expr}')
  if len(range_and_step) == 2:
    step = _cron_number(range_and_step[1], 0, None)
    if len(low_high) == 1:  # "N/step" runs from N to the maximum
      end = high
  if start < low:
    raise ValueError(f'Beginning of range ({start}) below minimum ({low}): '
                     f'{expr}')
  if end > high:
    raise ValueError(f'End of range ({end}) above maximum ({high}): {expr}')
  if start > end:
    raise ValueError(f'Beginning of range ({start}) beyond end of range '
                     f'({end}): {expr}')
  if step == 0:
    raise ValueError(f'Step of range should be a positive number: {expr}')


def _cron_number(token: str, low: int, names) -> int:
  """A value or a (case-insensitive) month/weekday name, as robfig reads it."""
  if names and token.lower() in names:
    return list(names).index(token.lower()) + low
  if not re.fullmatch(r'[+-]?[0-9]+', token):  # Go strconv.Atoi
    raise ValueError(f'Failed to parse int from {token}: strconv.Atoi: '
                     f'parsing "{token}": invalid syntax')
  number = int(token)
  if number < 0:
    raise ValueError(f'Negative number ({number}) not allowed: {token}')
  return number


def _one_line(value) -> str:
  return ' '.join(str(value).split())[:300]
