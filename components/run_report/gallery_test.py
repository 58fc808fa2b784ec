"""Tests of the run report's Grad-CAM gallery on a model with known scores.

The model (exported with trainer.signatures.export, as the Trainer does)
outputs the mean gray level of its input: an image of uniform gray g scores
g / 255 exactly, so which test images are true positives, false positives
and false negatives at the threshold, and in which order, is known.
"""
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.run_report import gallery
from contract import names as constants
from trainer import signatures

SIZE = 32
THRESHOLD = 0.5
PNEUMONIA_GRAYS = (200, 190, 180, 170, 160, 100, 90)  # 5 TP, 2 FN
NORMAL_GRAYS = (150, 140, 30, 20)  # 2 FP


def _example(gray: int, label: int) -> bytes:
  png = tf.io.encode_png(tf.fill([SIZE + 8, SIZE, 1],
                                 tf.constant(gray, tf.uint8))).numpy()
  feature = {
      constants.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[png])),
      constants.LABEL_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[label])),
      constants.SOURCE_PATH_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[f'<b>{label}/gray{gray}.png'.encode()])),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


@pytest.fixture(scope='module')
def run_inputs(tmp_path_factory):
  """{'model': [uri], 'examples': [uri]} as Run.inputs holds them."""
  root = tmp_path_factory.mktemp('run')
  keras.utils.set_random_seed(0)
  inputs = keras.Input((SIZE, SIZE, 1))
  outputs = keras.layers.Dense(1, kernel_initializer='ones',
                               bias_initializer='zeros')(
                                   keras.layers.GlobalAveragePooling2D()(inputs))
  model_uri = root / 'Trainer' / 'model' / '4'
  signatures.export(keras.Model(inputs, outputs),
                    str(model_uri / 'Format-Serving'), SIZE, THRESHOLD,
                    info={})
  split = root / 'ImageExampleGen' / 'examples' / '1' / 'Split-test'
  split.mkdir(parents=True)
  options = tf.io.TFRecordOptions(compression_type='GZIP')
  rows = ([(g, constants.PNEUMONIA) for g in PNEUMONIA_GRAYS] +
          [(g, constants.NORMAL) for g in NORMAL_GRAYS])
  for shard in range(2):  # two shards, read in file order
    with tf.io.TFRecordWriter(str(split / f'data-{shard}.gz'),
                              options) as writer:
      for gray, label in rows[shard::2]:
        writer.write(_example(gray, label))
  return {'model': [str(model_uri)], 'examples': [str(split.parent)]}


def test_choose_groups_and_orders():
  p = [0.9, 0.2, 0.6, 0.95, 0.4, 0.7, 0.1]
  y = [1, 1, 0, 1, 1, 0, 0]
  chosen = gallery.choose(p, y, 0.5, per_group=2)
  assert chosen == {'true_positives': [3, 0], 'false_positives': [5, 2],
                    'false_negatives': [1, 4]}
  # At the threshold exactly is PNEUMONIA, as the serving graph says.
  assert gallery.choose([0.5], [0], 0.5)['false_positives'] == [0]


def test_gallery_of_the_test_split(run_inputs, tmp_path):
  found = gallery.for_run(run_inputs, str(tmp_path), 'model', 'examples')
  assert found.problem is None
  assert found.threshold == pytest.approx(THRESHOLD)
  assert found.images == len(PNEUMONIA_GRAYS) + len(NORMAL_GRAYS)
  grays = {key: [round(item.probability * 255) for item in items]
           for key, _, items in found.groups}
  assert grays == {'true_positives': [200, 190, 180, 170],
                   'false_positives': [150, 140],
                   'false_negatives': [90, 100]}
  truths = {key: {item.truth for item in items}
            for key, _, items in found.groups}
  assert truths == {'true_positives': {'PNEUMONIA'},
                    'false_positives': {'NORMAL'},
                    'false_negatives': {'PNEUMONIA'}}
  files = [item.file for _, _, items in found.groups for item in items]
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
  for name in files:
    assert (tmp_path / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  html = str(gallery.render(found))
  assert html.count('<img ') == len(files)
  assert '&lt;b&gt;1/gray200.png' in html and '<b>1/' not in html  # escaped
  assert 'Most confident true positives' in html


def test_no_gallery_without_explain_or_inputs(run_inputs, tmp_path):
  assert gallery.for_run({'model': [], 'examples': ['x']}, str(tmp_path),
                         'model', 'examples') is None
  old = tmp_path / 'old' / 'Format-Serving'
  loaded = tf.saved_model.load(
      str(pathlib.Path(run_inputs['model'][0]) / 'Format-Serving'))
  tf.saved_model.save(loaded, str(old), signatures={
      name: loaded.signatures[name] for name in (
          constants.SERVING_SIGNATURE, constants.EXAMPLES_SIGNATURE)})
  found = gallery.for_run(dict(run_inputs, model=[str(old.parent)]),
                          str(tmp_path), 'model', 'examples')
  assert "no 'explain' signature" in found.problem
  assert 'No gallery' in str(gallery.render(found))
  broken = gallery.for_run(dict(run_inputs, model=[str(tmp_path / 'none')]),
                           str(tmp_path), 'model', 'examples')
  assert broken.problem and not broken.groups
  assert str(gallery.render(None)) == ''
