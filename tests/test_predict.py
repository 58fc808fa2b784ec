"""Tests of predict.py, the command line that classifies images.

Two exports of one tiny untrained model are pushed as versions 9 and 10
(numeric order, not text order, decides which is newest): version 9 has
threshold 0.0 (everything is PNEUMONIA), version 10 threshold 1.1 (everything
is NORMAL), so the labels and thresholds printed show which model ran and
that its own threshold was used. The script runs as a user would run it, in
a subprocess, on real originals read in place.
"""
import csv
import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import predict
from contract import names as constants
from testing.support import REPO
from testing.support import require_shared_data
from testing.support import run_cli
from trainer import models
from trainer import signatures

SIZE = 32
OLD, NEW = '9', '10'
THRESHOLDS = {OLD: 0.0, NEW: 1.1}


def _original(channels: int) -> pathlib.Path:
  """The smallest real original with `channels` channels (MANIFEST.csv)."""
  root = require_shared_data('kermany-original-sample')
  with open(root / 'MANIFEST.csv', newline='') as f:
    rows = [r for r in csv.DictReader(f) if int(r['channels']) == channels]
  assert rows, f'MANIFEST.csv lists no {channels}-channel original'
  return root / min(rows, key=lambda r: int(r['bytes']))['path']


@pytest.fixture(scope='module')
def output_dir(tmp_path_factory) -> pathlib.Path:
  """An OUTPUT_DIR whose serving_model holds versions 9 and 10."""
  keras.utils.set_random_seed(0)
  model = models.build_model('baseline_cnn', SIZE, 10)
  root = tmp_path_factory.mktemp('predict_output')
  for version, threshold in THRESHOLDS.items():
    signatures.export(model, str(root / 'serving_model' / version), SIZE,
                      threshold, info={'architecture': 'baseline_cnn'})
  return root


@pytest.fixture(scope='module')
def version_dir(output_dir):
  return lambda version: output_dir / 'serving_model' / version


@pytest.fixture(scope='module')
def images(tmp_path_factory) -> dict:
  """Good and bad inputs by name."""
  folder = tmp_path_factory.mktemp('predict_images')
  pixels = ((np.linspace(0, 255, 80)[:, None] + np.linspace(0, 255, 70)[None])
            / 2).astype(np.uint8)[..., None]
  png = folder / 'made.png'
  png.write_bytes(tf.io.encode_png(pixels).numpy())
  text = folder / 'x.jpeg'
  text.write_text('this is not an image\n')
  empty = folder / 'empty.jpeg'
  empty.write_bytes(b'')
  return {'gray': _original(1), 'rgb': _original(3), 'png': png,
          'text': text, 'missing': folder / 'missing.jpeg', 'empty': empty}


def _lines(result):
  lines = result.stdout.splitlines()
  return [json.loads(line) for line in lines]


def _serve(model_dir, path) -> float:
  """The probability the SavedModel itself gives, in this process."""
  loaded = tf.saved_model.load(str(model_dir))
  outputs = loaded.signatures[constants.SERVING_SIGNATURE](
      **{constants.SERVING_INPUT: tf.constant([path.read_bytes()])})
  return float(outputs[constants.PROBABILITY_OUTPUT][0])


def _check_prediction(line, path, version_path, threshold):
  assert set(line) == {'path', 'pneumonia_probability', 'label', 'threshold',
                       'model'}, line
  assert line['path'] == str(path)
  assert 0.0 <= line['pneumonia_probability'] <= 1.0
  assert line['threshold'] == pytest.approx(threshold, abs=1e-6)
  assert line['label'] == ('PNEUMONIA' if line['pneumonia_probability'] >=
                           line['threshold'] else 'NORMAL')
  assert os.path.samefile(line['model'], version_path)


# --- the script as users run it -------------------------------------------------

