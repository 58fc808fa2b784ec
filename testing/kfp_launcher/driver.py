"""What KFP v2's API server, driver and launcher do around a task, here.

From kubeflow/pipelines backend/src/v2 (apiserver template validation,
driver/resolve.go, component/launcher_v2.go, metadata/converter.go), with a
dict for MLMD:

- run parameters: `root.inputDefinitions` defaults, overridden per run and
  type-checked as the API server does (an unspecified `parameterType` is
  refused);
- a task's input parameters: `componentInputParameter` (a run parameter),
  `runtimeValue.constant` (the deprecated `constantValue` is refused with the
  driver's own "not implemented" error) and `taskOutputParameter`; then the
  driver's type check against the component's `inputDefinitions`
  (`parameterType`; the deprecated `type` field is not read);
- input artifacts: the producer's output as recorded in MLMD: the URI, the
  executor's metadata stored as custom properties (numbers as doubles, bools
  as 0/1, lists and structs wrapped, `display_name` added) and read back, the
  artifact id as its name, the producer's output schema as its type;
- outputs: `<run root>/<task>/<output>` URIs, the output-metadata file and
  output parameter files in the task's scratch folder (the pod's /tmp);
- after the task, the launcher's merge of the ExecutorOutput (URI, metadata)
  into the output artifacts before recording them.
"""
import json
import os
import threading
from typing import Any, Dict, List, Mapping

from google.protobuf import json_format
from google.protobuf import struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2 as pb
import yaml

_PARAMETER_TYPES = pb.ParameterType.ParameterTypeEnum


class KfpError(RuntimeError):
  """What the driver or the API server would refuse, or a failed task."""


def load_spec(path: str) -> pb.PipelineSpec:
  """The compiled YAML as kfp's PipelineSpec proto (unknown fields refused)."""
  with open(path) as f:
    documents = [d for d in yaml.safe_load_all(f) if d]
  spec = pb.PipelineSpec()
  json_format.ParseDict(documents[0], spec)
  return spec


def _value(python_value) -> struct_pb2.Value:
  value = struct_pb2.Value()
  if isinstance(python_value, struct_pb2.Value):
    value.CopyFrom(python_value)
  else:
    json_format.ParseDict(python_value, value)
  return value


def _check_type(name: str, value: struct_pb2.Value, parameter_type: int,
                where: str) -> struct_pb2.Value:
  """The driver's handleParamTypeValidationAndConversion for one value."""
  kind = value.WhichOneof('kind')
  if parameter_type == _PARAMETER_TYPES.STRING:
    if kind != 'string_value':  # the driver converts to JSON text
      return _value(json.dumps(json_format.MessageToDict(value)))
    return value
  expected = {'number_value': (_PARAMETER_TYPES.NUMBER_DOUBLE,
                               _PARAMETER_TYPES.NUMBER_INTEGER),
              'bool_value': (_PARAMETER_TYPES.BOOLEAN,),
              'list_value': (_PARAMETER_TYPES.LIST,),
              'struct_value': (_PARAMETER_TYPES.STRUCT,),
              'string_value': ()}.get(kind)
  if expected is None:
    raise KfpError(f'{where}: got null for input parameter {name!r}')
  if parameter_type not in expected:
    raise KfpError(
        f'{where}: input parameter {name!r} type mismatch: expect '
        f'{_PARAMETER_TYPES.Name(parameter_type)}, got {kind}')
  return value


def _to_mlmd_and_back(metadata: struct_pb2.Struct,
                      output_name: str) -> struct_pb2.Struct:
  """Metadata -> MLMD custom properties -> metadata, as KFP stores them."""
  result = struct_pb2.Struct()
  for key, value in metadata.fields.items():
    kind = value.WhichOneof('kind')
    if kind == 'bool_value':
      result.fields[key].number_value = float(value.bool_value)
    elif kind == 'list_value':
      result.fields[key].struct_value.fields['list'].CopyFrom(value)
    elif kind == 'struct_value':
      result.fields[key].struct_value.fields['struct'].CopyFrom(value)
    elif kind in ('string_value', 'number_value'):
      result.fields[key].CopyFrom(value)
    else:
      raise KfpError(f'unknown/unsupported value type {kind} in metadata '
                     f'{key!r} of output {output_name!r}')
  if 'display_name' not in result.fields:
    result.fields['display_name'].string_value = output_name
  return result


