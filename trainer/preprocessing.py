"""The one image preprocessing function of training, evaluation and serving.

Encoded JPEG/PNG bytes (grayscale or RGB, any size) -> float32
[image_size, image_size, 1] in [0, 1]. Every model takes this tensor; a model
that needs three channels (ResNet50) repeats the channel inside itself, so
one decoded, resized cache serves all architectures and a colour file can
never tell the model anything a grayscale one would not (in this dataset
only some PNEUMONIA originals are RGB). Original resolution and file size
are gone after this function.

Before decoding, the pixel count the header declares is checked (TF ops,
so it runs inside the SavedModel too): a request with a decompression bomb
fails with INVALID_ARGUMENT instead of exhausting the server's memory.
"""
import tensorflow as tf

from contract import names as constants
from contract import options

_MAX_PIXELS = options.ImageLimits().max_pixels


def _be_uint32(head: tf.Tensor, pos: int) -> tf.Tensor:
  """Two big-endian uint32 at pos, as int64 (decode_raw has no uint32)."""
  halves = tf.cast(tf.io.decode_raw(tf.strings.substr(head, pos, 8),
                                    tf.uint16, little_endian=False), tf.int64)
  return halves[0::2] * 65536 + halves[1::2]


def _le(head: tf.Tensor, pos: int, dtype) -> tf.Tensor:
  """Two little-endian integers of dtype at pos, as int64."""
  size = dtype.size * 2
  return tf.cast(tf.io.decode_raw(tf.strings.substr(head, pos, size), dtype),
                 tf.int64)


def declared_pixels(image_bytes: tf.Tensor) -> tf.Tensor:
  """Height x width (int64) that the header of one JPEG, PNG, GIF or BMP
  declares, read without decoding; 0 for other bytes (the decoder refuses
  them). The same fields, told apart by the same leading bytes, as
  components/image_example_gen/image_file.read_header, which ingestion and
  predict.py use (preprocessing_test holds them equal)."""
  # Padded, so a short input reads zeros rather than failing here.
  head = tf.strings.substr(image_bytes, 0, 26) + b'\0' * 26

  def jpeg():
    shape = tf.cast(tf.image.extract_jpeg_shape(image_bytes), tf.int64)
    return shape[0] * shape[1]

  def product(sides):
    def pixels():
      values = sides()
      return tf.abs(values[0] * values[1])  # BMP: negative height, top-down
    return pixels

  starts = lambda magic: tf.equal(tf.strings.substr(head, 0, len(magic)),
                                  magic)
  return tf.case([
      (starts(b'\xff\xd8\xff'), jpeg),
      (starts(b'\x89PNG'), product(lambda: _be_uint32(head, 16))),
      (starts(b'GIF8'), product(lambda: _le(head, 6, tf.uint16))),
      (starts(b'BM'), product(lambda: _le(head, 18, tf.int32))),
  ], default=lambda: tf.constant(0, tf.int64))


def preprocess_image(image_bytes: tf.Tensor, image_size: int,
                     max_pixels: int = _MAX_PIXELS) -> tf.Tensor:
  """Decodes, converts to grayscale, resizes and scales one image.

  Raises (InvalidArgumentError, in the serving graph an INVALID_ARGUMENT
  answer): the header declares more than max_pixels; not decoded.
  """
  refuse_bomb = tf.debugging.assert_less_equal(
      declared_pixels(image_bytes), tf.constant(max_pixels, tf.int64),
      message=(f'{constants.IMAGE_REFUSED}: its header declares more than '
               f'{max_pixels} pixels (contract.options.ImageLimits.'
               'max_pixels); not decoded'), summarize=1)
  # Decode whatever ingestion accepted (JPEG, PNG, and BMP/GIF bytes under
  # such names), then keep luminance: RGB(A) -> gray, gray(+alpha) -> gray.
  with tf.control_dependencies([refuse_bomb]):
    image = tf.io.decode_image(image_bytes, channels=0,
                               expand_animations=False)
  image = tf.cond(tf.shape(image)[-1] >= 3,
                  lambda: tf.image.rgb_to_grayscale(image[..., :3]),
                  lambda: image[..., :1])
  image = tf.image.resize(tf.cast(image, tf.float32), (image_size, image_size),
                          method=tf.image.ResizeMethod.AREA)
  image = tf.ensure_shape(image / 255.0, (image_size, image_size, 1))
  return image


