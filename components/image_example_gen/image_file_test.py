"""Tests of image_file: bounded reads of regular files only, and the header
checks ingestion and predict.py share (no decoding anywhere here)."""
import csv
import os
import struct

import pytest

from components.image_example_gen import image_file
from contract import options
from testing import hostile
from testing import images

pytestmark = pytest.mark.timeout(120)  # a FIFO opened would block

LIMITS = options.ImageLimits()


def _reason(raw, limits=LIMITS) -> str:
  with pytest.raises(image_file.ImageFileError) as info:
    image_file.check_header(raw, limits)
  return str(info.value)


@pytest.mark.parametrize('raw, expected', [
    (hostile.bomb_png(300, 200), ('png', 200, 300)),
    (hostile.gif_header(640, 480), ('gif', 480, 640)),
    (hostile.bmp_header(100, -80), ('bmp', 80, 100)),  # top-down rows
    (hostile.with_jpeg_size(hostile.jpeg(64, 64), 1200, 900),
     ('jpeg', 1200, 900)),
], ids=['png', 'gif', 'bmp', 'jpeg'])
def test_read_header_of_each_format_tensorflow_decodes(raw, expected):
  assert image_file.read_header(raw)[:3] == expected


def test_bytes_of_no_known_format_are_left_to_the_decoder():
  assert image_file.read_header(b'hello') is None
  assert image_file.check_header(b'', LIMITS) is None


@pytest.mark.parametrize('raw', [
    hostile.bomb_png(23000, 23000), hostile.gif_header(65535, 65535),
    hostile.bmp_header(30000, -30000),
    hostile.with_jpeg_size(hostile.jpeg(64, 64), 10000, 6000)],
                         ids=['png', 'gif', 'bmp', 'jpeg'])
def test_bombs_are_refused_from_the_header(raw):
  assert 'too many pixels' in _reason(raw)


def test_the_limits_are_inclusive_and_configurable():
  limits = options.ImageLimits(max_pixels=100 * 80, min_side=80)
  assert image_file.check_header(hostile.gif_header(100, 80), limits)
  assert 'too many pixels' in _reason(hostile.gif_header(101, 80), limits)
  assert 'too small: 100 x 79' in _reason(hostile.gif_header(100, 79), limits)
  assert 'too small: 1 x 1 pixels, below the minimum of 64' in _reason(
      hostile.png(1, 1))
  with pytest.raises(ValueError):
    options.ImageLimits(min_side=0)


@pytest.mark.parametrize('big_endian', [True, False])
def test_exif_orientation_other_than_upright_is_refused(big_endian):
  raw = hostile.jpeg(70, 70)
  for orientation in (0, 1, 9):  # upright, or invalid: shown as stored
    assert image_file.check_header(hostile.with_exif_orientation(
        raw, orientation, big_endian), LIMITS)
  for orientation in range(2, 9):
    reason = _reason(hostile.with_exif_orientation(raw, orientation,
                                                   big_endian))
    assert f'EXIF orientation {orientation}' in reason
    assert 'upright' in reason


def test_png_exif_chunk_orientation_is_read():
  raw = hostile.png(70, 70)
  tiff = (b'MM\0*' + struct.pack('>IH', 8, 1) +
          struct.pack('>HHIHH', 0x0112, 3, 1, 8, 0) + b'\0\0\0\0')
  exif = hostile.png_chunk(b'eXIf', tiff)
  rotated = raw[:33] + exif + raw[33:]  # after the signature and IHDR
  assert 'EXIF orientation 8' in _reason(rotated)


def test_a_jpeg_header_cut_before_its_frame_is_refused():
  raw = hostile.jpeg(70, 70)
  assert 'JPEG header cut short' in _reason(raw[:raw.index(b'\xff\xc0')])


def test_real_originals_headers_match_the_manifest():
  root = os.path.join(images.DATA_ROOT, 'kermany-original-sample')
  images.require_data(os.path.join(root, 'MANIFEST.csv'))
  with open(os.path.join(root, 'MANIFEST.csv'), newline='') as f:
    rows = list(csv.DictReader(f))
  for row in rows:
    with open(os.path.join(root, row['path']), 'rb') as f:
      header = image_file.check_header(f.read(), LIMITS)
    assert (header.height, header.width, header.orientation) == (
        int(row['height']), int(row['width']), 1), row['path']


# --- read_file ----------------------------------------------------------------

def _read_error(path, max_bytes=LIMITS.max_file_bytes) -> str:
  with pytest.raises(image_file.ImageFileError) as info:
    image_file.read_file(str(path), max_bytes)
  return str(info.value)


def test_read_file_reads_a_regular_file_and_follows_links(tmp_path):
  (tmp_path / 'a.jpeg').write_bytes(b'abc')
  (tmp_path / 'b.jpeg').symlink_to(tmp_path / 'a.jpeg')
  assert image_file.read_file(str(tmp_path / 'b.jpeg'), 3) == b'abc'


def test_read_file_refuses_what_is_not_a_regular_file(tmp_path):
  os.mkfifo(tmp_path / 'fifo.jpeg')
  assert 'a FIFO' in _read_error(tmp_path / 'fifo.jpeg')
  (tmp_path / 'zero.jpeg').symlink_to('/dev/zero')
  assert 'a character device (a link to /dev/zero)' in _read_error(
      tmp_path / 'zero.jpeg')
  (tmp_path / 'folder.jpeg').mkdir()
  assert 'a folder' in _read_error(tmp_path / 'folder.jpeg')
  (tmp_path / 'broken.jpeg').symlink_to('/nonexistent/x')
  assert _read_error(tmp_path / 'broken.jpeg') == (
      "unreadable: broken symbolic link (to '/nonexistent/x')")
  (tmp_path / 'self.jpeg').symlink_to('self.jpeg')
  assert 'symbolic link loop' in _read_error(tmp_path / 'self.jpeg')
  assert _read_error(tmp_path / 'missing.jpeg').startswith('unreadable: ')


def test_read_file_refuses_a_large_file_from_its_size(tmp_path):
  path = tmp_path / 'big.jpeg'
  with open(path, 'wb') as f:
    f.truncate(11)
  assert _read_error(path, 10).startswith('too large: 11 bytes, over the '
                                          'limit of 10')


def test_read_file_is_bounded_when_the_size_lies(tmp_path, monkeypatch):
  path = tmp_path / 'grows.jpeg'
  path.write_bytes(b'x' * 50)
  # As if stat had said the file was small (it grew, or a filesystem lies).
  monkeypatch.setattr(image_file, '_check_stat', lambda *args: None)
  assert 'though its size said less' in _read_error(path, 10)
