"""Hostile image files built from their headers, for tests: decompression
bombs that declare far more pixels than they hold, and JPEGs with an EXIF
orientation. Each is a few hundred bytes; nothing here decodes them."""
import struct
import zlib

import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack('>I', len(data)) + kind + data +
          struct.pack('>I', zlib.crc32(kind + data)))


def bomb_png(width: int = 23000, height: int = 23000) -> bytes:
  """A valid PNG header declaring width x height 8-bit gray pixels, with a
  tiny zlib stream (decoding would allocate them all, then run short)."""
  return (b'\x89PNG\r\n\x1a\n' +
          png_chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 0,
                                         0, 0, 0)) +
          png_chunk(b'IDAT', zlib.compress(b'\0' * 1024)) +
          png_chunk(b'IEND', b''))


def gif_header(width: int, height: int) -> bytes:
  return b'GIF89a' + struct.pack('<HH', width, height) + b'\0\0\0;'


def bmp_header(width: int, height: int) -> bytes:
  """BITMAPFILEHEADER + BITMAPINFOHEADER (24-bit) with no pixels."""
  return (b'BM' + struct.pack('<IHHI', 54, 0, 0, 54) +
          struct.pack('<IiiHHIIiiII', 40, width, height, 1, 24, 0, 0, 2835,
                      2835, 0, 0))


def jpeg(height: int, width: int, channels: int = 1, seed: int = 0) -> bytes:
  """A real JPEG of random pixels (TensorFlow's encoder)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  pixels = np.random.default_rng(seed).integers(
      0, 256, (height, width, channels), np.uint8)
  return tf.io.encode_jpeg(pixels).numpy()


def png(height: int, width: int, channels: int = 1, seed: int = 0) -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  pixels = np.random.default_rng(seed).integers(
      0, 256, (height, width, channels), np.uint8)
  return tf.io.encode_png(pixels).numpy()


def with_jpeg_size(raw: bytes, height: int, width: int) -> bytes:
  """The JPEG with its frame header (SOF0) declaring height x width."""
  at = raw.index(b'\xff\xc0') + 5  # marker, length, precision
  return raw[:at] + struct.pack('>HH', height, width) + raw[at + 4:]


def with_exif_orientation(raw: bytes, orientation: int,
                          big_endian: bool = True) -> bytes:
  """The JPEG with an Exif APP1 segment right after SOI whose IFD0 holds
  only the Orientation tag."""
  order = '>' if big_endian else '<'
  tiff = ((b'MM\0*' if big_endian else b'II*\0') +
          struct.pack(order + 'IH', 8, 1) +
          struct.pack(order + 'HHIHH', 0x0112, 3, 1, orientation, 0) +
          struct.pack(order + 'I', 0))
  app1 = b'Exif\0\0' + tiff
  return (raw[:2] + b'\xff\xe1' + struct.pack('>H', len(app1) + 2) + app1 +
          raw[2:])
