"""The augmentation transform families: each one's parameter keys and the
albumentations transform built from them (`builder(params, image side)`).

Which families a class gets, and how strongly, is a policy
(augment_policies.py); trainer/augment.py validates and applies them.
"""
from typing import Mapping

import albumentations as A
import cv2

# Reflection keeps anatomy-like texture at the border instead of a constant.
BORDER_MODE = cv2.BORDER_REFLECT_101


def _affine(params: Mapping[str, float], _: int) -> A.BasicTransform:
  """Rotation, isotropic scale and independent x/y translation."""
  scale, shift = params['scale'], params['translate']
  return A.Affine(
      rotate=(-params['rotate'], params['rotate']),
      scale=(1.0 - scale, 1.0 + scale),
      keep_ratio=True,
      translate_percent={'x': (-shift, shift), 'y': (-shift, shift)},
      shear=0.0,
      interpolation=cv2.INTER_LINEAR,
      border_mode=BORDER_MODE,
      p=params['p'])


def _brightness_contrast(params: Mapping[str, float], _: int
                        ) -> A.BasicTransform:
  """alpha * x + beta with alpha in 1 +- contrast, beta in +-brightness."""
  return A.RandomBrightnessContrast(
      brightness_limit=(-params['brightness'], params['brightness']),
      contrast_limit=(-params['contrast'], params['contrast']),
      brightness_by_max=True,
      p=params['p'])


def _gamma(params: Mapping[str, float], _: int) -> A.BasicTransform:
  """x ** g with g in [1 - gamma, 1 + gamma] (albumentations uses percent)."""
  return A.RandomGamma(
      gamma_limit=(100.0 * (1.0 - params['gamma']),
                   100.0 * (1.0 + params['gamma'])),
      p=params['p'])


def _resized_crop(params: Mapping[str, float], size: int
                  ) -> A.BasicTransform:
  """A crop of [1 - scale, 1] of the area, aspect 1 +- aspect, resized back:
  framing and collimation differ between sites."""
  return A.RandomResizedCrop(
      size=(size, size), scale=(1.0 - params['scale'], 1.0),
      ratio=(1.0 - params['aspect'], 1.0 + params['aspect']),
      interpolation=cv2.INTER_LINEAR, p=params['p'])


def _blur_sharpen(params: Mapping[str, float], size: int
                 ) -> A.BasicTransform:
  """Detector and post-processing sharpness: one of a Gaussian blur (sigma
  up to `sigma` x the side, so the same at any image size) or sharpening."""
  sigma = max(0.3, params['sigma'] * size)
  return A.OneOf([
      A.GaussianBlur(blur_limit=0, sigma_limit=(0.3, sigma), p=1.0),
      A.Sharpen(alpha=(0.05, max(0.05, params['alpha'])),
                lightness=(1.0, 1.0), p=1.0),
  ], p=params['p'])


def _jpeg(params: Mapping[str, float], _: int) -> A.BasicTransform:
  """Re-compression at quality 100 x (1 - quality_loss) to 95."""
  lowest = min(95, int(round(100.0 * (1.0 - params['quality_loss']))))
  return A.ImageCompression(compression_type='jpeg',
                            quality_range=(max(1, lowest), 95), p=params['p'])


# Family name -> (parameter keys, builder(params, image side)). Also fixes
# the order in which the families are applied, the same for both classes:
# framing, then geometry, intensity, sharpness, and compression last.
BUILDERS = {
    'resized_crop': (('p', 'scale', 'aspect'), _resized_crop),
    'affine': (('p', 'rotate', 'scale', 'translate'), _affine),
    'brightness_contrast': (('p', 'brightness', 'contrast'),
                            _brightness_contrast),
    'gamma': (('p', 'gamma'), _gamma),
    'blur_sharpen': (('p', 'sigma', 'alpha'), _blur_sharpen),
    'jpeg': (('p', 'quality_loss'), _jpeg),
}
FAMILIES = tuple(BUILDERS)
