"""Reading one image file safely, and what its header declares.

The one implementation shared by ingestion (`inspection`, `encoding`) and
`predict.py`, so a file is refused for the same reason by both:

* `read_file`: only regular files are read (a FIFO would block forever, a
  link to /dev/zero never ends), never more than a size cap, judged from
  stat before opening and again from the open file (it may have been
  swapped), and read bounded (in case the size lies).
* `check_header`: from the header alone, before any decode, the declared
  pixel count (a decompression bomb), the smallest side, and the EXIF
  orientation, which TensorFlow's decoders ignore (the model would see other
  pixels than a viewer shows). The serving graph cannot parse EXIF, so such
  images are refused rather than rotated here and not there.

Formats are told apart by the same leading bytes as `tf.io.decode_image`
(JPEG, PNG, GIF, BMP); a DICOM file goes through the same `read_file`, and
`dicom.py` applies `check_size` to its Rows and Columns. Pure Python;
TensorFlow only for URIs (gs://...).
"""
import errno
import os
import stat
import struct
from typing import NamedTuple, Optional

from contract import options

_LIMITS = 'contract.options.ImageLimits'


class ImageFileError(ValueError):
  """A file that is not read or not used; str() is the reason."""


class Header(NamedTuple):
  format: str  # 'jpeg', 'png', 'gif' or 'bmp'
  height: int
  width: int
  orientation: int = 1  # EXIF Orientation; 1 (upright) when absent


# --- reading ------------------------------------------------------------------

_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
          (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISSOCK, 'a socket'))


def _linked(path: str) -> str:
  return (f' (a link to {os.path.realpath(path)})' if os.path.islink(path)
          else '')


def _check_stat(path: str, info: os.stat_result, max_bytes: int) -> None:
  if not stat.S_ISREG(info.st_mode):
    kind = next((name for test, name in _KINDS if test(info.st_mode)),
                'not a regular file')
    raise ImageFileError(f'not a regular file: {kind}{_linked(path)}; only '
                         'regular files are read')
  if info.st_size > max_bytes:
    raise ImageFileError(
        f'too large: {info.st_size:,} bytes, over the limit of '
        f'{max_bytes:,} ({_LIMITS}.max_file_bytes); not read')


def _os_reason(path: str, error: OSError) -> str:
  if error.errno == errno.ENOENT and os.path.islink(path):
    return f'unreadable: broken symbolic link (to {os.readlink(path)!r})'
  if error.errno == errno.ELOOP:
    return 'unreadable: symbolic link loop'
  return f'unreadable: {error.strerror or error}'


def _read_uri(path: str, max_bytes: int) -> bytes:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    size = tf.io.gfile.stat(path).length
    if size > max_bytes:
      raise ImageFileError(
          f'too large: {size:,} bytes, over the limit of {max_bytes:,} '
          f'({_LIMITS}.max_file_bytes); not read')
    with tf.io.gfile.GFile(path, 'rb') as f:
      return _bounded(f.read(max_bytes + 1), max_bytes)
  except tf.errors.OpError as e:
    text = (e.message or type(e).__name__).strip().splitlines()
    raise ImageFileError(f'unreadable: {text[0] if text else e}') from None


def _bounded(raw: bytes, max_bytes: int) -> bytes:
  if len(raw) > max_bytes:
    raise ImageFileError(f'too large: more than {max_bytes:,} bytes read '
                         f'({_LIMITS}.max_file_bytes), though its size said '
                         'less')
  return raw