def equalize_histogram(images: tf.Tensor) -> tf.Tensor:
  """Per-image histogram equalisation of float images [batch, S, S, 1].

  Each pixel becomes the fraction of its image's pixels at or below it (the
  image's own cumulative histogram), shifted so the darkest pixels are 0 and
  scaled to [0, 1]: the result does not change under any increasing change
  of exposure, contrast or gamma of the input. A constant image becomes 0.
  TF ops only (sort and searchsorted), so it runs inside the model and hence
  inside the exported serving graph.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  shape = tf.shape(images)
  flat = tf.reshape(images, [shape[0], -1])
  ordered = tf.sort(flat, axis=-1)
  at_or_below = tf.searchsorted(ordered, flat, side='right')
  cdf = tf.cast(at_or_below, tf.float32) / tf.cast(tf.shape(flat)[1],
                                                    tf.float32)
  darkest = tf.reduce_min(cdf, axis=-1, keepdims=True)
  equalized = (cdf - darkest) / tf.maximum(1.0 - darkest, 1e-6)
  return tf.reshape(equalized, shape)


def clahe(images: tf.Tensor, tiles: int = 8,
          clip_limit: float = 2.0) -> tf.Tensor:
  """Contrast-limited adaptive histogram equalisation of float images
  [batch, S, S, 1] in [0, 1] (S a multiple of `tiles`), in TF ops.

  Each of tiles x tiles regions gets its own 256-bin histogram, clipped at
  clip_limit times the flat bin height (the excess spread evenly: noise in
  flat regions is not amplified), whose cumulative sum maps intensities; a
  pixel's value is the bilinear blend of the maps of the four nearest
  region centres, so no seams. Local rather than global: a dense mediastinum
  and an over-exposed lung edge are each stretched within their own region.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  side = images.shape[1]
  if side is None or side % tiles or images.shape[2] != side:
    raise ValueError(f'clahe needs square images whose side is a multiple '
                     f'of {tiles}, got {images.shape}')
  cell = side // tiles
  batch = tf.shape(images)[0]
  levels = tf.cast(tf.round(tf.clip_by_value(images[..., 0], 0.0, 1.0)
                            * 255.0), tf.int32)
  regions = tf.reshape(levels, [batch, tiles, cell, tiles, cell])
  regions = tf.reshape(tf.transpose(regions, [0, 1, 3, 2, 4]),
                       [-1, cell * cell])
  counts = tf.cast(tf.math.bincount(regions, minlength=256, maxlength=256,
                                    axis=-1), tf.float32)
  # A whole count, at least 1, as OpenCV's cv2.createCLAHE counts it.
  limit = float(max(int(clip_limit * cell * cell / 256.0), 1))
  excess = tf.reduce_sum(tf.nn.relu(counts - limit), -1, keepdims=True)
  counts = tf.minimum(counts, limit) + excess / 256.0
  maps = tf.cumsum(counts, axis=-1) / float(cell * cell)
  maps = tf.reshape(maps, [batch, tiles * tiles * 256])
  # Position of each pixel between region centres, clamped at the edges.
  where = (tf.range(side, dtype=tf.float32) + 0.5) / cell - 0.5
  low = tf.clip_by_value(tf.floor(where), 0.0, tiles - 1.0)
  high = tf.minimum(low + 1.0, tiles - 1.0)
  weight = tf.clip_by_value(where - low, 0.0, 1.0)
  low, high = tf.cast(low, tf.int32), tf.cast(high, tf.int32)

  def look_up(rows, cols):
    region = rows[:, None] * tiles + cols[None, :]
    index = region[None] * 256 + levels
    return tf.gather(maps, tf.reshape(index, [batch, -1]), batch_dims=1)

  wy = tf.reshape(weight[:, None] + tf.zeros([1, side]), [1, -1])
  wx = tf.reshape(tf.zeros([side, 1]) + weight[None, :], [1, -1])
  top = (1 - wx) * look_up(low, low) + wx * look_up(low, high)
  bottom = (1 - wx) * look_up(high, low) + wx * look_up(high, high)
  return tf.reshape((1 - wy) * top + wy * bottom, [batch, side, side, 1])


def crop_border(images: tf.Tensor, fraction: float) -> tf.Tensor:
  """The central part of images [batch, S, S, C], `fraction` of the side cut
  from each edge (where markers, text and collimation sit), resized back to
  S x S."""
  if not 0.0 <= fraction < 0.5:
    raise ValueError(f'border fraction must be in [0, 0.5), got {fraction}')
  images = tf.convert_to_tensor(images, tf.float32)
  if fraction == 0.0:
    return images
  batch = tf.shape(images)[0]
  box = tf.constant([[fraction, fraction, 1.0 - fraction, 1.0 - fraction]])
  cropped = tf.image.crop_and_resize(
      images, tf.tile(box, [batch, 1]), tf.range(batch),
      tf.shape(images)[1:3], method='bilinear')
  return tf.ensure_shape(cropped, images.shape)  # keep the static side


def parse_examples(serialized: tf.Tensor):
  """Image bytes and labels of a batch of serialized tf.Examples."""
  features = tf.io.parse_example(serialized, {
      constants.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
      constants.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
  })
  return features[constants.IMAGE_KEY], features[constants.LABEL_KEY]


def preprocess_batch(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  """`preprocess_image` over a batch of encoded images."""
  return tf.map_fn(lambda b: preprocess_image(b, image_size), image_bytes,
                   fn_output_signature=tf.TensorSpec(
                       (image_size, image_size, 1), tf.float32))
