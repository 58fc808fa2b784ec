"""Tests of trainer.preprocessing: the one decode/resize/scale function.

Synthetic images are encoded with TensorFlow from numpy arrays; two real
originals (one grayscale, one 3-channel) are read in place from the shared
data folder.
"""
import struct

import numpy as np
import pytest
import tensorflow as tf

from contract import names as constants
from testing.images import original
from trainer import preprocessing

SIZE = 32


def _gradient(height: int = 60, width: int = 50) -> np.ndarray:
  """A smooth uint8 grayscale image [height, width, 1] with a wide range."""
  rows = np.linspace(0, 255, height)[:, None]
  cols = np.linspace(0, 255, width)[None, :]
  return ((rows + cols) / 2).astype(np.uint8)[..., None]


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
  encode = tf.io.encode_png if fmt == 'png' else tf.io.encode_jpeg
  return encode(tf.constant(pixels)).numpy()


def _check_image(image: tf.Tensor, size: int = SIZE) -> np.ndarray:
  assert image.dtype == tf.float32
  assert image.shape == (size, size, 1)
  values = image.numpy()
  assert values.min() >= 0.0 and values.max() <= 1.0
  assert values.max() > values.min()  # an image, not a constant
  return values


_GRAY = _gradient()
_RGB = np.concatenate([_GRAY, 255 - _GRAY, _GRAY // 2], axis=-1)
_RGBA = np.concatenate([_RGB, np.full_like(_GRAY, 200)], axis=-1)


@pytest.mark.parametrize('pixels, fmt', [
    (_GRAY, 'jpeg'), (_RGB, 'jpeg'), (_GRAY, 'png'), (_RGB, 'png'),
    (_RGBA, 'png')], ids=['gray-jpeg', 'rgb-jpeg', 'gray-png', 'rgb-png',
                          'rgba-png'])
def test_synthetic_images_give_float_gray_square_in_unit_range(pixels, fmt):
  raw = _encode(pixels, fmt)
  for size in (SIZE, 48):
    values = _check_image(preprocessing.preprocess_image(raw, size), size)
    # Resizing by area averaging keeps the overall brightness.
    gray = (pixels if pixels.shape[-1] == 1 else
            tf.image.rgb_to_grayscale(pixels[..., :3]).numpy())
    assert values.mean() == pytest.approx(
        float(np.mean(gray)) / 255.0, abs=0.03)


def test_gradient_direction_survives():
  """Dark top-left and bright bottom-right stay where they are."""
  values = _check_image(preprocessing.preprocess_image(
      _encode(_GRAY, 'png'), SIZE))
  assert values[0, 0, 0] < 0.1 and values[-1, -1, 0] > 0.9


@pytest.mark.parametrize('channels', [1, 3])
def test_real_originals_give_float_gray_square_in_unit_range(channels):
  path = original(channels)
  raw = path.read_bytes()
  decoded = tf.io.decode_image(raw, expand_animations=False)
  assert decoded.shape[-1] == channels  # the file is what MANIFEST says
  assert min(decoded.shape[:2]) > 4 * SIZE
  _check_image(preprocessing.preprocess_image(raw, SIZE))
  _check_image(preprocessing.preprocess_image(tf.constant(raw), 48), 48)


@pytest.mark.parametrize('fmt', ['jpeg', 'png'])
def test_rgb_with_equal_channels_matches_grayscale(fmt):
  """Colour alone cannot tell the model anything (no label shortcut)."""
  noise = np.random.default_rng(3).integers(0, 256, (45, 37, 1), np.uint8)
  for gray in (_GRAY, noise):
    from_gray = preprocessing.preprocess_image(_encode(gray, fmt), SIZE)
    from_rgb = preprocessing.preprocess_image(
        _encode(np.repeat(gray, 3, axis=-1), fmt), SIZE)
    np.testing.assert_allclose(from_rgb.numpy(), from_gray.numpy(),
                               atol=1.5 / 255)
  if fmt == 'png':  # lossless: also an opaque RGBA copy
    rgba = np.concatenate([np.repeat(_GRAY, 3, axis=-1),
                           np.full_like(_GRAY, 255)], axis=-1)
    np.testing.assert_allclose(
        preprocessing.preprocess_image(_encode(rgba, fmt), SIZE).numpy(),
        preprocessing.preprocess_image(_encode(_GRAY, fmt), SIZE).numpy(),
        atol=1e-6)


def test_real_three_channel_original_matches_its_grayscale_png():
  raw = original(3).read_bytes()
  pixels = tf.io.decode_image(raw, channels=3, expand_animations=False)
  gray_png = tf.io.encode_png(pixels[..., :1]).numpy()
  rgb_png = tf.io.encode_png(pixels).numpy()
  expected = preprocessing.preprocess_image(gray_png, SIZE).numpy()
  np.testing.assert_allclose(
      preprocessing.preprocess_image(raw, SIZE).numpy(), expected,
      atol=1.5 / 255)
  np.testing.assert_allclose(
      preprocessing.preprocess_image(rgb_png, SIZE).numpy(), expected,
      atol=1.5 / 255)


def test_preprocess_batch_equals_stacked_preprocess_image():
  noise = np.random.default_rng(5).integers(0, 256, (40, 30, 3), np.uint8)
  raws = [_encode(_GRAY, 'jpeg'), _encode(noise, 'png'), _encode(_RGBA, 'png'),
          _encode(255 - _gradient(20, 90), 'jpeg'), original(1).read_bytes(),
          original(3).read_bytes()]
  batch = preprocessing.preprocess_batch(tf.constant(raws), SIZE)
  assert batch.dtype == tf.float32
  assert batch.shape == (len(raws), SIZE, SIZE, 1)
  expected = np.stack([preprocessing.preprocess_image(raw, SIZE).numpy()
                       for raw in raws])
  np.testing.assert_array_equal(batch.numpy(), expected)
  # Each image keeps its own content: no two rows are the same.
  flat = batch.numpy().reshape(len(raws), -1)
  assert len({row.tobytes() for row in flat}) == len(raws)


def _example(features) -> bytes:
  feature = {}
  for key, value in features.items():
    if isinstance(value, bytes):
      feature[key] = tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[value]))
    else:
      feature[key] = tf.train.Feature(
          int64_list=tf.train.Int64List(value=[value]))
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def test_parse_examples_returns_bytes_and_labels():
  raws = [_encode(_GRAY, 'jpeg'), _encode(_RGB, 'png'), b'\x00\x01raw']
  labels = [constants.NORMAL, constants.PNEUMONIA, constants.PNEUMONIA]
  serialized = [
      _example({constants.IMAGE_KEY: raw, constants.LABEL_KEY: label,
                constants.PATIENT_ID_KEY: b'person1'})
      for raw, label in zip(raws, labels)]
  image_bytes, parsed_labels = preprocessing.parse_examples(
      tf.constant(serialized))
  assert image_bytes.dtype == tf.string and parsed_labels.dtype == tf.int64
  assert image_bytes.numpy().tolist() == raws
  assert parsed_labels.numpy().tolist() == labels


