"""End-to-end: the real pipeline up to the Trainer on a few dozen real images.

Quick settings, all three architectures (ResNet50 from random weights: no
ImageNet download here), then the exported model is loaded in a fresh
process with no project code importable and called on a grayscale original,
a 3-channel JPEG and a PNG, and its TF Serving warm-up requests (parsed with
tensorflow_serving's protos) are replayed through their signature.
"""
import csv
import glob
import json
import os
import shutil
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from components.site_calibration import executor as site_calibration
from contract import layout
from contract import settings as config
from contract import names as constants
from contract import options
from testing.support import executions
from testing.support import require_shared_data
from testing.support import run_cli

_IMAGES_PER_CLASS = 24


def _pick_images(kermany_224, data_dir):
  """The first images of distinct patients, per class (deterministic)."""
  from components.image_example_gen import naming  # pylint: disable=g-import-not-at-top
  for label in constants.LABEL_NAMES:
    seen = set()
    for path in sorted((kermany_224 / 'chest_xray' / 'train' / label).glob(
        '*.jpeg')):
      patient = naming.parse_file_name(path.name).patient_id
      if patient in seen:
        continue
      seen.add(patient)
      target = data_dir / label / path.name
      target.parent.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(path, target)
      if len(seen) == _IMAGES_PER_CLASS:
        break


def _serving_inputs(original_sample, kermany_224, folder):
  """A grayscale original, a 3-channel JPEG and a PNG, written to folder."""
  with open(original_sample / 'MANIFEST.csv') as f:
    rows = list(csv.DictReader(f))
  gray = next(r for r in rows if r['channels'] == '1')
  rgb = next(r for r in rows if r['channels'] == '3')
  paths = {'grayscale_original': original_sample / gray['path'],
           'rgb_original': original_sample / rgb['path']}
  jpeg = sorted((kermany_224 / 'chest_xray' / 'train' / 'PNEUMONIA').glob(
      '*.jpeg'))[-1]
  assert tf.io.decode_jpeg(jpeg.read_bytes()).shape[-1] == 3
  paths['rgb_224_jpeg'] = jpeg
  png = folder / 'from_original.png'
  image = tf.io.decode_jpeg(paths['grayscale_original'].read_bytes())
  png.write_bytes(tf.io.encode_png(tf.image.resize(
      image, (400, 500)).numpy().astype(np.uint8)).numpy())
  paths['png'] = png
  return paths


_LOAD_IN_FRESH_PROCESS = textwrap.dedent('''
    import importlib.util, json, sys
    repo = sys.argv[1]
    sys.path = [p for p in sys.path if p not in ('', '.', repo)]
    for name in ('trainer', 'pipeline', 'components'):
      assert importlib.util.find_spec(name) is None, name
    import tensorflow as tf
    model = tf.saved_model.load(sys.argv[2])
    serve = model.signatures['serving_default']
    out = {}
    for path in sys.argv[3:]:
      result = serve(image_bytes=tf.constant([open(path, 'rb').read()]))
      out[path] = {k: v.numpy().tolist() for k, v in result.items()}
    # What TF Serving replays at load (--enable_model_warmup), replayed here.
    from tensorflow_serving.apis import prediction_log_pb2
    warmup = sys.argv[2] + '/assets.extra/tf_serving_warmup_requests'
    for i, record in enumerate(tf.data.TFRecordDataset(warmup)):
      request = prediction_log_pb2.PredictionLog.FromString(
          record.numpy()).predict_log.request
      result = model.signatures[request.model_spec.signature_name](**{
          k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
      out[f'warmup {i}'] = {k: v.numpy().tolist() for k, v in result.items()}
    print('RESULT ' + json.dumps(out, default=lambda b: b.decode()))
''')


def _warmup_replays(outputs):
  return sum(key.startswith('warmup ') for key in outputs)


def _eval_images(data_dir, count):
  """Some training images, so that more probabilities are served."""
  return {f'train_{i}': path for i, path in enumerate(
      sorted(data_dir.rglob('*.jpeg'))[::6][:count])}


def _serve_in_fresh_process(tmp_path, serving_dir, paths):
  script = tmp_path / 'load.py'
  script.write_text(_LOAD_IN_FRESH_PROCESS)
  served = run_cli([script, os.path.abspath('.'), serving_dir, *paths],
                   timeout=300)
  assert served.returncode == 0, served.stderr[-3000:]
  line = [l for l in served.stdout.splitlines() if l.startswith('RESULT ')][0]
  return json.loads(line[len('RESULT '):])


