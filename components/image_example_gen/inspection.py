"""What ingestion learns about one image file, without keeping its pixels.

Each candidate is read (`image_file.read_file`: regular files only, size
capped), hashed, named, its header checked (`image_file.check_header`:
pixel count before decoding, smallest side, EXIF orientation) and decoded
with the decoder training and serving use, so whatever passes here trains.
A DICOM file is converted first (`dicom.convert`: refusals, window, 8-bit
PNG; its PatientID names the patient) and the rest applies to its PNG, whose
sha256 is the one deduplicated (a file refused by `dicom` is hashed as read).
A bad file becomes an `Inspected` with a reason, never an exception: one
file must not stop a run.
"""
import hashlib
import re
from typing import NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf

from components.image_example_gen import dicom
from components.image_example_gen import image_file
from components.image_example_gen import naming
from components.image_example_gen.walk import Candidate
from contract import names as constants
from contract import options


class Inspected(NamedTuple):
  """What ingestion learned about one file (no pixels, no bytes)."""
  candidate: Candidate
  sha256: str
  error: Optional[str] = None  # bytes unreadable or undecodable; None if ok
  patient_id: str = ''
  subtype: str = ''
  height: int = 0
  width: int = 0
  channels: int = 0
  name_error: Optional[str] = None  # this file's name or folder is unusable
  # Watched for drift, never shown to the model (contract/names.py).
  file_format: str = ''  # of the file as found: names.FILE_FORMATS
  mean_intensity: float = 0.0  # mean decoded pixel value, 0-255


def _tf_error_text(error: Exception) -> str:
  """The first line of a TF error, without its op and graph noise."""
  text = getattr(error, 'message', None) or str(error)
  text = re.sub(r'\{\{[^}]*\}\}\s*', '', text)
  text = re.sub(r'\s*\[Op:\w+\]', '', text)
  return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _decode(raw: bytes) -> tf.Tensor:
  """The decoded image (with the decoder training and serving use, so
  whatever passes here trains); raises ValueError if undecodable."""
  if not raw:
    raise ValueError('empty file')
  try:
    image = tf.io.decode_image(raw, expand_animations=False)
  except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
    raise ValueError(f'not a decodable image: {_tf_error_text(e)}') from None
  if not image.shape[0] or not image.shape[1]:
    raise ValueError('image has no pixels')
  return image


def decode_shape(raw: bytes) -> Tuple[int, int, int]:
  """(height, width, channels) of an encoded image; raises if undecodable."""
  height, width, channels = (int(d) for d in _decode(raw).shape)
  return height, width, channels


def decode_summary(raw: bytes) -> Tuple[int, int, int, float]:
  """`decode_shape` and the mean pixel value (0-255) of the decoded image.
  The mean in NumPy: a second eager TF op per image cost more than the
  decode of a 224-px JPEG (bench/ingest)."""
  image = _decode(raw).numpy()
  height, width, channels = image.shape
  return height, width, channels, float(image.mean(dtype=np.float64))


def inspect_image(candidate: Candidate,
                  limits: options.ImageLimits = options.ImageLimits()
                  ) -> Inspected:
  """Reads, hashes, names, checks and decodes one file; never raises for bad
  input."""
  try:
    raw = image_file.read_file(candidate.path, limits.max_file_bytes)
  except image_file.ImageFileError as e:
    return Inspected(candidate, '', str(e))
  is_dicom = dicom.is_dicom(candidate.rel_path, raw)
  if is_dicom:
    try:
      image = dicom.convert(raw, limits)
    except image_file.ImageFileError as e:
      return Inspected(candidate, hashlib.sha256(raw).hexdigest(), str(e))
    # From here on the PNG, which the example holds: its hash finds the
    # same pixels in two exports whose headers differ.
    raw = image.png
  sha = hashlib.sha256(raw).hexdigest()
  try:
    parsed = (naming.parse_dicom_name(candidate.rel_path, candidate.label,
                                      image.patient_id) if is_dicom
              else naming.parse_file_name(candidate.rel_path))
  except naming.UnknownNameError as e:
    return Inspected(candidate, sha, name_error=str(e))
  if (candidate.label == constants.NORMAL) != (parsed.subtype == 'normal'):
    return Inspected(
        candidate, sha, name_error=(
            f'name says {parsed.subtype!r} but folder says '
            f'{constants.LABEL_NAMES[candidate.label]}'))
  try:
    # Before decoding: a header may declare gigabytes of pixels.
    header = image_file.check_header(raw, limits)
    height, width, channels, mean = decode_summary(raw)
  except ValueError as e:  # image_file.ImageFileError is one
    return Inspected(candidate, sha, str(e), parsed.patient_id, parsed.subtype)
  # The decoder takes only read_header's formats; 'unknown' is a guard.
  file_format = 'dicom' if is_dicom else (
      header.format if header else 'unknown')
  return Inspected(candidate, sha, None, parsed.patient_id, parsed.subtype,
                   height, width, channels, file_format=file_format,
                   mean_intensity=round(mean, 3))
