"""The local runner's command line: errors a user sees before any stage runs."""
import base64
import json
import os
import subprocess
import sys
import time

import pytest

from testing.support import REPO
from testing.support import run_cli


def test_empty_data_dir_without_credentials_explains_what_to_do(tmp_path):
  home = tmp_path / 'home'
  home.mkdir()
  env = {'HOME': str(home), 'KAGGLE_USERNAME': '', 'KAGGLE_KEY': '',
         'KAGGLE_CONFIG_DIR': str(home / 'nothing-here')}
  result = run_cli(['local_runner.py', '--data-dir', tmp_path / 'data',
                    '--output-dir', tmp_path / 'out'], env=env, timeout=120)
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr + result.stdout
  message = result.stderr
  for needed in ('kaggle.json', 'KAGGLE_USERNAME', 'KAGGLE_KEY', 'DATA_DIR'):
    assert needed in message, needed
  assert not (tmp_path / 'out').exists(), 'nothing runs without data'


def test_unknown_stage_is_refused_with_the_choices():
  result = run_cli(['local_runner.py', '--stop-after', 'everything'],
                   timeout=120)
  assert result.returncode == 2
  assert 'invalid choice' in result.stderr and 'validate' in result.stderr


def test_every_preflight_problem_is_reported_at_once(tmp_path):
  env = {'HOME': str(tmp_path), 'KAGGLE_USERNAME': '', 'KAGGLE_KEY': '',
         'KAGGLE_CONFIG_DIR': str(tmp_path / 'none')}
  started = time.monotonic()
  result = run_cli(['local_runner.py', '--data-dir', tmp_path / 'data',
                    '--output-dir', tmp_path / 'out', '--resnet-weights',
                    tmp_path / 'missing.h5', '--epochs', '0'],
                   env=env, timeout=120)
  seconds = time.monotonic() - started
  assert result.returncode == 2
  for reason in ('kaggle.json', 'missing.h5', 'epochs is too small'):
    assert reason in result.stderr, (reason, result.stderr[-3000:])
  assert result.stderr.count('error: ') == 3
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'out').exists()
  # "within a second": the answer comes before TensorFlow is imported (the
  # process start itself is part of what is timed).
  assert seconds < 2, seconds


# Put first on the runner's PYTHONPATH: no host name resolves and no TCP
# connection opens, as on a machine without internet, so the download fails
# at once whatever this machine can reach.
_OFFLINE = """
import socket
def _refuse(*args, **kwargs):
  raise OSError('network disabled by the test')
socket.getaddrinfo = _refuse
_connect = socket.socket.connect
def _connect_locally(self, address):
  if self.family in (socket.AF_INET, socket.AF_INET6):
    _refuse()
  return _connect(self, address)
socket.socket.connect = _connect_locally
"""
_ENV_KEY = 'envkey-7f3e9c1d-do-not-print'
_FILE_KEY = 'filekey-41b8a2e6-do-not-print'


@pytest.mark.parametrize('source', ['environment', 'kaggle.json'])
def test_make_run_never_shows_or_writes_the_kaggle_key(tmp_path, source):
  """`make run` with a missing DATA_DIR, fake Kaggle keys and no network:
  the download fails, and no key is in the output or in any file written
  under the temporary HOME, DATA_DIR and OUTPUT_DIR (all in tmp_path)."""
  home = tmp_path / 'home'
  (home / '.kaggle').mkdir(parents=True)
  kaggle_json = home / '.kaggle' / 'kaggle.json'
  kaggle_json.write_text(json.dumps({'username': 'fileuser',
                                     'key': _FILE_KEY}))
  kaggle_json.chmod(0o600)
  (tmp_path / 'offline').mkdir()
  (tmp_path / 'offline' / 'sitecustomize.py').write_text(_OFFLINE)
  # Nothing of this machine's Kaggle or make setup leaks in.
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(('KAGGLE_', 'MAKE', 'MFLAGS', 'XDG_'))}
  env.update(HOME=str(home), PYTHONPATH=str(tmp_path / 'offline'))
  credentials = [('fileuser', _FILE_KEY)]
  if source == 'environment':
    env.update(KAGGLE_USERNAME='envuser', KAGGLE_KEY=_ENV_KEY)
    credentials.append(('envuser', _ENV_KEY))
  # Each key as it is, and as an HTTP basic-auth header would carry it.
  secrets = [key.encode() for _, key in credentials] + [
      base64.b64encode(f'{user}:{key}'.encode()) for user, key in credentials]
  # -o: never rebuild the environment here; PY: the interpreter under test.
  result = subprocess.run(
      ['make', '-o', '.venv/.synced', 'run', f'PY={sys.executable}',
       f'DATA_DIR={tmp_path / "data"}', f'OUTPUT_DIR={tmp_path / "out"}',
       'RUN_ARGS=--resnet-weights none'],
      cwd=REPO, env=env, capture_output=True, timeout=60)
  stderr = result.stderr.decode(errors='replace')
  assert result.returncode != 0
  # It failed where it should: at the download, refused by the shim above.
  assert 'Downloading the Kaggle dataset' in stderr, stderr[-3000:]
  assert 'network disabled by the test' in stderr, stderr[-3000:]
  assert 'Traceback' not in stderr
  for secret in secrets:
    assert secret not in result.stdout + result.stderr, secret
  written = [path for path in tmp_path.rglob('*')
             if path.is_file() and path != kaggle_json]
  for path in written:
    content = path.read_bytes()
    for secret in secrets:
      assert secret not in content, (path, secret)
  assert kaggle_json.read_bytes().count(_FILE_KEY.encode()) == 1
  assert not (tmp_path / 'out').exists()


def test_a_runner_that_cannot_run_the_stages_is_refused_before_any(tmp_path):
  result = run_cli(['local_runner.py', '--data-dir', tmp_path / 'data',
                    '--output-dir', tmp_path / 'out',
                    '--beam-arg=--runner=apache_beam.runners.dask.'
                    'dask_runner.DaskRunner'], timeout=120)
  assert result.returncode == 2
  assert 'DaskRunner' in result.stderr and 'side inputs' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('package', ['tensorflow', 'tfx', 'apache_beam',
                                     'tensorflow_model_analysis'])
def test_the_environment_holds_bytecode_so_a_run_starts_fast(package):
  """make env compiles bytecode once (Makefile): without it each process
  compiles these packages from source, ~10 s per start (README)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  origin = importlib.util.find_spec(package).origin
  assert os.path.exists(importlib.util.cache_from_source(origin)), origin