def _assert_labels_at(threshold, outputs):
  """Each served label is PNEUMONIA exactly when probability >= threshold
  (compared in float32, as the serving graph does)."""
  for path, out in outputs.items():
    (probability,) = out[constants.PROBABILITY_OUTPUT]
    (label,) = out[constants.LABEL_OUTPUT]
    assert 0.0 <= probability <= 1.0, path
    expected = ('PNEUMONIA' if np.float32(probability) >= np.float32(threshold)
                else 'NORMAL')
    assert label == expected, (path, probability, threshold)


def test_train_stage_exports_a_servable_model(original_sample, kermany_224,
                                               tmp_path):
  data_dir, output_dir = tmp_path / 'data', tmp_path / 'output'
  _pick_images(kermany_224, data_dir)
  result = run_cli([
      'local_runner.py', '--data-dir', data_dir, '--output-dir', output_dir,
      '--stop-after', 'train', '--profile', 'quick', '--image-size', '64',
      '--epochs', '3', '--batch-size', '8', '--resnet-weights', 'none',
      '--race-after-epochs', '0', '--workers', '1'])
  assert result.returncode == 0, result.stderr[-5000:]
  log = result.stderr
  states = executions(config.output_paths(str(output_dir))['metadata_path'])
  assert states[-1] == ('Trainer', 'COMPLETE'), states

  # Progress lines: epoch, step, images/s, ETA.
  progress = [line for line in log.splitlines() if '] epoch ' in line]
  assert progress and all('img/s' in line and 'ETA' in line
                          for line in progress)
  # Each split is decoded once, not once per epoch or architecture.
  assert log.count('Decoded the train split once') == 1
  assert log.count('Decoded the eval split once') == 1

  trainer_root = config.output_paths(str(output_dir))['pipeline_root']
  run_dir = glob.glob(os.path.join(trainer_root, 'Trainer', 'model_run', '*'))[0]
  model_dir = glob.glob(os.path.join(trainer_root, 'Trainer', 'model', '*'))[0]
  with open(os.path.join(model_dir, 'comparison.json')) as f:
    comparison = json.load(f)
  # Trained in the default order; with the race off every one runs to
  # the end (the race itself: trainer/early_stopping_test.py).
  assert [r['architecture'] for r in comparison] == list(
      options.DEFAULT_ARCHITECTURES)
  assert {r['stopped_by'] for r in comparison} == {layout.STOPPED_BY_EPOCHS}
  with open(os.path.join(run_dir, layout.TRAINING_SETTINGS_FILE)) as f:
    assert json.load(f)['race_after_epochs'] == 0
  with open(os.path.join(model_dir, 'Format-Serving',
                         layout.MODEL_INFO_FILE)) as f:
    info = json.load(f)
  # The mean of all three was a candidate (trainer/selection.py); the best
  # single architecture is marked selected unless the mean shipped.
  ensemble = info['ensemble']
  assert ensemble['members'] == list(options.DEFAULT_ARCHITECTURES)
  best = max(comparison, key=lambda r: r['val_auc'])
  assert ensemble['best_single'] == best['architecture']
  selected = [r['architecture'] for r in comparison if r['selected']]
  if ensemble['chosen']:
    assert (info['architecture'], selected) == ('ensemble', [])
    assert info['members'] == list(options.DEFAULT_ARCHITECTURES)
  else:
    assert (info['architecture'], selected) == (best['architecture'],
                                                [best['architecture']])

  for name in options.ARCHITECTURES:
    with open(os.path.join(run_dir, name, 'history.json')) as f:
      history = json.load(f)
    assert len(history) == 3, (name, history)  # patience 2 < 3 epochs
    assert all({'loss', 'auc', 'val_loss', 'val_auc', 'accuracy'} <= set(row)
               for row in history)
    assert len(glob.glob(os.path.join(run_dir, name, 'checkpoints',
                                      '*.weights.h5'))) == len(history)
    assert glob.glob(os.path.join(run_dir, name, 'tensorboard', '**',
                                  'events.out.tfevents.*'), recursive=True)
  # BatchNorm statistics usable from the first epochs: validation AUC of the
  # BatchNorm model moves off exactly 0.5.
  with open(os.path.join(run_dir, 'improved_cnn', 'history.json')) as f:
    val_aucs = [row['val_auc'] for row in json.load(f)]
  assert max(abs(auc - 0.5) for auc in val_aucs) > 0.02, val_aucs

  # The exported model serves raw bytes in a process without our code.
  inputs = _serving_inputs(original_sample, kermany_224, tmp_path)
  inputs.update(_eval_images(data_dir, 8))
  serving_dir = os.path.join(model_dir, 'Format-Serving')
  with open(os.path.join(serving_dir, layout.MODEL_INFO_FILE)) as f:
    threshold = json.load(f)['threshold']
  outputs = _serve_in_fresh_process(tmp_path, serving_dir, inputs.values())
  # The first 4 eval images' warm-up requests, each to a probability and
  # its label (and still there after a re-save: `moved` below).
  assert (len(outputs), _warmup_replays(outputs)) == (len(inputs) + 4, 4)
  _assert_labels_at(threshold, outputs)

  # The label follows the model's own threshold, not 0.5: in a copy of the
  # model whose threshold puts the served probability nearest 0.5 between
  # the threshold and 0.5, that image is labelled the other way round from
  # what 0.5 would say.
  nearest = min((out[constants.PROBABILITY_OUTPUT][0] for out in
                 outputs.values()), key=lambda p: abs(p - 0.5))
  assert nearest != 0.5
  beyond = (nearest + (1.0 if nearest > 0.5 else 0.0)) / 2
  site_calibration.resave_with_threshold(serving_dir, str(tmp_path / 'moved'),
                                         beyond)
  moved = _serve_in_fresh_process(tmp_path, tmp_path / 'moved',
                                  inputs.values())
  assert _warmup_replays(moved) == 4
  _assert_labels_at(beyond, moved)
  flipped = [path for path, out in moved.items()
             if out[constants.PROBABILITY_OUTPUT][0] == nearest]
  assert flipped and all(
      (moved[path][constants.LABEL_OUTPUT][0] == 'PNEUMONIA') != (nearest >= 0.5)
      for path in flipped), (nearest, beyond)


