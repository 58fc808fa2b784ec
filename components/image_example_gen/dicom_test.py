"""dicom.convert on DICOM files built from a real X-ray: each way a scanner
stores the pixels gives back the source image; each file ingestion must
refuse is refused, from its header, with its reason; no identifying tag but
PatientID comes out."""
import numpy as np
import pytest
import tensorflow as tf

from components.image_example_gen import dicom
from components.image_example_gen import image_file
from testing import dicom as built


@pytest.fixture(scope='module')
def source():
  return built.real_gray(0)[1]


def _pixels(png: bytes) -> np.ndarray:
  return tf.io.decode_png(png).numpy()[..., 0].astype(int)


def _convert(ds, tmp_path, syntax='explicit'):
  path = built.write(ds, tmp_path / f'{syntax}.dcm', syntax)
  raw = path.read_bytes()
  assert built.appears(raw)  # the file does carry the identity
  return dicom.convert(raw)


@pytest.mark.parametrize('photometric, syntax', [
    ('MONOCHROME2', 'explicit'), ('MONOCHROME1', 'explicit'),
    ('MONOCHROME2', 'rle'), ('MONOCHROME1', 'j2k')])
def test_8bit_files_give_back_the_source_pixels(source, tmp_path,
                                                photometric, syntax):
  stored = source if photometric == 'MONOCHROME2' else 255 - source
  image = _convert(built.dataset(stored, photometric=photometric), tmp_path,
                   syntax)
  assert (image.height, image.width) == source.shape
  assert np.array_equal(_pixels(image.png), source)


@pytest.mark.parametrize('syntax', ['explicit', 'j2k'])
def test_16bit_rescale_and_window_are_applied(source, tmp_path, syntax):
  ds, expected = built.windowed_16bit(source)
  got = _pixels(_convert(ds, tmp_path, syntax).png)
  assert np.abs(got - expected).max() <= 1
  # The window matters: without it the picture differs.
  assert np.abs(got - source).max() > 10


def test_without_a_window_a_deep_image_spans_0_to_255(source, tmp_path):
  stored = source.astype(np.uint16) * 4 + 1000  # 12-bit values, no window
  got = _pixels(_convert(built.dataset(stored, bits_stored=12), tmp_path).png)
  low, high = int(source.min()), int(source.max())
  span = (source.astype(float) - low) * 255 / (high - low)
  assert np.abs(got - span).max() <= 1


def test_conversion_is_deterministic(source, tmp_path):
  raw = built.write(built.dataset(source), tmp_path / 'a.dcm').read_bytes()
  assert dicom.convert(raw).png == dicom.convert(raw).png


def test_only_patient_id_leaves_the_file(source, tmp_path):
  image = _convert(built.dataset(source, patient_id='  MRN-0042 '), tmp_path)
  assert image.patient_id == 'MRN-0042'
  assert not built.appears(image.png)
  image = _convert(built.dataset(source, patient_id=None), tmp_path)
  assert image.patient_id == ''


def _refused(tmp_path, name, ds=None, raw=None):
  if ds is not None:
    raw = built.write(ds, tmp_path / name).read_bytes()
  with pytest.raises(image_file.ImageFileError) as info:
    dicom.convert(raw)
  assert not built.appears(str(info.value).encode())
  return str(info.value)


def test_refused_files_say_why(source, tmp_path):
  reason = lambda name, ds: _refused(tmp_path, name, ds)  # noqa: E731
  assert 'without PixelData (Basic Text SR Storage)' in _refused(
      tmp_path, '', raw=built.report(tmp_path / 'sr.dcm').read_bytes())
  assert 'multi-frame DICOM (3 frames)' in reason(
      'frames.dcm', built.dataset(source, frames=3))
  assert "Modality 'CT'" in reason('ct.dcm',
                                   built.dataset(source, modality='CT'))
  assert "Modality 'RG'" in reason('rg.dcm',
                                   built.dataset(source, modality='RG'))
  assert 'no Modality' in reason('none.dcm',
                                 built.dataset(source, modality=None))
  jpeg = tf.io.encode_jpeg(source[..., None]).numpy()
  assert "no 'DICM' prefix" in _refused(tmp_path, '', raw=jpeg)
  raw = built.write(built.dataset(source), tmp_path / 'cut.dcm').read_bytes()
  assert 'pixel data does not decode' in _refused(tmp_path, '',
                                                  raw=raw[:-20000])


def test_size_limits_are_judged_from_rows_and_columns(source, tmp_path):
  small = built.dataset(source[:40])
  assert 'too small: 224 x 40 pixels' in _refused(tmp_path, 's.dcm', small)
  # A header declaring 8000 x 8000 over 224 x 224 pixels is refused as a
  # bomb, before the pixel data is looked at (else: 'does not decode').
  bomb = built.dataset(source)
  bomb.Rows = bomb.Columns = 8000
  assert 'declares 8000 x 8000 = 64,000,000' in _refused(tmp_path, 'b.dcm',
                                                         bomb)


@pytest.mark.parametrize('name, raw, expected', [
    ('x.dcm', b'', True), ('X.DCM', b'', True),
    ('IM-1-1.jpeg', b'\0' * 128 + b'DICM', True),
    ('IM-1-1.jpeg', b'\xff\xd8\xff' + b'\0' * 200, False)])
def test_is_dicom(name, raw, expected):
  assert dicom.is_dicom(name, raw) is expected