class Driver:
  """Inputs and outputs of each task of one run, as KFP resolves them."""

  def __init__(self, spec: pb.PipelineSpec, overrides: Mapping[str, Any],
               run_id: str, run_root: str, work_dir: str):
    self.spec, self.run_id, self.run_root = spec, run_id, run_root
    self.work_dir = work_dir
    self.parameters = self._run_parameters(dict(overrides))
    # task -> {output name: RuntimeArtifact dict as recorded}; output params
    self.outputs: Dict[str, Dict[str, Dict[str, Any]]] = {}
    self.output_parameters: Dict[str, Dict[str, Any]] = {}
    self._artifact_ids: Dict[str, int] = {}
    self._lock = threading.Lock()

  def _run_parameters(self, overrides) -> Dict[str, struct_pb2.Value]:
    """The API server's validatePipelineJobInputs, then defaults filled."""
    declared = self.spec.root.input_definitions.parameters
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
      raise KfpError(f'unknown run parameters {unknown}')
    values = {}
    for name, spec in declared.items():
      if name in overrides:
        if spec.parameter_type == _PARAMETER_TYPES.PARAMETER_TYPE_ENUM_UNSPECIFIED:
          raise KfpError(f'input parameter {name} has unspecified type')
        value = _value(overrides[name])
        _check_type(name, value, spec.parameter_type, 'run')
        values[name] = value
      elif spec.HasField('default_value'):
        values[name] = spec.default_value
      elif not spec.is_optional:
        raise KfpError(f'parameter {name} is not optional, yet has neither '
                       'default value nor user provided value')
    return values

  def order(self) -> List[str]:
    """Tasks in a dependency order (ties by name)."""
    tasks, needs = self.spec.root.dag.tasks, self.needs()
    order, done = [], set()
    while len(order) < len(tasks):
      ready = sorted(n for n in tasks if n not in done and needs[n] <= done)
      if not ready:
        raise KfpError(f'dependency cycle among {sorted(set(tasks) - done)}')
      order.append(ready[0])
      done.add(ready[0])
    return order

  def needs(self) -> Dict[str, set]:
    """Each task's upstream tasks (dependentTasks and data producers)."""
    needs = {}
    for name, task in self.spec.root.dag.tasks.items():
      needs[name] = set(task.dependent_tasks)
      for spec in task.inputs.artifacts.values():
        if spec.HasField('task_output_artifact'):
          needs[name].add(spec.task_output_artifact.producer_task)
      for spec in task.inputs.parameters.values():
        if spec.HasField('task_output_parameter'):
          needs[name].add(spec.task_output_parameter.producer_task)
    return needs

  def _input_parameter(self, name, spec, where) -> struct_pb2.Value:
    kind = spec.WhichOneof('kind')
    if kind == 'component_input_parameter':
      if spec.component_input_parameter not in self.parameters:
        raise KfpError(f'{where}: parent DAG does not have input parameter '
                       f'{spec.component_input_parameter}')
      return self.parameters[spec.component_input_parameter]
    if kind == 'runtime_value':
      if spec.runtime_value.WhichOneof('value') != 'constant':
        raise KfpError(
            f'{where}: parameter {name!r}: param runtime value spec of type '
            '*pipelinespec.ValueOrRuntimeParameter_ConstantValue not '
            'implemented (the driver reads only runtimeValue.constant)')
      value = spec.runtime_value.constant
      special = {'{{$.pipeline_job_name}}': self.run_id,
                 '{{$.pipeline_job_resource_name}}': self.run_id,
                 '{{$.pipeline_job_uuid}}': self.run_id,
                 '{{$.pipeline_task_name}}': where}
      if value.WhichOneof('kind') == 'string_value' and (
          value.string_value in special):
        return _value(special[value.string_value])
      return value
    if kind == 'task_output_parameter':
      producer = spec.task_output_parameter
      values = self.output_parameters.get(producer.producer_task, {})
      if producer.output_parameter_key not in values:
        raise KfpError(f'{where}: {producer.producer_task} has no output '
                       f'parameter {producer.output_parameter_key}')
      return _value(values[producer.output_parameter_key])
    raise KfpError(f'{where}: parameter spec of type {kind} not implemented')

  def _input_artifact(self, name, spec, where) -> pb.ArtifactList:
    if not spec.HasField('task_output_artifact'):
      raise KfpError(f'{where}: artifact {name!r}: only taskOutputArtifact '
                     'is emulated')
    producer = spec.task_output_artifact
    recorded = self.outputs.get(producer.producer_task, {}).get(
        producer.output_artifact_key)
    if recorded is None:
      raise KfpError(f'{where}: cannot find output artifact key '
                     f'{producer.output_artifact_key!r} in producer task '
                     f'{producer.producer_task!r}')
    artifact = pb.RuntimeArtifact()
    json_format.ParseDict(recorded, artifact)
    return pb.ArtifactList(artifacts=[artifact])

  def executor_input(self, name: str) -> pb.ExecutorInput:
    """What the driver resolves for task `name` (upstream tasks done)."""
    task = self.spec.root.dag.tasks[name]
    component = self.spec.components[task.component_ref.name]
    if task.HasField('parameter_iterator') or task.HasField(
        'artifact_iterator'):
      raise KfpError(f'{name}: iterators are not emulated')
    executor_input = pb.ExecutorInput()
    inputs = executor_input.inputs
    for key, spec in task.inputs.parameters.items():
      inputs.parameter_values[key].CopyFrom(
          self._input_parameter(key, spec, name))
    for key, spec in task.inputs.artifacts.items():
      inputs.artifacts[key].CopyFrom(self._input_artifact(key, spec, name))
    for key, spec in component.input_definitions.parameters.items():
      if key not in inputs.parameter_values:
        if spec.is_optional:
          continue
        if not spec.HasField('default_value'):
          raise KfpError(f'{name}: neither value nor default value provided '
                         f'for non-optional parameter {key!r}')
        inputs.parameter_values[key].CopyFrom(spec.default_value)
      inputs.parameter_values[key].CopyFrom(_check_type(
          key, inputs.parameter_values[key], spec.parameter_type, name))
    scratch = os.path.join(self.work_dir, name)
    outputs = executor_input.outputs
    for key, spec in component.output_definitions.artifacts.items():
      outputs.artifacts[key].artifacts.add(
          uri=f'{self.run_root}/{name}/{key}', type=spec.artifact_type,
          metadata=spec.metadata)
    for key in component.output_definitions.parameters:
      outputs.parameters[key].output_file = os.path.join(
          scratch, 'tmp', 'kfp', 'outputs', key)
    outputs.output_file = os.path.join(
        scratch, 'tmp', 'kfp_outputs', 'output_metadata.json')
    return executor_input

  def record_outputs(self, name: str, executor_input: pb.ExecutorInput,
                     executor_output: pb.ExecutorOutput):
    """The launcher's merge, then MLMD's record-and-read-back; returns
    {output name: RuntimeArtifact dict} as downstream tasks will get it."""
    recorded = {}
    for key, artifacts in executor_input.outputs.artifacts.items():
      artifact = pb.RuntimeArtifact()
      artifact.CopyFrom(artifacts.artifacts[0])
      written = executor_output.artifacts.get(key)
      if written is not None and written.artifacts:
        if written.artifacts[0].uri:
          artifact.uri = written.artifacts[0].uri
        for field, value in written.artifacts[0].metadata.fields.items():
          artifact.metadata.fields[field].CopyFrom(value)
      with self._lock:  # MLMD's artifact id
        self._artifact_ids[artifact.uri] = len(self._artifact_ids) + 1
      back = pb.RuntimeArtifact(
          name=str(self._artifact_ids[artifact.uri]), uri=artifact.uri,
          metadata=_to_mlmd_and_back(artifact.metadata, key))
      # GetOutputArtifactsByExecutionId: the schema recorded = the type's
      # instance schema ("title: <schemaTitle>" if it had a title).
      if artifact.type.WhichOneof('kind') == 'schema_title':
        back.type.instance_schema = f'title: {artifact.type.schema_title}'
      else:
        back.type.instance_schema = artifact.type.instance_schema
      recorded[key] = json_format.MessageToDict(back)
    with self._lock:
      self.outputs[name] = recorded
      self.output_parameters[name] = json_format.MessageToDict(
          executor_output).get('parameterValues', {})
    return recorded