def read_file(path: str, max_bytes: int) -> bytes:
  """The bytes of the regular file at path (links followed), at most
  max_bytes.

  Raises:
    ImageFileError: missing, a broken link, not a regular file, too large,
      or unreadable; the message is the reason.
  """
  if '://' in path:
    return _read_uri(path, max_bytes)
  try:
    # Judged before opening: opening a FIFO blocks, opening a device can do
    # things.
    _check_stat(path, os.stat(path), max_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
  except OSError as e:
    raise ImageFileError(_os_reason(path, e)) from None
  with os.fdopen(fd, 'rb') as f:
    # The file opened may not be the one stat saw (swapped in between).
    _check_stat(path, os.fstat(f.fileno()), max_bytes)
    return _bounded(f.read(max_bytes + 1), max_bytes)


# --- headers ------------------------------------------------------------------

# Start-of-frame markers (every SOFn but DHT, JPG and DAC), which carry the
# frame's height and width.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset([0x01, *range(0xD0, 0xD8)])  # TEM, RSTn
_EXIF_ORIENTATION_TAG = 0x0112
# What a viewer does with each EXIF Orientation before showing the image.
_SHOWN = {2: 'mirrored', 3: 'turned 180°', 4: 'flipped upside down',
          5: 'mirrored and turned 90°', 6: 'turned 90° clockwise',
          7: 'mirrored and turned 90°', 8: 'turned 90° counter-clockwise'}


def _tiff_orientation(tiff: bytes) -> int:
  """The Orientation tag of IFD0 of an Exif TIFF block; 1 when absent."""
  order = {b'II*\0': '<', b'MM\0*': '>'}.get(tiff[:4])
  if order is None:
    return 1
  try:
    (ifd,) = struct.unpack_from(order + 'I', tiff, 4)
    (count,) = struct.unpack_from(order + 'H', tiff, ifd)
    for i in range(count):
      entry = ifd + 2 + 12 * i
      tag, kind = struct.unpack_from(order + 'HH', tiff, entry)
      if tag == _EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
        return struct.unpack_from(order + 'H', tiff, entry + 8)[0]
  except struct.error:  # cut short: viewers show such a file as stored
    pass
  return 1


def _jpeg(raw: bytes) -> Header:
  """Scans segments as libjpeg does (fill bytes and stray bytes skipped)
  up to the first start of frame."""
  pos, orientation = 2, None
  while True:
    pos = raw.find(b'\xff', pos)
    while 0 <= pos < len(raw) and raw[pos] == 0xFF:
      pos += 1
    if pos < 0 or pos + 3 > len(raw):
      break
    marker, pos = raw[pos], pos + 1
    if marker == 0 or marker in _JPEG_NO_LENGTH:
      continue
    if marker in (0xD9, 0xDA):  # EOI, SOS: the image data with no frame
      break
    (length,) = struct.unpack_from('>H', raw, pos)
    segment = raw[pos + 2:pos + length]
    if marker in _JPEG_SOF and len(segment) >= 5:
      height, width = struct.unpack_from('>HH', segment, 1)
      return Header('jpeg', height, width, orientation or 1)
    if (marker == 0xE1 and orientation is None
        and segment.startswith(b'Exif\0\0')):
      orientation = _tiff_orientation(segment[6:])
    pos += max(length, 2)
  raise ImageFileError('JPEG header cut short or malformed (no frame size '
                       'before the image data)')


def _png(raw: bytes) -> Header:
  if len(raw) < 24 or raw[12:16] != b'IHDR':
    raise ImageFileError('PNG header cut short or malformed (no IHDR)')
  width, height = struct.unpack_from('>II', raw, 16)
  # An eXIf chunk, if any, comes before the first IDAT.
  pos, orientation = 8, 1
  while pos + 8 <= len(raw):
    length, kind = struct.unpack_from('>I4s', raw, pos)
    if kind == b'IDAT':
      break
    if kind == b'eXIf':
      orientation = _tiff_orientation(raw[pos + 8:pos + 8 + length])
      break
    pos += 12 + length
  return Header('png', height, width, orientation)


def _gif(raw: bytes) -> Header:
  if len(raw) < 10:
    raise ImageFileError('GIF header cut short')
  width, height = struct.unpack_from('<HH', raw, 6)
  return Header('gif', height, width)


def _bmp(raw: bytes) -> Header:
  if len(raw) < 26:
    raise ImageFileError('BMP header cut short')
  width, height = struct.unpack_from('<ii', raw, 18)
  return Header('bmp', abs(height), abs(width))  # negative height: top-down


def read_header(raw: bytes) -> Optional[Header]:
  """What the header of a JPEG, PNG, GIF or BMP declares; None for bytes of
  no format TensorFlow decodes (its decoder rejects them).

  Raises:
    ImageFileError: one of those formats, with a header cut short.
  """
  for magic, parse in ((b'\xff\xd8\xff', _jpeg), (b'\x89PNG', _png),
                       (b'GIF8', _gif), (b'BM', _bmp)):
    if raw.startswith(magic):
      return parse(raw)
  return None


def check_size(kind: str, height: int, width: int,
               limits: options.ImageLimits) -> None:
  """The pixel cap and the minimum side, from what a header declares (kind:
  'jpeg', ..., or 'dicom', whose Rows and Columns are checked here too).

  Raises:
    ImageFileError: more pixels than limits.max_pixels, or a side below
      limits.min_side.
  """
  size = f'{width} x {height}'
  pixels = width * height
  if pixels > limits.max_pixels:
    raise ImageFileError(
        f'too many pixels: the {kind.upper()} header declares '
        f'{size} = {pixels:,}, over the limit of {limits.max_pixels:,} '
        f'({_LIMITS}.max_pixels); not decoded (a decompression bomb?)')
  if min(width, height) < limits.min_side:
    raise ImageFileError(
        f'too small: {size} pixels, below the minimum of {limits.min_side} '
        f'px a side ({_LIMITS}.min_side)')


def check_header(raw: bytes, limits: options.ImageLimits) -> Optional[Header]:
  """The header, if the image may be decoded and used; None if no format
  is recognised (the decoder will say why).

  Raises:
    ImageFileError: more pixels than limits.max_pixels, a side below
      limits.min_side, an EXIF orientation other than upright, or a header
      cut short.
  """
  header = read_header(raw)
  if header is None:
    return None
  check_size(header.format, header.height, header.width, limits)
  if header.orientation in _SHOWN:
    raise ImageFileError(
        f'EXIF orientation {header.orientation}: viewers show this image '
        f'{_SHOWN[header.orientation]}, but TensorFlow decodes the stored '
        'pixels, so the model would see another picture; save it upright '
        '(EXIF orientation 1, or none)')
  return header
