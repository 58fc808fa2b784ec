"""An X-ray with its Grad-CAM heat map over it, as a PNG (matplotlib, Agg).

Shared by the run report's gallery and predict.py --explain; needs
TensorFlow (to decode) but not TFX, so predict.py stays light.
"""
import tensorflow as tf


def write_overlay(data: bytes, heat, title: str, target: str) -> None:
  """The image (gray, as decoded) with the heat map over it, as a PNG."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  image = tf.io.decode_image(data, channels=1,
                             expand_animations=False).numpy()[..., 0]
  height, width = image.shape
  figure = pyplot.figure(figsize=(4, 4.4), dpi=100)
  axes = figure.add_axes((0, 0, 1, 0.9))
  # The map covers the whole input the model saw (squashed to a square),
  # so it is stretched back over the original frame.
  extent = (0, width, height, 0)
  axes.imshow(image, cmap='gray', extent=extent)
  axes.imshow(heat, cmap='jet', alpha=0.4, vmin=0, vmax=1, extent=extent,
              interpolation='bilinear')
  axes.set_axis_off()
  figure.suptitle(title, fontsize=9)
  figure.savefig(target)
  pyplot.close(figure)