def test_parse_examples_without_label_gives_minus_one():
  """Serving requests carry no label; parsing must still work."""
  raw = _encode(_GRAY, 'png')
  image_bytes, labels = preprocessing.parse_examples(
      tf.constant([_example({constants.IMAGE_KEY: raw})]))
  assert image_bytes.numpy().tolist() == [raw]
  assert labels.numpy().tolist() == [-1]


def test_parse_examples_without_image_raises():
  with pytest.raises(tf.errors.InvalidArgumentError):
    preprocessing.parse_examples(
        tf.constant([_example({constants.LABEL_KEY: 1})]))


@pytest.mark.parametrize('raw', [
    b'not an image at all', b'', b'\x89PNG\r\n\x1a\n garbage',
    _encode(_GRAY, 'jpeg')[:40]], ids=['text', 'empty', 'bad-png',
                                       'truncated-jpeg'])
def test_undecodable_bytes_raise_invalid_argument(raw):
  with pytest.raises(tf.errors.InvalidArgumentError):
    preprocessing.preprocess_image(tf.constant(raw), SIZE)
  with pytest.raises(tf.errors.InvalidArgumentError):
    preprocessing.preprocess_batch(
        tf.constant([_encode(_GRAY, 'png'), raw]), SIZE)


def _bmp(height: int = 8, width: int = 8) -> bytes:
  """A valid 24-bit BMP (TensorFlow cannot encode one; the header is
  written by hand: BITMAPFILEHEADER + BITMAPINFOHEADER, bottom-up rows)."""
  row = (width * 3 + 3) // 4 * 4
  pixels = np.random.default_rng(7).integers(0, 256, row * height,
                                             np.uint8).tobytes()
  file_header = b'BM' + struct.pack('<IHHI', 54 + len(pixels), 0, 0, 54)
  info_header = struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0,
                            len(pixels), 2835, 2835, 0, 0)
  return file_header + info_header + pixels


