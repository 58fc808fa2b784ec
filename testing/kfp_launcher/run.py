"""Runs a compiled KFP v2 pipeline's tasks here, each one as open-source
Kubeflow Pipelines' v2 driver and launcher would start its container.

Test code, not an orchestrator. For every task of `root.dag`, once its
upstream tasks are done, driver.py resolves its executor input as KFP does;
then the container's own `command` + `args` run with the launcher's
placeholders replaced (`{{$}}`, `{{$.inputs.parameters['x']}}`, artifact
URIs, output files), only a leading `python`/`python3` replaced by this
environment's interpreter, with PYTHONPATH = the code folder as the image
sets it (optionally in a fork of a pre-imported interpreter, prewarm.py); the
ExecutorOutput it writes is recorded and fed downstream.

Not emulated (refused where the YAML would need it): trigger conditions,
iterators, nested DAGs, importers/resolvers, caching (every run is fresh),
`lifecycle.preCacheCheck` (ignored, as the open-source backend does), the
launcher's copies between the object store and /gcs, /s3, /minio (artifact
URIs here are local paths, which the real launcher refuses).
"""
from concurrent import futures
import dataclasses
import json
import os
import queue
import subprocess
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence
import uuid

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

from testing.kfp_launcher import prewarm as prewarm_lib
from testing.kfp_launcher.driver import Driver
from testing.kfp_launcher.driver import KfpError
from testing.kfp_launcher.driver import load_spec

_SUCCEEDED = pb.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.Value(
    'ALL_UPSTREAM_TASKS_SUCCEEDED')
_UNSPECIFIED_STRATEGY = 0


@dataclasses.dataclass
class TaskRun:
  name: str
  command: List[str]
  executor_input: Dict[str, Any]
  returncode: int
  seconds: float
  log: str  # path of the task's stdout+stderr
  output: Dict[str, Any]  # the ExecutorOutput the task wrote ({} if none)
  # output name -> RuntimeArtifact dict as recorded (and passed downstream)
  artifacts: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)


