"""DICOM files built in tests from real X-rays (../shared/data), the ways
scanners and PACS write them: MONOCHROME1 or 2, 8 or 16 bits with a rescale
and a window, RLE or JPEG 2000 compressed; and the ones ingestion refuses
(no PixelData, several frames, another modality).

Every file carries the fake identity of IDENTITY, so a test can look for its
values in every output and find none.
"""
import hashlib
import pathlib
from typing import Optional, Tuple

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom import uid as uids

from testing import images

# Tags that must never leave a file, with values no real output contains.
IDENTITY = {
    'PatientName': 'Quixbottle^Zenobia^Marigold',
    'PatientBirthDate': '19020304',
    'AccessionNumber': 'ACCZQ778899',
    'InstitutionName': 'Zenobia Quixbottle Memorial Infirmary',
    'ReferringPhysicianName': 'Vantablack^Ophelius',
    'OtherPatientIDs': 'OTHERZQ4455',
}
SYNTAXES = {'explicit': uids.ExplicitVRLittleEndian, 'rle': uids.RLELossless,
            'j2k': uids.JPEG2000Lossless}
_SOP = {'DX': uids.DigitalXRayImageStorageForPresentation,
        'CR': uids.ComputedRadiographyImageStorage,
        'CT': uids.CTImageStorage}


def gray(path: pathlib.Path) -> np.ndarray:
  """The 2-D uint8 pixels of a real JPEG, decoded as the model decodes it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  images.require_data(str(path))
  return tf.io.decode_jpeg(path.read_bytes(), channels=1).numpy()[..., 0]


def real_gray(index: int, label: str = 'NORMAL') -> Tuple[str, np.ndarray]:
  """(file name, pixels) of the index-th kermany-224 image of label."""
  folder = pathlib.Path(images.DATA_ROOT, 'kermany-224', 'chest_xray',
                        'train', label)
  images.require_data(str(folder))
  path = sorted(folder.glob('*.jpeg'))[index]
  return path.name, gray(path)


def dataset(pixels: np.ndarray, patient_id: Optional[str] = 'P-ZQ-0001',
            photometric: str = 'MONOCHROME2', modality: Optional[str] = 'DX',
            bits_stored: int = 8, rescale: Optional[Tuple[float, float]] = None,
            window: Optional[Tuple[float, float]] = None,
            frames: int = 1) -> Dataset:
  """A DICOM dataset holding `pixels` as stored values (uint8 or uint16;
  frames > 1 repeats them), with IDENTITY, and rescale (slope, intercept)
  and window (center, width) when given."""
  sop = _SOP.get(modality, _SOP['DX'])
  ds = Dataset()
  ds.file_meta = FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = sop
  instance = uids.generate_uid(entropy_srcs=[
      hashlib.sha256(pixels.tobytes()).hexdigest(), photometric, str(frames),
      str(modality)])
  ds.file_meta.MediaStorageSOPInstanceUID = instance
  ds.file_meta.TransferSyntaxUID = uids.ExplicitVRLittleEndian
  ds.SOPClassUID, ds.SOPInstanceUID = sop, instance
  for key, value in IDENTITY.items():
    setattr(ds, key, value)
  if patient_id is not None:
    ds.PatientID = patient_id
  if modality is not None:
    ds.Modality = modality
  ds.Rows, ds.Columns = pixels.shape
  ds.SamplesPerPixel = 1
  ds.PhotometricInterpretation = photometric
  ds.BitsAllocated = 8 if pixels.dtype == np.uint8 else 16
  ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
  ds.PixelRepresentation = 0
  if rescale is not None:
    ds.RescaleSlope, ds.RescaleIntercept = rescale
  if window is not None:
    ds.WindowCenter, ds.WindowWidth = window
  if frames > 1:
    ds.NumberOfFrames = frames
  ds.PixelData = np.ascontiguousarray(
      np.stack([pixels] * frames) if frames > 1 else pixels).tobytes()
  return ds


def write(ds: Dataset, path: pathlib.Path, syntax: str = 'explicit'
          ) -> pathlib.Path:
  """Writes ds as a DICOM Part 10 file, compressed for 'rle' or 'j2k'."""
  if syntax != 'explicit':
    ds.compress(SYNTAXES[syntax])
  path.parent.mkdir(parents=True, exist_ok=True)
  ds.save_as(path, enforce_file_format=True)
  return path


def report(path: pathlib.Path) -> Dataset:
  """A Basic Text structured report: DICOM without PixelData."""
  ds = Dataset()
  ds.file_meta = FileMetaDataset()
  ds.file_meta.MediaStorageSOPClassUID = uids.BasicTextSRStorage
  ds.file_meta.MediaStorageSOPInstanceUID = uids.generate_uid(
      entropy_srcs=['report'])
  ds.file_meta.TransferSyntaxUID = uids.ExplicitVRLittleEndian
  ds.SOPClassUID = uids.BasicTextSRStorage
  ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
  ds.Modality = 'SR'
  ds.PatientID = 'P-ZQ-0009'
  for key, value in IDENTITY.items():
    setattr(ds, key, value)
  path.parent.mkdir(parents=True, exist_ok=True)
  ds.save_as(path, enforce_file_format=True)
  return path


def windowed_16bit(pixels: np.ndarray, low: int = 20, high: int = 235
                   ) -> Tuple[Dataset, np.ndarray]:
  """A 16-bit dataset (rescale slope 0.5, intercept -50, a window over
  source values low..high) and the 8-bit pixels a viewer shows for it."""
  stored = (pixels.astype(np.uint16) * 64 + 100).astype(np.uint16)
  # Modality values: 0.5 * stored - 50 = 32 * source.
  center = 32 * (low + high) / 2 + 0.5
  width = 32 * (high - low) + 1
  ds = dataset(stored, bits_stored=16, rescale=(0.5, -50),
               window=(center, width))
  expected = np.clip(
      np.rint((pixels.astype(np.float64) - low) * 255 / (high - low)), 0, 255)
  return ds, expected.astype(np.uint8)


def appears(raw: bytes) -> list:
  """Which IDENTITY values appear in raw (they must not)."""
  return [value for value in IDENTITY.values()
          if value.encode() in raw or value.replace('^', ' ').encode() in raw]