# A 1x1 GIF89a (TensorFlow cannot encode GIF either).
_GIF = (b'GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04'
        b'\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D'
        b'\x01\x00;')


@pytest.mark.parametrize('raw', [_bmp(), _GIF], ids=['bmp', 'gif'])
def test_whatever_ingestion_accepts_preprocesses(raw):
  # Imported here only: Beam and TFX take seconds to import.
  from components.image_example_gen import executor  # pylint: disable=g-import-not-at-top
  height, width, _ = executor.decode_shape(raw)  # ingestion keeps the file
  assert height and width
  image = preprocessing.preprocess_image(raw, SIZE)
  assert image.shape == (SIZE, SIZE, 1) and image.dtype == tf.float32


# --- equalize_histogram (intensity_normalisation='equalize') -----------------
def _real_batch():
  images = [preprocessing.preprocess_image(
      tf.io.read_file(str(original(channels))), SIZE) for channels in (1, 3)]
  return tf.stack(images)


def test_equalize_histogram_spans_the_unit_range_with_a_flat_histogram():
  batch = _real_batch()
  equalized = preprocessing.equalize_histogram(batch).numpy()
  assert equalized.shape == batch.shape and equalized.dtype == np.float32
  for image in equalized:
    assert image.min() == 0.0 and image.max() == pytest.approx(1.0)
    # Flat: each quarter of the range holds about a quarter of the pixels.
    counts, _ = np.histogram(image, bins=4, range=(0.0, 1.0))
    assert counts.min() > 0.15 * image.size, counts


def test_equalize_histogram_ignores_exposure_contrast_and_gamma():
  batch = _real_batch()
  reference = preprocessing.equalize_histogram(batch).numpy()
  for changed in (0.2 + 0.5 * batch, batch ** 0.6, batch ** 1.8):
    np.testing.assert_allclose(
        preprocessing.equalize_histogram(changed).numpy(), reference,
        atol=2.0 / (SIZE * SIZE))


def test_equalize_histogram_works_image_by_image():
  batch = _real_batch()
  alone = preprocessing.equalize_histogram(batch[1:]).numpy()
  together = preprocessing.equalize_histogram(batch).numpy()
  np.testing.assert_array_equal(alone, together[1:])


def test_equalize_histogram_of_a_constant_image_is_zero():
  constant = tf.fill([1, SIZE, SIZE, 1], 0.4)
  assert not np.any(preprocessing.equalize_histogram(constant).numpy())


# --- decompression bombs: refused from the header, before decoding ----------
def _header_samples():
  from testing import hostile  # pylint: disable=g-import-not-at-top
  small = hostile.jpeg(64, 64)
  return [small, hostile.png(70, 66, 3), _bmp(), _GIF,
          hostile.with_jpeg_size(small, 8000, 9000),
          hostile.bomb_png(23000, 23000), hostile.gif_header(65535, 65535),
          hostile.bmp_header(30000, -30000), b'not an image', b'']


