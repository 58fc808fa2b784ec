"""The local runner's command line: errors a user sees before any stage runs."""
import time

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
