"""One interpreter start-up shared by many `python -m MODULE ARGS...` runs.

Importing TFX's container entrypoint (TensorFlow, Beam, TFMA) costs ~20 s of
CPU, more than most of this pipeline's tasks spend working. A `Zygote` is a
child interpreter that imports the entrypoint modules once (nothing is run),
then, per request, forks: the fork takes the task's environment, working
folder and log file, sets `sys.argv` to the task's own arguments and runs the
module as `__main__` (runpy, as `python -m` does), and exits with its status.
Command, arguments, executor input and environment are the task's; only the
import is shared.
"""
import json
import os
import subprocess
import sys
from typing import List, Mapping, Optional, Sequence

# Runs in the zygote process: argv[1] = JSON list of modules to import.
_ZYGOTE = r'''
import importlib, json, os, runpy, sys, tempfile, traceback
reply = os.fdopen(os.dup(1), 'w')
os.dup2(2, 1)  # stray prints of the imports go to the zygote's log
for module in json.loads(sys.argv[1]):
  importlib.import_module(module)
reply.write('ready\n'); reply.flush()
for line in sys.stdin:
  request = json.loads(line)
  sys.stdout.flush(); sys.stderr.flush()
  pid = os.fork()
  if pid == 0:
    code = 1
    try:
      log = os.open(request['log'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
      os.dup2(log, 1); os.dup2(log, 2)
      os.chdir(request['cwd'])
      os.environ.clear(); os.environ.update(request['env'])
      tempfile.tempdir = None
      sys.argv = [request['module']] + request['args']
      try:
        runpy.run_module(request['module'], run_name='__main__',
                         alter_sys=True)
        code = 0
      except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None
                                                       else 1)
    except BaseException:
      traceback.print_exc()
    finally:
      sys.stdout.flush(); sys.stderr.flush()
      os._exit(code)
  _, status = os.waitpid(pid, 0)
  reply.write(json.dumps(os.waitstatus_to_exitcode(status)) + '\n')
  reply.flush()
'''


# What every TFX task imports first: TensorFlow, Beam, TFMA (the evaluator).
TFX_ENTRYPOINT = 'tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor'


def module_call(command: Sequence[str]):
  """(module, args) if `command` is `<python> -m MODULE ARGS...`, else None."""
  if len(command) >= 3 and command[0] == sys.executable and command[1] == '-m':
    return command[2], list(command[3:])
  return None


class Zygote:
  """A pre-imported interpreter that runs one module call at a time."""

  def __init__(self, modules: Sequence[str], code_dir: str, log: str,
               env: Optional[Mapping[str, str]] = None):
    """Starts importing `modules` (with PYTHONPATH = code_dir, as the tasks
    will have it) and returns at once; the first run() waits for it."""
    self.code_dir, self._log_path = code_dir, log
    self._log = open(log, 'w')
    self._process = subprocess.Popen(
        [sys.executable, '-c', _ZYGOTE, json.dumps(sorted(set(modules)))],
        cwd=code_dir, env=dict(env or os.environ, PYTHONPATH=code_dir),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
        text=True)
    self._ready = False

  def run(self, module: str, args: List[str], cwd: str,
          env: Mapping[str, str], log: str) -> int:
    """Exit status of `python -m module args...` (-N: killed by signal N)."""
    if not self._ready:
      if self._process.stdout.readline().strip() != 'ready':
        raise RuntimeError(f'the zygote did not start; see {self._log_path}')
      self._ready = True
    self._process.stdin.write(json.dumps(
        {'module': module, 'args': args, 'cwd': cwd, 'env': dict(env),
         'log': log}) + '\n')
    self._process.stdin.flush()
    answer = self._process.stdout.readline()
    if not answer:
      raise RuntimeError('the zygote died')
    return int(json.loads(answer))

  def close(self) -> None:
    self._process.stdin.close()
    self._process.wait(timeout=60)
    self._log.close()
