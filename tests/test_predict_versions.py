"""predict.py on a serving folder whose newest versions are broken (issue 11
§2): it names each broken version on stderr, with its reason, and answers
with the newest version that loads; with none it exits 2 naming them all.

Versions are tiny real SavedModels (testing/serving_folders) answering their
own probability, so the output shows which one ran. In process: predict's
CLI subprocess is covered by tests/test_predict.py.
"""
import json

import numpy as np
import pytest
import tensorflow as tf

import predict
from testing import serving_folders

GOOD = '1796000000'
BROKEN = {'1797000000': 'no_variables', '1797000005': 'truncated_data',
          '1797000009': 'a_file'}


@pytest.fixture()
def output_dir(tmp_path):
  serving = tmp_path / 'output' / 'serving_model'
  serving.mkdir(parents=True)
  serving_folders.tiny_saved_model(serving / '1700000000', value=0.1)
  serving_folders.tiny_saved_model(serving / GOOD, value=0.75)
  for name, how in BROKEN.items():
    serving_folders.break_version(serving / name, how)
  return tmp_path / 'output'


@pytest.fixture()
def image(tmp_path):
  pixels = np.full([80, 70, 1], 128, np.uint8)
  path = tmp_path / 'x.png'
  path.write_bytes(tf.io.encode_png(pixels).numpy())
  return path


def _check_named(stderr, serving):
  for name in BROKEN:
    lines = [line for line in stderr.splitlines()
             if f'skipping version {name} ({serving / name})' in line]
    assert len(lines) == 1, stderr
  assert 'its variables are missing' in stderr
  assert 'does not load' in stderr  # the truncated variables
  assert 'not a folder' in stderr
  assert 'Traceback' not in stderr


def test_find_model_skips_broken_versions_and_loads_once(output_dir, capsys,
                                                         monkeypatch):
  serving = output_dir / 'serving_model'
  path = predict.find_model(None, str(output_dir))
  assert path == str(serving / GOOD)
  stderr = capsys.readouterr().err
  _check_named(stderr, serving)
  assert f'using version {GOOD}' in stderr

  def no_second_load(*_):
    raise AssertionError('loaded twice')

  monkeypatch.setattr(tf.saved_model, 'load', no_second_load)
  _, _, threshold = predict.load_model(path)
  assert threshold == 0.5


def test_main_answers_with_the_newest_good_version(output_dir, image, capsys):
  serving = output_dir / 'serving_model'
  before = serving_folders.digests(serving)
  assert predict.main(['--output-dir', str(output_dir), str(image)]) == 0
  captured = capsys.readouterr()
  line = json.loads(captured.out)
  assert line['model'] == str(serving / GOOD)
  assert line['pneumonia_probability'] == pytest.approx(0.75)
  assert line['label'] == 'PNEUMONIA'
  _check_named(captured.err, serving)
  assert serving_folders.digests(serving) == before  # only read


def test_model_option_with_a_folder_of_versions_falls_back_too(output_dir,
                                                               capsys):
  serving = output_dir / 'serving_model'
  assert predict.find_model(str(serving), 'unused') == str(serving / GOOD)
  _check_named(capsys.readouterr().err, serving)


def test_only_broken_versions_exit_2_naming_them(tmp_path, image, capsys):
  serving = tmp_path / 'output' / 'serving_model'
  serving.mkdir(parents=True)
  for name, how in BROKEN.items():
    serving_folders.break_version(serving / name, how)
  assert predict.main(['--output-dir', str(tmp_path / 'output'),
                       str(image)]) == predict.EXIT_NO_MODEL
  captured = capsys.readouterr()
  assert captured.out == ''
  _check_named(captured.err, serving)
  assert '3 numeric entries there, none usable' in captured.err
  assert 'make run' in captured.err
