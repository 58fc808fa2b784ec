"""Classifies chest X-ray images with an exported model.

    python predict.py IMAGE... [--model DIR] [--output-dir DIR] [--explain DIR]

Without --model the newest pushed model is used: the highest numeric version
folder under `<output dir>/serving_model` that loads (what TF Serving would
serve); broken versions above it are named on stderr and skipped. --model
takes a SavedModel folder or a folder of versions (then the newest that
loads). A folder among the images stands for its .jpeg/.jpg/.png/.dcm
files, sorted. A DICOM file (.dcm, or DICOM bytes under any name) is
converted as ingestion converts it (components/image_example_gen/dicom.py:
window, 8-bit PNG) and that PNG is classified; one ingestion refuses is
refused with the same reason.

Prints one JSON line per image, in argument order:
  {"path", "pneumonia_probability", "label", "threshold", "model"}
or {"path", "error"} for a file that cannot be read or decoded, or that
ingestion would reject (contract.options.ImageLimits: too large, more pixels
than the cap, smaller than the minimum side, an EXIF orientation other than
upright).
With --explain DIR, each classified image also gets a PNG in DIR (created
if missing): the X-ray with its Grad-CAM heat map overlaid (the model's
`explain` signature, trainer/gradcam.py), probability and label in the
title; its path is the line's "heat_map". A model exported before that
signature is named on stderr and the images are still classified (exit 1).
Exit code: 0 all classified, 1 some image failed, 2 no model found or loaded.
"""
import argparse
import json
import os
import sys
import warnings

from contract import settings as config
from contract import layout
from contract import names as constants

EXIT_OK, EXIT_IMAGE_FAILED, EXIT_NO_MODEL = 0, 1, 2


class NoModelError(Exception):
  """No usable model where we looked."""


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Classify chest X-ray images (JPEG/PNG/DICOM) as '
      'PNEUMONIA or NORMAL with an exported model; one JSON line per image '
      'on stdout.',
      epilog='Exit code: 0 all images classified, 1 some image failed, 2 no '
      'model found or loaded.')
  parser.add_argument('images', nargs='+', metavar='IMAGE',
                      help='image files, or folders of .jpeg/.jpg/.png/.dcm '
                      'files')
  parser.add_argument('--model', metavar='DIR',
                      help='a SavedModel folder, or a folder of numeric '
                      'versions (the newest is used); default: the newest '
                      'pushed model under OUTPUT_DIR/serving_model')
  parser.add_argument('--output-dir', metavar='DIR',
                      default=os.environ.get('OUTPUT_DIR')
                      or config.DEFAULT_OUTPUT_DIR,
                      help='the pipeline output folder (default: $OUTPUT_DIR '
                      'or %(default)s)')
  parser.add_argument('--explain', metavar='DIR',
                      help='also write, per image, a PNG of the X-ray with '
                      'its Grad-CAM heat map into DIR; its path is the '
                      'line\'s "heat_map"')
  return parser.parse_args(argv)


def expand(arguments):
  """Image paths in argument order; a folder becomes its sorted images.

  A folder without images is kept as is, to be reported as an error.
  """
  paths = []
  for argument in arguments:
    if os.path.isdir(argument):
      names = sorted(
          name for name in os.listdir(argument)
          if name.lower().endswith(constants.IMAGE_EXTENSIONS +
                                   constants.DICOM_EXTENSIONS)
          and not os.path.isdir(os.path.join(argument, name)))
      paths.extend([os.path.join(argument, name) for name in names]
                   or [argument])
    else:
      paths.append(argument)
  return paths


# find_model checks a version by loading it; load_model takes that object
# rather than loading the folder again (4 s for resnet50).
_CHECKED = {}


def find_model(model: str, output_dir: str) -> str:
  """The SavedModel folder to use: --model if it is one, else the newest
  numeric version that loads (broken ones above it are named on stderr).

  Raises:
    NoModelError: nothing usable, with where we looked and what to do.
  """
  # Imported here: it brings TensorFlow.
  from components.deployed_model import versions  # pylint: disable=g-import-not-at-top
  if model and os.path.isfile(os.path.join(model, layout.SAVED_MODEL_FILE)):
    return model  # chosen by hand: used or refused, never replaced
  base = model or config.output_paths(output_dir)['serving_model_dir']
  found = versions.newest_loadable(base, (constants.SERVING_SIGNATURE,))
  for entry in found.skipped:
    print(f'predict.py: skipping version {entry.version} ({entry.path}): '
          f'{entry.reason}', file=sys.stderr)
  broken = (f' ({len(found.skipped)} numeric entries there, none usable: '
            'see above)' if found.skipped else '')
  if found.version is None and model:
    raise NoModelError(
        f'no model at {model}{broken}: it is neither a SavedModel folder '
        '(with saved_model.pb) nor a folder of numeric version folders '
        'holding one that loads. Pass --model a SavedModel folder, or run '
        '`make run` to train and push one.')
  if found.version is None:
    raise NoModelError(
        f'no pushed model under {base}{broken} (looked for numeric version '
        'folders holding a SavedModel that loads). Run `make run` to train '
        'and push one (set OUTPUT_DIR or --output-dir if the pipeline wrote '
        'elsewhere), or pass --model DIR.')
  if found.skipped:
    print(f'predict.py: using version {found.version}, the newest that '
          'loads.', file=sys.stderr)
  _CHECKED[found.path] = found.loaded
  return found.path