def test_newest_model_good_and_bad_files(output_dir, version_dir, images):
  order = ['gray', 'text', 'rgb', 'missing', 'png', 'empty']
  result = run_cli(['predict.py', '--output-dir', output_dir,
                    *[images[name] for name in order]])
  assert result.returncode == 1, result.stderr
  assert 'Traceback' not in result.stderr
  lines = _lines(result)
  assert len(lines) == len(order), result.stdout
  for name, line in zip(order, lines):
    if name in ('text', 'missing', 'empty'):
      assert set(line) == {'path', 'error'}, line
      assert line['path'] == str(images[name])
      assert line['error'] and '\n' not in line['error']
    else:
      # Version 10 (threshold 1.1): nothing reaches it.
      _check_prediction(line, images[name], version_dir(NEW), 1.1)
      assert line['label'] == 'NORMAL'
      assert line['pneumonia_probability'] == pytest.approx(
          _serve(version_dir(NEW), images[name]), abs=1e-6)
  errors = {name: line['error'] for name, line in zip(order, lines)
            if 'error' in line}
  assert 'decod' in errors['text']
  assert 'no such file' in errors['missing']
  assert 'empty' in errors['empty']


def test_model_option_with_a_version_and_a_folder(version_dir, images,
                                                  tmp_path):
  folder = tmp_path / 'folder'
  folder.mkdir()
  for name in ('b.jpeg', 'a.PNG', 'notes.txt'):
    source = images['gray'] if name.endswith('jpeg') else images['png']
    (folder / name).write_bytes(source.read_bytes())
  (folder / 'sub.jpeg').mkdir()  # a folder, not an image
  result = run_cli(['predict.py', '--model', version_dir(OLD), images['rgb'],
                    folder, images['png']])
  assert result.returncode == 0, result.stderr
  lines = _lines(result)
  expected = [images['rgb'], folder / 'a.PNG', folder / 'b.jpeg',
              images['png']]
  assert [line['path'] for line in lines] == [str(p) for p in expected]
  for line, path in zip(lines, expected):
    # Version 9 (threshold 0.0): everything is PNEUMONIA.
    _check_prediction(line, path, version_dir(OLD), 0.0)
    assert line['label'] == 'PNEUMONIA'
  # Same weights in both versions, so the same bytes give the same value.
  assert lines[2]['pneumonia_probability'] == pytest.approx(
      _serve(version_dir(NEW), images['gray']), abs=1e-6)


def test_no_model_exits_2_and_says_what_to_do(tmp_path, images):
  empty_output = tmp_path / 'nothing_here'
  result = run_cli(['predict.py', images['png']],
                   env={'OUTPUT_DIR': str(empty_output)})
  assert result.returncode == 2
  assert result.stdout == ''
  assert str(empty_output / 'serving_model') in result.stderr
  assert 'make run' in result.stderr and '--model' in result.stderr
  assert 'Traceback' not in result.stderr


def test_help_is_fast_and_imports_no_tensorflow():
  result = run_cli(['-X', 'importtime', 'predict.py', '--help'], timeout=120)
  assert result.returncode == 0, result.stderr
  assert '--model' in result.stdout and '--output-dir' in result.stdout
  imported = [line.rsplit('|', 1)[-1].strip()
              for line in result.stderr.splitlines() if '|' in line]
  assert 'argparse' in imported  # the import log is there
  assert not [m for m in imported if m.split('.')[0] in ('tensorflow', 'tfx')]


# --- the pieces, in process ---------------------------------------------------

def test_find_model_resolves_folders(output_dir, version_dir, tmp_path):
  assert predict.find_model(None, str(output_dir)) == str(version_dir(NEW))
  serving = str(output_dir / 'serving_model')
  assert predict.find_model(serving, 'unused') == str(version_dir(NEW))
  assert predict.find_model(str(version_dir(OLD)), 'unused') == str(
      version_dir(OLD))
  with pytest.raises(predict.NoModelError, match='make run'):
    predict.find_model(str(tmp_path), 'unused')
  with pytest.raises(predict.NoModelError, match=str(tmp_path / 'serving_model')):
    predict.find_model(None, str(tmp_path))


