"""The one image preprocessing function of training, evaluation and serving.

Encoded JPEG/PNG bytes (grayscale or RGB, any size) -> float32
[image_size, image_size, 1] in [0, 1]. Every model takes this tensor; a model
that needs three channels (ResNet50) repeats the channel inside itself, so
one decoded, resized cache serves all architectures and a colour file can
never tell the model anything a grayscale one would not (in this dataset
only some PNEUMONIA originals are RGB). Original resolution and file size
are gone after this function.
"""
import tensorflow as tf

from contract import names as constants


def preprocess_image(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
  """Decodes, converts to grayscale, resizes and scales one image."""
  # Decode whatever ingestion accepted (JPEG, PNG, and BMP/GIF bytes under
  # such names), then keep luminance: RGB(A) -> gray, gray(+alpha) -> gray.
  image = tf.io.decode_image(image_bytes, channels=0, expand_animations=False)
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