def test_declared_pixels_agree_with_ingestion_header_check():
  # Imported here only: this test module otherwise needs no components.
  from components.image_example_gen import image_file  # pylint: disable=g-import-not-at-top
  for raw in _header_samples():
    header = image_file.read_header(raw)
    expected = 0 if header is None else header.height * header.width
    assert int(preprocessing.declared_pixels(tf.constant(raw))) == expected


def test_a_bomb_is_refused_before_decoding():
  from testing import hostile  # pylint: disable=g-import-not-at-top
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='header declares more than 50000000 pixels'):
    preprocessing.preprocess_image(hostile.bomb_png(23000, 23000), SIZE)
  raw = _encode(_GRAY, 'png')  # 60 x 50
  assert preprocessing.preprocess_image(raw, SIZE, max_pixels=3000).shape == (
      SIZE, SIZE, 1)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=constants.IMAGE_REFUSED):
    preprocessing.preprocess_image(raw, SIZE, max_pixels=2999)


# --- clahe and crop_border (intensity_normalisation='clahe', border_crop) ----
def _clahe_batch(side=64):
  images = [preprocessing.preprocess_image(
      tf.io.read_file(str(original(channels))), side) for channels in (1, 3)]
  return tf.stack(images)


def test_clahe_agrees_with_opencv_on_real_images():
  """OpenCV's CLAHE (same 8x8 regions and clip limit 2) as the reference;
  the two differ only in rounding of the clipped histogram."""
  import cv2  # pylint: disable=import-outside-toplevel
  batch = _clahe_batch()
  ours = preprocessing.clahe(batch).numpy()[..., 0]
  for image, mine in zip(batch.numpy()[..., 0], ours):
    gray = np.round(image * 255).astype(np.uint8)
    reference = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(
        gray) / 255.0
    assert np.abs(mine - reference).mean() < 0.03
    assert np.corrcoef(mine.ravel(), reference.ravel())[0, 1] > 0.99
    assert 0.0 <= mine.min() and mine.max() <= 1.0


def test_clahe_is_local_and_limited():
  """A dark half and a bright half are each stretched within their own
  regions (a global equalisation could not lift the dark half's contrast
  without flattening the bright one); a flat image stays nearly flat."""
  rng = np.random.default_rng(0)
  image = np.concatenate([0.1 + 0.02 * rng.random((64, 32)),
                          0.8 + 0.02 * rng.random((64, 32))], axis=1)
  out = preprocessing.clahe(image[None, ..., None].astype(np.float32))
  out = out.numpy()[0, ..., 0]
  assert out[:, 4:28].std() > 3 * image[:, 4:28].std()
  assert out[:, 36:60].std() > 3 * image[:, 36:60].std()
  flat = preprocessing.clahe(np.full((1, 64, 64, 1), 0.5, np.float32))
  assert np.ptp(flat.numpy()) < 1e-6


def test_clahe_refuses_a_side_the_regions_do_not_divide():
  with pytest.raises(ValueError, match='multiple of 8'):
    preprocessing.clahe(tf.zeros([1, 60, 60, 1]))


def test_crop_border_keeps_the_centre_at_the_same_size():
  side = 40
  image = np.zeros((1, side, side, 1), np.float32)
  image[:, 4:36, 4:36] = 1.0  # a 4-pixel dark frame
  cropped = preprocessing.crop_border(image, 0.125).numpy()
  assert cropped.shape == image.shape
  assert cropped.min() == pytest.approx(1.0)  # the frame is gone
  np.testing.assert_array_equal(preprocessing.crop_border(image, 0.0), image)
  with pytest.raises(ValueError, match='border fraction'):
    preprocessing.crop_border(image, 0.5)
