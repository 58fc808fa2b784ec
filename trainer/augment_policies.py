"""The augmentation policies, by name (`TrainingSettings.augmentation_policy`).

A policy is {class name: {family: {'p': probability, <magnitude>: value}}};
trainer/augment.py builds, validates and applies it. Every magnitude is
symmetric around "no change" (augment_families.py says how each
maps to albumentations arguments).

* `anatomy` (the default, the recipe before issue 10): patient positioning
  and exposure. NORMAL (label 0) is the minority class and gets the stronger
  policy: every probability is higher and every magnitude at least as large.
  PNEUMONIA's ranges lie inside NORMAL's, and the gap is kept small and
  within the natural spread of positioning and exposure, because only the
  outer part of NORMAL's ranges (e.g. a 6-7 degree rotation) is still,
  weakly, class-specific.
* `acquisition` (issue 10 §3): `anatomy`'s geometry plus what differs
  between sites and machines rather than between children: framing (a mild
  random resized crop), stronger contrast and gamma, detector/processing
  sharpness (blur or sharpen) and JPEG re-compression. These are the same
  for both classes, probability included: a JPEG artefact more frequent in
  one class would be a label cue.
"""
from typing import Dict

Policy = Dict[str, Dict[str, Dict[str, float]]]

ANATOMY: Policy = {
    'NORMAL': {
        # Rotation in degrees, scale and translation as fractions of the size.
        'affine': {'p': 0.8, 'rotate': 7.0, 'scale': 0.08, 'translate': 0.06},
        # Additive brightness and multiplicative contrast, +-limit.
        'brightness_contrast': {'p': 0.6, 'brightness': 0.15,
                                'contrast': 0.15},
        # Gamma in [1 - gamma, 1 + gamma].
        'gamma': {'p': 0.5, 'gamma': 0.2},
    },
    'PNEUMONIA': {
        'affine': {'p': 0.5, 'rotate': 5.0, 'scale': 0.05, 'translate': 0.04},
        'brightness_contrast': {'p': 0.3, 'brightness': 0.1, 'contrast': 0.1},
        'gamma': {'p': 0.3, 'gamma': 0.1},
    },
}


def _acquisition() -> Policy:
  shared = {
      # Crop of [1 - scale, 1] of the area, aspect ratio 1 +- aspect,
      # resized back to the input size.
      'resized_crop': {'p': 0.5, 'scale': 0.2, 'aspect': 0.1},
      # Exposure and processing curves differ by site more than by class.
      'brightness_contrast': {'p': 0.6, 'brightness': 0.15, 'contrast': 0.3},
      'gamma': {'p': 0.5, 'gamma': 0.35},
      # One of: Gaussian blur up to sigma = `sigma` x the image side, or
      # sharpening of strength up to `alpha`.
      'blur_sharpen': {'p': 0.4, 'sigma': 0.008, 'alpha': 0.3},
      # JPEG at quality 100 x (1 - quality_loss) to 95.
      'jpeg': {'p': 0.4, 'quality_loss': 0.6},
  }
  return {name: dict({'affine': dict(ANATOMY[name]['affine'])},
                     **{k: dict(v) for k, v in shared.items()})
          for name in ANATOMY}


ACQUISITION: Policy = _acquisition()

# name -> policy; the names are contract.options.AUGMENTATION_POLICIES.
BY_NAME: Dict[str, Policy] = {'anatomy': ANATOMY, 'acquisition': ACQUISITION}
