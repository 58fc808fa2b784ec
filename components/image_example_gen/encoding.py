"""The tf.Example of one kept image: metadata in Beam, bytes at the sink.

Only metadata travels through Beam (partitioning by patient needs no pixels);
`attach_image` adds ``image_raw`` as the example is written, so gigabytes of
JPEG never cross a shuffle or a worker boundary. A DICOM file is converted
again there (`dicom.convert`, deterministic): its PNG is what is stored.
"""
import hashlib
import os

import tensorflow as tf

from components.image_example_gen import dicom
from components.image_example_gen import image_file
from components.image_example_gen.inspection import Inspected
from contract import names as constants
from contract import options


class ImageChangedError(RuntimeError):
  """An image file changed while it was being ingested."""


def _bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float_feature(value: float) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def to_example(item: Inspected) -> tf.train.Example:
  """The tf.Example of a kept image, without its bytes (see `attach_image`)."""
  return tf.train.Example(features=tf.train.Features(feature={
      constants.LABEL_KEY: _int_feature(item.candidate.label),
      constants.PATIENT_ID_KEY: _bytes_feature(item.patient_id.encode()),
      constants.SUBTYPE_KEY: _bytes_feature(item.subtype.encode()),
      constants.SOURCE_PATH_KEY: _bytes_feature(
          item.candidate.rel_path.encode()),
      constants.SHA256_KEY: _bytes_feature(item.sha256.encode()),
      constants.HEIGHT_KEY: _int_feature(item.height),
      constants.WIDTH_KEY: _int_feature(item.width),
      constants.CHANNELS_KEY: _int_feature(item.channels),
      constants.FILE_FORMAT_KEY: _bytes_feature(item.file_format.encode()),
      constants.MEAN_INTENSITY_KEY: _float_feature(item.mean_intensity),
  }))


def attach_image(example: tf.train.Example,
                 input_base: str) -> tf.train.Example:
  """Adds `image_raw`, read from the file, to an example of `to_example`.

  Raises:
    ImageChangedError: the file's bytes no longer match the sha256 taken
      when it was inspected (it changed during the run); re-run ingestion.
  """
  feature = example.features.feature
  rel_path = feature[constants.SOURCE_PATH_KEY].bytes_list.value[0].decode()
  path = os.path.join(input_base, *rel_path.split('/'))
  try:  # as inspection read it: a FIFO swapped in must not block the sink
    raw = image_file.read_file(path, options.ImageLimits().max_file_bytes)
  except image_file.ImageFileError as e:
    raise ImageChangedError(
        f'{path} changed while it was being ingested ({e}); run again'
    ) from None
  if dicom.is_dicom(rel_path, raw):  # as inspection hashed it: the PNG
    try:
      raw = dicom.convert(raw).png
    except image_file.ImageFileError as e:
      raise ImageChangedError(
          f'{path} changed while it was being ingested ({e}); run again'
      ) from None
  expected = feature[constants.SHA256_KEY].bytes_list.value[0].decode()
  if hashlib.sha256(raw).hexdigest() != expected:
    raise ImageChangedError(
        f'{path} changed while it was being ingested; run again')
  feature[constants.IMAGE_KEY].bytes_list.value.append(raw)
  return example
