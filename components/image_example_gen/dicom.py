"""A DICOM chest radiograph to the 8-bit grayscale PNG the model reads.

The one conversion, used by ingestion (`inspection`, `encoding`) and by
`predict.py`, so training and serving see the same pixels. The model
contract stays image bytes: the tf.Example holds this PNG, and predict.py
sends it.

Read: single-frame CR or DX images (contract.options: the same size cap and
regular-file rules, `image_file.read_file`), grayscale (MONOCHROME1 or
MONOCHROME2), any transfer syntax pydicom decodes (RLE natively; JPEG and
JPEG 2000 through pylibjpeg). Refused, with a reason, before any pixel is
decoded: a file that is not DICOM Part 10 (no 'DICM' at byte 128), no
PixelData (structured reports and other non-image objects), a Modality other
than CR or DX (RG, film/screen radiography, and vendors' non-standard 'DR'
are refused as well: another acquisition than the model learned from; an
absent Modality, Type 1 in the standard, means a malformed file), more than
one frame, colour, and Rows x Columns beyond `image_file.check_size`.

Pixels: the modality LUT (rescale slope/intercept) and then the VOI LUT or
the window (pydicom.pixels), mapped linearly onto 0..255 over the range
those can produce; without a VOI LUT or window, a depth over 8 bits is
stretched from the image's own minimum to its maximum (as a viewer shows
it) and 8-bit values are kept. MONOCHROME1 is inverted to MONOCHROME2.

Only PatientID leaves the file (the patient the split groups by); no other
tag is read, so no name, birth date, accession number or institution can
reach an artifact, log or reason. pydicom's warnings are silenced here, as
they may quote a value.
"""
import io
from typing import NamedTuple
import warnings

from components.image_example_gen import image_file
from contract import names as constants
from contract import options

MODALITIES = ('CR', 'DX')
_PHOTOMETRIC = ('MONOCHROME1', 'MONOCHROME2')
_PREFIX_AT, _PREFIX = 128, b'DICM'
_ERROR_CHARS = 200


class DicomImage(NamedTuple):
  png: bytes  # 8-bit grayscale PNG, lossless: the bytes the model reads
  height: int
  width: int
  patient_id: str  # PatientID, stripped; '' when absent or empty


def is_dicom(name: str, raw: bytes) -> bool:
  """Whether the file is read as DICOM: its name ends in .dcm, or its bytes
  carry the DICOM prefix (a PACS export may have any name)."""
  return (name.lower().endswith(constants.DICOM_EXTENSIONS)
          or raw[_PREFIX_AT:_PREFIX_AT + 4] == _PREFIX)


