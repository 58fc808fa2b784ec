"""Serving folders for tests: tiny real SavedModels, broken the ways a real
serving folder gets broken (a copy killed half-way, variables deleted by
hand, a stray file with a numeric name).

A tiny SavedModel (one variable, both signatures of the contract) saves in
a fraction of a second, so each test builds its own folder.
"""
import hashlib
import pathlib
import shutil

import tensorflow as tf

from contract import names as constants

# How a version folder is broken, for break_version().
BREAKAGES = ('no_variables', 'no_index', 'no_data', 'truncated_data',
             'garbage_graph', 'empty_graph', 'no_graph', 'no_signature',
             'a_file')


class _Tiny(tf.Module):
  """Answers `value` for any input; PNEUMONIA when it reaches `threshold`."""

  def __init__(self, value: float, threshold: float):
    super().__init__()
    self.value = tf.Variable(value)
    self.threshold = tf.Variable(threshold)

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
  def serve(self, image_bytes):
    probability = tf.fill(tf.shape(image_bytes), self.value)
    label = tf.where(probability >= self.threshold,
                     constants.LABEL_NAMES[constants.PNEUMONIA],
                     constants.LABEL_NAMES[constants.NORMAL])
    return {constants.PROBABILITY_OUTPUT: probability,
            constants.LABEL_OUTPUT: label}


def tiny_saved_model(path: pathlib.Path, value: float = 0.5,
                     threshold: float = 0.5,
                     examples_signature: bool = True) -> pathlib.Path:
  """A SavedModel whose signatures answer `value` for every input."""
  module = _Tiny(value, threshold)
  signatures = {constants.SERVING_SIGNATURE: module.serve}
  if examples_signature:
    signatures[constants.EXAMPLES_SIGNATURE] = module.serve
  tf.saved_model.save(module, str(path), signatures=signatures)
  return path


def mean_gray_model(path: pathlib.Path, size: int) -> pathlib.Path:
  """A real export (trainer.signatures, all signatures) of an untrained
  model scoring sigmoid(w * mean gray + b), seeded: fast to build, and its
  answers depend on the pixels."""
  import keras  # pylint: disable=g-import-not-at-top
  from trainer import signatures  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  model = keras.Sequential([keras.Input((size, size, 1)),
                            keras.layers.GlobalAveragePooling2D(),
                            keras.layers.Dense(1, activation='sigmoid')])
  signatures.export(model, str(path), size, 0.5, info={'architecture': 'tiny'})
  return path


def break_version(path: pathlib.Path, how: str) -> pathlib.Path:
  """Writes version folder `path` broken as `how` (one of BREAKAGES)."""
  if how == 'a_file':
    path.write_text('not a folder\n')
    return path
  tiny_saved_model(path, examples_signature=how != 'no_signature')
  variables = path / 'variables'
  data = sorted(variables.glob('variables.data-*'))
  if how == 'no_variables':
    shutil.rmtree(variables)
  elif how == 'no_index':
    (variables / 'variables.index').unlink()
  elif how == 'no_data':
    for shard in data:
      shard.unlink()
  elif how == 'truncated_data':
    with open(data[0], 'r+b') as f:
      f.truncate(data[0].stat().st_size // 2)
  elif how == 'garbage_graph':
    (path / 'saved_model.pb').write_bytes(b'not a protocol buffer')
  elif how == 'empty_graph':
    (path / 'saved_model.pb').write_bytes(b'')
  elif how == 'no_graph':  # e.g. 1796999990/variables, a copy cut short
    (path / 'saved_model.pb').unlink()
  elif how != 'no_signature':
    raise ValueError(f'unknown breakage {how!r}')
  return path


def digests(folder: pathlib.Path) -> dict:
  """{relative path: sha256} of every file below folder (or of the file)."""
  if folder.is_file():
    return {'': hashlib.sha256(folder.read_bytes()).hexdigest()}
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.rglob('*')) if p.is_file()}
