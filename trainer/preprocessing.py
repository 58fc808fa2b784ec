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