def _float32_value(value) -> float:
  """A float32 as the shortest decimal that reads back as it (0.3, not
  0.30000001192092896)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(str(np.float32(value)))


def load_model(path: str):
  """(loaded object, serving function, threshold) of the SavedModel at `path`.

  Keep the loaded object alive as long as its signature is used: it owns the
  variables.

  Raises:
    NoModelError: it does not load or lacks the serving signature.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = _CHECKED.pop(path, None)
  try:
    if loaded is None:
      loaded = tf.saved_model.load(path)
  except Exception as e:  # pylint: disable=broad-except
    raise NoModelError(f'cannot load the model at {path}: '
                       f'{type(e).__name__}: {_first_line(e)}') from e
  serve = loaded.signatures.get(constants.SERVING_SIGNATURE)
  if serve is None:
    raise NoModelError(f'the model at {path} has no '
                       f'{constants.SERVING_SIGNATURE} signature')
  threshold = getattr(loaded, 'threshold', None)
  if isinstance(threshold, tf.Variable):
    threshold = _float32_value(threshold.numpy())
  else:
    threshold = None
    info_path = os.path.join(path, layout.MODEL_INFO_FILE)
    try:
      with open(info_path, encoding='utf-8') as f:
        threshold = float(json.load(f)['threshold'])
    except (OSError, ValueError, KeyError, TypeError):
      pass
  return loaded, serve, threshold


def _first_line(error: Exception) -> str:
  text = str(getattr(error, 'message', None) or error).strip()
  return text.splitlines()[0] if text else type(error).__name__


def read_image(path: str) -> bytes:
  """The file's bytes (a DICOM's PNG), if it may be classified: ingestion's
  own checks (`image_file`: a regular file under the size cap; from the
  header, before any decode, not too many pixels, not too small, upright;
  `dicom` for a DICOM file).

  Raises:
    ValueError: with a short reason when there is nothing to classify.
  """
  # Imported here, like the model code: --help needs none of it.
  from components.image_example_gen import dicom  # pylint: disable=g-import-not-at-top
  from components.image_example_gen import image_file  # pylint: disable=g-import-not-at-top
  from contract import options  # pylint: disable=g-import-not-at-top
  if not os.path.lexists(path):
    raise ValueError('no such file')
  if os.path.isdir(path):
    raise ValueError('folder without .jpeg/.jpg/.png/.dcm files')
  limits = options.ImageLimits()
  data = image_file.read_file(path, limits.max_file_bytes)
  if not data:
    raise ValueError('empty file')
  if dicom.is_dicom(path, data):  # the PNG ingestion stores for it
    return dicom.convert(data, limits).png
  image_file.check_header(data, limits)  # an ImageFileError is a ValueError
  return data


def classify(serve, data: bytes):
  """(probability, label) of one encoded image.

  Raises:
    ValueError: the bytes are not an image the model can decode.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    outputs = serve(**{constants.SERVING_INPUT: tf.constant([data])})
  except tf.errors.OpError as e:
    if constants.IMAGE_REFUSED in str(e.message):  # the serving graph's own check
      raise ValueError(e.message.splitlines()[0]) from e
    raise ValueError('not a decodable image (JPEG or PNG expected)') from e
  probability = float(outputs[constants.PROBABILITY_OUTPUT].numpy()[0])
  label = outputs[constants.LABEL_OUTPUT].numpy()[0].decode()
  return probability, label


def heat_map(explain, data: bytes):
  """The Grad-CAM map [S, S] in [0, 1] of one encoded image."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  outputs = explain(**{constants.EXPLAIN_INPUT: tf.constant([data])})
  return outputs[constants.HEAT_MAP_OUTPUT].numpy()[0]


def overlay_name(index: int, path: str) -> str:
  """A PNG name unique within one run (the argument's position first),
  even for same-named images in different folders."""
  stem = os.path.splitext(os.path.basename(path))[0]
  safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in stem)
  return f'{index:04d}-{safe}.gradcam.png'


def main(argv=None) -> int:
  args = parse_args(argv)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # Noise of an import, not of this run.
  warnings.filterwarnings('ignore', message='You are using a non-supported '
                          'Python version', category=FutureWarning)
  try:
    model_path = find_model(args.model, args.output_dir)
    loaded, serve, threshold = load_model(model_path)
  except NoModelError as e:
    print(f'predict.py: {e}', file=sys.stderr)
    return EXIT_NO_MODEL
  model_path = os.path.abspath(model_path)
  status = EXIT_OK
  explain = None
  if args.explain:
    explain = loaded.signatures.get(constants.EXPLAIN_SIGNATURE)
    if explain is None:
      print(f'predict.py: --explain: the model at {model_path} has no '
            f'{constants.EXPLAIN_SIGNATURE!r} signature (exported before '
            'Grad-CAM); no heat maps written. Push a newer model or pass '
            '--model one that has it.', file=sys.stderr)
      status = EXIT_IMAGE_FAILED
    else:
      os.makedirs(args.explain, exist_ok=True)
      # Imported here, like the model code: --help needs none of it.
      from components.run_report import overlay  # pylint: disable=g-import-not-at-top
  for index, path in enumerate(expand(args.images)):
    try:
      data = read_image(path)
      probability, label = classify(serve, data)
      line = {'path': path, 'pneumonia_probability': probability,
              'label': label, 'threshold': threshold, 'model': model_path}
      if explain is not None:
        target = os.path.join(args.explain, overlay_name(index, path))
        overlay.write_overlay(data, heat_map(explain, data),
                      f'{os.path.basename(path)}: {label} '
                      f'(p = {probability:.3f})', target)
        line['heat_map'] = target
    except ValueError as e:
      line = {'path': path, 'error': str(e)}
      status = EXIT_IMAGE_FAILED
    print(json.dumps(line), flush=True)
  del loaded
  return status


if __name__ == '__main__':
  sys.exit(main())