class LocalKfpRun:
  """One run of a compiled pipeline; `run()` returns {task: TaskRun}."""

  def __init__(self, spec_path: str, pipeline_root: str, work_dir: str,
               code_dir: str, parameters: Optional[Mapping[str, Any]] = None,
               run_id: Optional[str] = None, timeout: float = 900,
               env: Optional[Mapping[str, str]] = None,
               prewarm: bool = False,
               zygotes: Sequence['prewarm_lib.Zygote'] = ()):
    self.spec = load_spec(spec_path)
    self.deployment = pb.PipelineDeploymentConfig()
    json_format.ParseDict(json_format.MessageToDict(self.spec.deployment_spec),
                          self.deployment)
    self.run_id = run_id or str(uuid.uuid4())
    self.run_root = f'{pipeline_root.rstrip("/")}/{self.run_id}'
    self.work_dir, self.code_dir = work_dir, code_dir
    self.timeout, self.env = timeout, dict(env or {})
    # prewarm: `python -m` tasks run in forks of pre-imported interpreters
    # (prewarm.py), to save each task's ~20 s of imports.
    # `zygotes`: started earlier (e.g. while compiling), one per parallel
    # task; with prewarm and none given, run() starts its own.
    self.prewarm = prewarm or bool(zygotes)
    self._given_zygotes = list(zygotes)
    self._zygotes: 'queue.Queue[prewarm_lib.Zygote]' = queue.Queue()
    self.driver = Driver(self.spec, parameters or {}, self.run_id,
                         self.run_root, work_dir)
    self.parameters = self.driver.parameters  # the run's, defaults filled
    self.tasks: Dict[str, TaskRun] = {}

  def order(self) -> List[str]:
    return self.driver.order()

  def _may_start(self, name: str) -> bool:
    """triggerPolicy: False (skip) if an upstream task failed and the
    strategy needs them all to succeed; conditions are refused."""
    task = self.spec.root.dag.tasks[name]
    policy = task.trigger_policy
    if policy.condition:
      raise KfpError(f'{name}: trigger conditions are not emulated '
                     f'({policy.condition!r})')
    failed = [n for n in self.driver.needs()[name]
              if n not in self.tasks or self.tasks[n].returncode != 0]
    return not failed or policy.strategy not in (_UNSPECIFIED_STRATEGY,
                                                 _SUCCEEDED)

  def run(self, parallel: int = 1) -> Dict[str, TaskRun]:
    """Runs every task once its upstream tasks are done, up to `parallel`
    at a time (KFP starts every ready task at once); raises KfpError naming
    the failed tasks and their logs."""
    needs, pending, skipped = self.driver.needs(), set(self.order()), []
    running = {}
    try:
      with futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        if self.prewarm:
          os.makedirs(self.work_dir, exist_ok=True)
          for zygote in self._given_zygotes or [
              self._zygote(i) for i in range(parallel)]:
            self._zygotes.put(zygote)
        while pending or running:
          done = set(self.tasks) | set(skipped)
          for name in sorted(n for n in pending if needs[n] <= done):
            if len(running) >= parallel:
              break
            pending.discard(name)
            if self._may_start(name):
              running[pool.submit(self._run_task, name)] = name
            else:
              skipped.append(name)
          if not running:
            if pending and not any(needs[n] <= set(self.tasks) | set(skipped)
                                   for n in pending):
              raise KfpError(f'cannot schedule {sorted(pending)}')
            continue
          finished, _ = futures.wait(running,
                                     return_when=futures.FIRST_COMPLETED)
          for future in finished:
            self.tasks[running.pop(future)] = future.result()
    finally:
      while not self._zygotes.empty():
        zygote = self._zygotes.get()
        if zygote not in self._given_zygotes:
          zygote.close()
    failed = [t for t in self.tasks.values() if t.returncode != 0]
    if failed:
      raise KfpError('; '.join(
          f'task {t.name} failed (exit {t.returncode}), log {t.log}:\n'
          + _tail(t.log) for t in failed) + f'\nnot started: {skipped}')
    return self.tasks

  def _zygote(self, index: int) -> 'prewarm_lib.Zygote':
    modules = []
    for executor in self.deployment.executors.values():
      call = prewarm_lib.module_call(
          [sys.executable if c in ('python', 'python3') else c
           for c in executor.container.command] or ['-'])
      args = list(executor.container.args)
      if call:
        modules.append(call[0])
      if '--executor_class_path' in args:
        modules.append(args[args.index('--executor_class_path') + 1]
                       .rsplit('.', 1)[0])
    return prewarm_lib.Zygote(
        modules, self.code_dir,
        os.path.join(self.work_dir, f'zygote-{index}.log'), self._env(
            os.path.join(self.work_dir, 'tmp')))

  def _env(self, tmp: str) -> Dict[str, str]:
    os.makedirs(tmp, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=self.code_dir, PYTHONUNBUFFERED='1',
               TMPDIR=tmp)
    env.update(self.env)
    return env

  def command(self, name: str, executor_input: pb.ExecutorInput) -> List[str]:
    """The container's command + args with the launcher's placeholders."""
    task = self.spec.root.dag.tasks[name]
    label = self.spec.components[task.component_ref.name].executor_label
    executor = self.deployment.executors[label]
    if not executor.HasField('container'):
      raise KfpError(f'{name}: only container executors are emulated '
                     f'({executor.WhichOneof("spec")})')
    container = executor.container
    replacements = {'{{$}}': json_format.MessageToJson(
        executor_input, indent=None)}
    for key, value in executor_input.inputs.parameter_values.items():
      kind = value.WhichOneof('kind')
      text = {'string_value': lambda: value.string_value,
              'number_value': lambda: _number_text(value.number_value),
              'bool_value': lambda: str(value.bool_value).lower()}.get(
                  kind, lambda: json.dumps(json_format.MessageToDict(value)))()
      replacements[f"{{{{$.inputs.parameters['{key}']}}}}"] = text
    for key, artifacts in executor_input.inputs.artifacts.items():
      replacements[f"{{{{$.inputs.artifacts['{key}'].uri}}}}"] = (
          artifacts.artifacts[0].uri)
    for key, artifacts in executor_input.outputs.artifacts.items():
      replacements[f"{{{{$.outputs.artifacts['{key}'].uri}}}}"] = (
          artifacts.artifacts[0].uri)
    for key, parameter in executor_input.outputs.parameters.items():
      replacements[f"{{{{$.outputs.parameters['{key}'].output_file}}}}"] = (
          parameter.output_file)
    compiled = []
    for arg in list(container.command) + list(container.args):
      for placeholder, text in replacements.items():
        arg = arg.replace(placeholder, text)
      if '{{$' in arg:
        raise KfpError(f'{name}: placeholder not emulated in {arg[:200]!r}')
      compiled.append(arg)
    if compiled and compiled[0] in ('python', 'python3'):
      compiled[0] = sys.executable
    return compiled

  def _run_task(self, name: str) -> TaskRun:
    executor_input = self.driver.executor_input(name)
    command = self.command(name, executor_input)
    scratch = os.path.join(self.work_dir, name)
    for parameter in executor_input.outputs.parameters.values():
      os.makedirs(os.path.dirname(parameter.output_file), exist_ok=True)
    os.makedirs(scratch, exist_ok=True)
    log = os.path.join(scratch, 'log.txt')
    env = self._env(os.path.join(scratch, 'tmp'))
    start = time.monotonic()
    call = prewarm_lib.module_call(command) if self.prewarm else None
    if call:
      zygote = self._zygotes.get()
      try:
        returncode = zygote.run(*call, cwd=self.code_dir, env=env, log=log)
      finally:
        self._zygotes.put(zygote)
    else:
      with open(log, 'w') as out:
        returncode = subprocess.run(command, cwd=self.code_dir, env=env,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    timeout=self.timeout).returncode
    seconds = time.monotonic() - start
    message = pb.ExecutorOutput()
    if os.path.exists(executor_input.outputs.output_file):
      with open(executor_input.outputs.output_file) as f:
        json_format.Parse(f.read(), message)  # protojson.Unmarshal: strict
    output = json_format.MessageToDict(message)
    run = TaskRun(name, command, json_format.MessageToDict(executor_input),
                  returncode, seconds, log, output)
    if returncode == 0:
      run.artifacts = self.driver.record_outputs(name, executor_input,
                                                 message)
    return run

def _number_text(number: float) -> str:
  """Go's strconv.FormatFloat(f, 'f', -1, 64)."""
  return str(int(number)) if number.is_integer() else repr(number)


def _tail(path: str, lines: int = 40) -> str:
  with open(path, errors='replace') as f:
    return ''.join(f.readlines()[-lines:])
