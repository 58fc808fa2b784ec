"""Tests of trainer.resnet_weights: where ResNet50's weights come from."""
# pylint: disable=protected-access
import os
import subprocess
import sys

import pytest

from testing.support import REPO
from trainer import resnet_weights

ALTERNATIVES = ('--resnet-weights none',
                '--architectures baseline_cnn,improved_cnn')


@pytest.fixture
def empty_keras_home(tmp_path, monkeypatch):
  home = tmp_path / 'keras_home'
  home.mkdir()
  monkeypatch.setenv('KERAS_HOME', str(home))
  return home


@pytest.fixture
def offline(monkeypatch):
  hosts = []

  def can_reach(host, timeout=3.0):
    del timeout
    hosts.append(host)
    return False

  monkeypatch.setattr(resnet_weights, '_can_reach', can_reach)
  return hosts


@pytest.mark.parametrize('spec', ['none', 'None', 'NONE'])
def test_none_means_random_initialisation(spec, offline):
  assert resnet_weights.resolve(spec) is None
  assert not offline  # no network check for 'none'


def test_existing_file_gives_its_absolute_path(tmp_path, monkeypatch,
                                               offline):
  weights = tmp_path / 'weights' / resnet_weights.NOTOP_FILE
  weights.parent.mkdir()
  weights.write_bytes(b'not really h5, but it exists')
  monkeypatch.chdir(tmp_path)
  relative = os.path.join('weights', resnet_weights.NOTOP_FILE)
  for spec in (str(weights), relative):
    resolved = resnet_weights.resolve(spec)
    assert os.path.isabs(resolved)
    assert resolved == str(weights)
  assert not offline


def test_missing_file_names_the_path_and_the_alternatives(tmp_path, offline):
  missing = tmp_path / 'nowhere' / 'resnet.h5'
  with pytest.raises(resnet_weights.WeightsUnavailableError) as error:
    resnet_weights.resolve(str(missing))
  message = str(error.value)
  assert str(missing) in message
  for alternative in ALTERNATIVES:
    assert alternative in message
  assert not offline


def test_a_directory_is_not_a_weights_file(tmp_path):
  with pytest.raises(resnet_weights.WeightsUnavailableError, match=str(
      tmp_path)):
    resnet_weights.resolve(str(tmp_path))


def test_error_is_a_runtime_error():
  assert issubclass(resnet_weights.WeightsUnavailableError, RuntimeError)


def test_keras_cache_path_follows_keras_home(empty_keras_home):
  assert resnet_weights.keras_cache_path() == str(
      empty_keras_home / 'models' / resnet_weights.NOTOP_FILE)


def test_keras_cache_path_defaults_to_home_dot_keras(tmp_path, monkeypatch):
  monkeypatch.delenv('KERAS_HOME', raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))
  assert resnet_weights.keras_cache_path() == str(
      tmp_path / '.keras' / 'models' / resnet_weights.NOTOP_FILE)


@pytest.mark.parametrize('spec', ['imagenet', 'ImageNet'])
def test_imagenet_offline_and_not_cached_fails_with_the_cache_path(
    spec, empty_keras_home, offline):
  with pytest.raises(resnet_weights.WeightsUnavailableError) as error:
    resnet_weights.resolve(spec)
  message = str(error.value)
  cache = str(empty_keras_home / 'models' / resnet_weights.NOTOP_FILE)
  assert cache in message
  assert resnet_weights.DOWNLOAD_HOST in message
  for alternative in ALTERNATIVES:
    assert alternative in message
  assert offline == [resnet_weights.DOWNLOAD_HOST]


def test_imagenet_in_the_keras_cache_needs_no_network(empty_keras_home,
                                                      offline):
  models_dir = empty_keras_home / 'models'
  models_dir.mkdir()
  (models_dir / resnet_weights.NOTOP_FILE).write_bytes(b'cached')
  assert resnet_weights.resolve('imagenet') == resnet_weights.IMAGENET
  assert not offline


def test_imagenet_reachable_download_host_is_enough(empty_keras_home,
                                                    monkeypatch):
  monkeypatch.setattr(resnet_weights, '_can_reach', lambda host: True)
  assert resnet_weights.resolve('imagenet') == resnet_weights.IMAGENET


def test_can_reach_is_false_for_an_unresolvable_host():
  assert not resnet_weights._can_reach('no-such-host.invalid', timeout=1.0)


def test_module_imports_no_tensorflow():
  code = ('import sys, trainer.resnet_weights; '
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
          "assert 'keras' not in sys.modules, 'keras imported'; print('ok')")
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == 'ok'