def test_missing_resnet_weights_stop_the_run_before_any_stage(tmp_path):
  data = require_shared_data('kermany-224', 'chest_xray', 'train')
  result = run_cli(['local_runner.py', '--data-dir', data, '--output-dir',
                    tmp_path / 'out', '--stop-after', 'train',
                    '--resnet-weights', str(tmp_path / 'missing.h5')],
                   timeout=120)
  assert result.returncode == 2
  assert 'Traceback' not in result.stderr
  for alternative in ('--resnet-weights none', '--architectures '
                      'baseline_cnn,improved_cnn', 'missing.h5'):
    assert alternative in result.stderr, alternative
  assert not (tmp_path / 'out').exists()


# Loaded by the runner's Python through PYTHONPATH: every outbound TCP
# connection fails, as on a machine without internet, whatever this one has.
_NO_NETWORK = """
import socket
_connect = socket.socket.connect
def _refuse(self, address):
  if self.family in (socket.AF_INET, socket.AF_INET6):
    raise OSError('network disabled by the test')
  return _connect(self, address)
socket.socket.connect = _refuse
"""


def test_imagenet_weights_unreachable_stop_the_run_before_any_stage(
    tmp_path):
  data = require_shared_data('kermany-224', 'chest_xray', 'train')
  (tmp_path / 'offline').mkdir()
  (tmp_path / 'offline' / 'sitecustomize.py').write_text(_NO_NETWORK)
  started = time.monotonic()
  result = run_cli(['local_runner.py', '--data-dir', data, '--output-dir',
                    tmp_path / 'out', '--stop-after', 'train'],
                   env={'KERAS_HOME': str(tmp_path / 'keras'),
                        'PYTHONPATH': str(tmp_path / 'offline')},
                   timeout=120)
  seconds = time.monotonic() - started
  assert result.returncode == 2, result.stderr[-3000:]
  assert 'ImageNet weights' in result.stderr
  assert 'cannot be reached' in result.stderr
  assert '--resnet-weights none' in result.stderr
  assert not (tmp_path / 'out').exists()
  # The preflight answers before TensorFlow is imported.
  assert seconds < 10, seconds