def _short(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f'{type(error).__name__}: {text[0][:_ERROR_CHARS] if text else ""}'


def _read(raw: bytes):
  import pydicom  # pylint: disable=g-import-not-at-top
  if raw[_PREFIX_AT:_PREFIX_AT + 4] != _PREFIX:
    raise image_file.ImageFileError(
        "not a DICOM file: no 'DICM' prefix at byte 128 (a .dcm file must "
        'be DICOM Part 10, as PACS export it)')
  try:
    return pydicom.dcmread(io.BytesIO(raw))
  except Exception as e:  # pylint: disable=broad-except
    raise image_file.ImageFileError(
        f'not a readable DICOM file ({_short(e)})') from None


def _check(ds, limits: options.ImageLimits) -> None:
  """What may be decoded, from the header alone."""
  if 'PixelData' not in ds:
    uid = ds.get('SOPClassUID')
    kind = f' ({getattr(uid, "name", uid)})' if uid else ''
    raise image_file.ImageFileError(
        f'not an image: a DICOM object without PixelData{kind}, such as a '
        'structured report')
  modality = str(ds.get('Modality') or '').strip().upper()
  if modality not in MODALITIES:
    found = f'Modality {modality!r}' if modality else 'no Modality'
    raise image_file.ImageFileError(
        f'{found}: only radiographs are read (Modality '
        f'{" or ".join(MODALITIES)})')
  frames = int(ds.get('NumberOfFrames') or 1)
  if frames != 1:
    raise image_file.ImageFileError(
        f'multi-frame DICOM ({frames} frames): one radiograph per file is '
        'read')
  photometric = str(ds.get('PhotometricInterpretation') or '').strip()
  samples = int(ds.get('SamplesPerPixel') or 1)
  if photometric not in _PHOTOMETRIC or samples != 1:
    raise image_file.ImageFileError(
        f'PhotometricInterpretation {photometric or "absent"!r} with '
        f'{samples} samples per pixel: only grayscale (MONOCHROME1 or '
        'MONOCHROME2) is read')
  image_file.check_size('dicom', int(ds.get('Rows') or 0),
                        int(ds.get('Columns') or 0), limits)


def _stored_extremes(ds):
  import numpy as np  # pylint: disable=g-import-not-at-top
  bits = int(ds.BitsStored)
  if int(ds.get('PixelRepresentation') or 0):
    return np.array([-(2**(bits - 1)), 2**(bits - 1) - 1], np.int64)
  return np.array([0, 2**bits - 1], np.int64)


def to_8bit(ds, stored):
  """The uint8 MONOCHROME2 pixels of a decoded single-frame dataset."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from pydicom import pixels as dicom_pixels  # pylint: disable=g-import-not-at-top
  modality = dicom_pixels.apply_modality_lut(stored, ds)
  values = dicom_pixels.apply_voi_lut(modality, ds)
  # pydicom returns its input unchanged when there is no VOI LUT or window.
  windowed = values is not modality
  if windowed or int(ds.BitsStored) <= 8:
    # The range the transforms can produce: the extremes of the stored
    # values pushed through them (a window clips to its own bounds).
    ends = dicom_pixels.apply_voi_lut(
        dicom_pixels.apply_modality_lut(_stored_extremes(ds), ds), ds)
  else:
    ends = values
  low, high = float(np.min(ends)), float(np.max(ends))
  scaled = (np.asarray(values, np.float64) - low) * (
      255.0 / (high - low) if high > low else 0.0)
  pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
  if str(ds.PhotometricInterpretation).strip() == 'MONOCHROME1':
    pixels = 255 - pixels  # MONOCHROME1 shows low values white
  return pixels


def encode_png(pixels) -> bytes:
  """Lossless 8-bit grayscale PNG of a 2-D uint8 array (no metadata)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.encode_png(pixels[..., None]).numpy()


def convert(raw: bytes,
            limits: options.ImageLimits = options.ImageLimits()
            ) -> DicomImage:
  """The PNG and PatientID of a DICOM file's bytes.

  Raises:
    image_file.ImageFileError: not DICOM, not a single-frame grayscale CR or
      DX image, beyond the size limits, or pixel data that does not decode;
      the message is the reason (it never quotes a tag's value).
  """
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    ds = _read(raw)
    try:
      _check(ds, limits)
      height, width = int(ds.Rows), int(ds.Columns)
      patient_id = str(ds.get('PatientID') or '').strip()
    except image_file.ImageFileError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise image_file.ImageFileError(
          f'malformed DICOM header ({_short(e)})') from None
    try:
      stored = ds.pixel_array
      if stored.shape != (height, width):
        raise ValueError(f'decoded shape {stored.shape}, header says '
                         f'{height} x {width}')
      pixels = to_8bit(ds, stored)
    except Exception as e:  # pylint: disable=broad-except
      syntax = getattr(ds.file_meta.get('TransferSyntaxUID'), 'name', '?')
      raise image_file.ImageFileError(
          f'DICOM pixel data does not decode ({syntax}; {_short(e)})'
      ) from None
  return DicomImage(encode_png(pixels), height, width, patient_id)