def test_load_model_threshold_from_variable_then_model_info(version_dir,
                                                            tmp_path):
  _, serve, threshold = predict.load_model(str(version_dir(NEW)))
  assert threshold == pytest.approx(1.1, abs=1e-6)
  assert constants.SERVING_INPUT in serve.structured_input_signature[1]

  # A SavedModel without a `threshold` variable: model_info.json decides.
  module = tf.Module()
  module.serve = tf.function(
      lambda image_bytes: {constants.PROBABILITY_OUTPUT: tf.zeros_like(
          image_bytes, tf.float32)},
      input_signature=[tf.TensorSpec([None], tf.string, name='image_bytes')])
  path = tmp_path / 'no_variable'
  tf.saved_model.save(module, str(path), signatures={
      constants.SERVING_SIGNATURE: module.serve})
  (path / 'assets.extra').mkdir()
  (path / 'assets.extra' / 'model_info.json').write_text(
      json.dumps({'threshold': 0.25}))
  assert predict.load_model(str(path))[2] == 0.25


def test_load_model_refuses_a_broken_model(tmp_path):
  (tmp_path / 'saved_model.pb').write_bytes(b'not a protocol buffer')
  with pytest.raises(predict.NoModelError, match=str(tmp_path)):
    predict.load_model(str(tmp_path))


def test_expand_keeps_order_and_sorts_folders(tmp_path):
  for name in ('c.jpg', 'a.png', 'b.JPEG', 'readme.md'):
    (tmp_path / name).write_bytes(b'x')
  empty = tmp_path / 'empty'
  empty.mkdir()
  assert predict.expand(['z.png', str(tmp_path), str(empty)]) == [
      'z.png', str(tmp_path / 'a.png'), str(tmp_path / 'b.JPEG'),
      str(tmp_path / 'c.jpg'), str(empty)]


def test_makefile_has_a_predict_target():
  text = (REPO / 'Makefile').read_text()
  phony = next(line for line in text.splitlines()
               if line.startswith('.PHONY:'))
  assert 'predict' in phony.split()
  assert ('predict: $(STAMP)\n\t$(PY) predict.py --output-dir "$(OUTPUT_DIR)" '
          '$(IMAGES)\n') in text


def test_explain_writes_one_overlay_per_image(version_dir, images, tmp_path,
                                              capsys):
  # Same-named images in two folders must not overwrite each other's PNG.
  for folder in ('a', 'b'):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / 'x.png').write_bytes(images['png'].read_bytes())
  inputs = [tmp_path / 'a' / 'x.png', images['text'], tmp_path / 'b' / 'x.png',
            images['gray']]
  maps = tmp_path / 'maps' / 'new'  # created by the run
  assert predict.main(['--model', str(version_dir(OLD)), '--explain',
                       str(maps), *map(str, inputs)]) == 1  # the text file
  lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert 'error' in lines[1] and 'heat_map' not in lines[1]
  written = [line['heat_map'] for line in lines if 'error' not in line]
  assert len(written) == 3 and len(set(written)) == 3
  for line, path in zip(lines, written):
    assert os.path.dirname(path) == str(maps)
    with open(path, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  assert sorted(os.listdir(maps)) == sorted(map(os.path.basename, written))


def test_explain_with_a_model_without_the_signature(version_dir, images,
                                                     tmp_path, capsys):
  old = tmp_path / 'old'
  loaded = tf.saved_model.load(str(version_dir(OLD)))
  tf.saved_model.save(loaded, str(old), signatures={
      constants.SERVING_SIGNATURE: loaded.signatures[
          constants.SERVING_SIGNATURE]})
  assert predict.main(['--model', str(old), '--explain',
                       str(tmp_path / 'maps'), str(images['png'])]) == 1
  captured = capsys.readouterr()
  assert f"no '{constants.EXPLAIN_SIGNATURE}' signature" in captured.err
  line = json.loads(captured.out)
  assert line['label'] == 'PNEUMONIA' and 'heat_map' not in line
  assert not (tmp_path / 'maps').exists()
