"""Class-conditional, reproducible augmentation of the cached train images.

Training caches `preprocessing.preprocess_image` tensors (float32 [S, S, 1] in
[0, 1]) once per run and augments only the train split, inside tf.data, after
the cache. `POLICIES` below is the one place that configures augmentation:
per class, the probability `p` and the magnitudes of each transform family.

Label-shortcut rule: both classes get exactly the same transform families
(checked by `validate_policies`, also at import); only probability and
magnitude differ. Geometric borders are filled by reflection, never with a
constant, and there is no noise, cut-out or flip: a transform that only one
class gets (or that leaves a tell-tale mark such as black rotation corners)
lets the model learn the augmentation instead of the lungs. Horizontal flips
are left out because they move the heart to the wrong side.

NORMAL (label 0) is the minority class and gets the stronger policy: every
probability is higher and every magnitude at least as large. PNEUMONIA's
ranges lie inside NORMAL's, and the gap is kept small and within the
natural spread of patient positioning and exposure, because only the outer
part of NORMAL's ranges (e.g. a 6-7 degree rotation) is still, weakly,
class-specific.

Reproducibility: each call derives its random state from (seed, index) only,
where `index` is the element's position in the repeated stream, so the
output does not depend on thread scheduling and every epoch gets new
randomness. Albumentations transforms keep mutable state (their RNGs and the
last parameters), so a call borrows a set of pipelines from a pool and no two
threads ever use the same one; the pool grows to the number of concurrent
calls. (threading.local does not work here: TensorFlow runs numpy_function in
threads Python does not own and discards their thread-local values after
every call, and building the pipelines costs ~0.8 ms, more than augmenting
one image.)

Measured cost at S=224 on the 2-core build machine (numpy 1.26, OpenCV 4.11,
albumentations 2.0.8), per image, one thread, including the per-call RNG
set-up (~0.02 ms) and the final clip: all three families applied (every p
set to 1) ~0.55 ms; real NORMAL policy ~0.42 ms; real PNEUMONIA policy
~0.27 ms. Affine (cv2.warpAffine) is the dominant cost (~0.25 ms), then
brightness/contrast (~0.12 ms) and gamma (~0.05 ms). In tf.data over cached
tensors (half NORMAL, half PNEUMONIA) the map costs ~0.50 ms per image
sequentially and ~0.42 ms wall time per image with
num_parallel_calls=AUTOTUNE (the identity map alone: ~0.06 ms); the Python
part holds the GIL, so two cores give little speed-up.

Typical use (train split only, after the cache)::

  augment_fn = augment.make_augment_fn(seed)
  ds = ds.repeat().enumerate().map(
      lambda i, xy: (augment_fn(xy[0], xy[1], i), xy[1]),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
"""
import copy
import queue
import random
from typing import Any, Callable, Dict, Mapping

import albumentations as A
import cv2
import numpy as np
import tensorflow as tf

from contract import names as constants

# Per class: {family: {'p': probability, <magnitude>: value, ...}}. Every
# magnitude is symmetric around "no change"; see `_FAMILY_BUILDERS` for how
# each one maps to albumentations arguments. Both classes must have the same
# families and parameter keys, and no magnitude may be negative.
POLICIES: Dict[str, Dict[str, Dict[str, float]]] = {
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

# Reflection keeps anatomy-like texture at the border instead of a constant.
BORDER_MODE = cv2.BORDER_REFLECT_101


def _affine(params: Mapping[str, float]) -> A.BasicTransform:
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


def _brightness_contrast(params: Mapping[str, float]) -> A.BasicTransform:
  """alpha * x + beta with alpha in 1 +- contrast, beta in +-brightness."""
  return A.RandomBrightnessContrast(
      brightness_limit=(-params['brightness'], params['brightness']),
      contrast_limit=(-params['contrast'], params['contrast']),
      brightness_by_max=True,
      p=params['p'])


def _gamma(params: Mapping[str, float]) -> A.BasicTransform:
  """x ** g with g in [1 - gamma, 1 + gamma] (albumentations uses percent)."""
  return A.RandomGamma(
      gamma_limit=(100.0 * (1.0 - params['gamma']),
                   100.0 * (1.0 + params['gamma'])),
      p=params['p'])


# Family name -> (parameter keys, builder). Also fixes the order in which the
# families are applied, the same for both classes.
_FAMILY_BUILDERS = {
    'affine': (('p', 'rotate', 'scale', 'translate'), _affine),
    'brightness_contrast': (('p', 'brightness', 'contrast'),
                            _brightness_contrast),
    'gamma': (('p', 'gamma'), _gamma),
}
FAMILIES = tuple(_FAMILY_BUILDERS)
_MAX_ROTATE_DEGREES = 30.0


def validate_policies(policies: Mapping[str, Mapping[str, Mapping[str, Any]]]
                     ) -> None:
  """Checks that `policies` cannot become a label shortcut.

  Args:
    policies: {class name: {family: {parameter: value}}}, like `POLICIES`.

  Raises:
    ValueError: if the classes are not exactly `constants.LABEL_NAMES`, the
      classes do not have exactly the same families and parameter keys, a
      family or parameter is unknown or missing, or a value is out of range.
  """
  if set(policies) != set(constants.LABEL_NAMES):
    raise ValueError(f'Policies must be given for exactly the classes '
                     f'{constants.LABEL_NAMES}, got {sorted(policies)}.')
  reference_name = constants.LABEL_NAMES[0]
  reference = policies[reference_name]
  for name in constants.LABEL_NAMES[1:]:
    if set(policies[name]) != set(reference):
      only = set(policies[name]) ^ set(reference)
      raise ValueError(
          f'Both classes must get the same transform families (only '
          f'probability and magnitude may differ); {reference_name} has '
          f'{sorted(reference)}, {name} has {sorted(policies[name])}; '
          f'not shared: {sorted(only)}.')
    for family in reference:
      if set(policies[name][family]) != set(reference[family]):
        raise ValueError(
            f'Family {family!r} must have the same parameters for both '
            f'classes; {reference_name} has {sorted(reference[family])}, '
            f'{name} has {sorted(policies[name][family])}.')
  unknown = set(reference) - set(_FAMILY_BUILDERS)
  if unknown:
    raise ValueError(f'Unknown transform families {sorted(unknown)}; known: '
                     f'{list(FAMILIES)}.')
  for name in constants.LABEL_NAMES:
    for family, params in policies[name].items():
      expected = set(_FAMILY_BUILDERS[family][0])
      if set(params) != expected:
        raise ValueError(f'{name}/{family}: parameters must be '
                         f'{sorted(expected)}, got {sorted(params)}.')
      for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
          raise ValueError(f'{name}/{family}/{key} must be a number, got '
                           f'{value!r}.')
        if key == 'p':
          valid, bounds = 0.0 <= value <= 1.0, '[0, 1]'
        elif key == 'rotate':
          valid = 0.0 <= value <= _MAX_ROTATE_DEGREES
          bounds = f'[0, {_MAX_ROTATE_DEGREES}]'
        else:  # a fraction of "no change"
          valid, bounds = 0.0 <= value < 1.0, '[0, 1)'
        if not valid:
          raise ValueError(f'{name}/{family}/{key}={value} is outside '
                           f'{bounds}.')


def build_pipelines(policies=POLICIES) -> Dict[int, A.Compose]:
  """One albumentations Compose per label value.

  Args:
    policies: {class name: {family: {parameter: value}}}, like `POLICIES`.

  Returns:
    {label value: Compose} for every label in `constants.LABEL_NAMES`; both
    Composes hold the same transform types in the same order.

  Raises:
    ValueError: if `validate_policies` rejects `policies`.
  """
  validate_policies(policies)
  pipelines = {}
  for label, name in enumerate(constants.LABEL_NAMES):
    transforms = [builder(policies[name][family])
                  for family, (_, builder) in _FAMILY_BUILDERS.items()
                  if family in policies[name]]
    pipelines[label] = A.Compose(transforms, p=1.0)
  return pipelines


def _call_random_state(seed: int, index: int):
  """numpy and Python RNGs that depend only on (seed, index)."""
  sequence = np.random.SeedSequence([seed, index])
  py_seed = int(sequence.generate_state(2, np.uint64)[1])
  return np.random.default_rng(sequence), random.Random(py_seed)


def _apply(compose: A.Compose, image: np.ndarray, seed: int,
           index: int) -> np.ndarray:
  """Runs `compose` with a random state that depends only on (seed, index)."""
  compose.set_random_state(*_call_random_state(seed, index))
  image = np.ascontiguousarray(image, dtype=np.float32)
  output = compose(image=image)['image']
  if output.shape != image.shape:
    raise ValueError(f'Augmentation changed the shape {image.shape} to '
                     f'{output.shape}.')
  return np.clip(output, 0.0, 1.0).astype(np.float32, copy=False)


def make_augment_fn(seed: int, policies=POLICIES
                   ) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
  """A tf.data map function applying the class's policy reproducibly.

  Args:
    seed: non-negative run seed.
    policies: {class name: {family: {parameter: value}}}, like `POLICIES`.

  Returns:
    `augment(image, label, index) -> image`: `image` float32 [S, S, 1] in
    [0, 1], `label` int64 scalar choosing the policy, `index` int64 scalar
    position of the element in the repeated stream. The result is float32,
    same shape, clipped to [0, 1], and depends only on (image, label, seed,
    index), so it is safe under `num_parallel_calls`.

  Raises:
    ValueError: if `seed` is negative or `policies` is rejected.
  """
  seed = int(seed)
  if seed < 0:
    raise ValueError(f'seed must be non-negative, got {seed}.')
  policies = copy.deepcopy(policies)  # later edits must not reach the pool
  validate_policies(policies)
  # Pipelines not in use. A call takes one (or builds one if all are busy)
  # and returns it afterwards, so no two threads ever share one.
  # threading.local would not work: TensorFlow runs numpy_function in threads
  # that Python does not own, and their thread state (holding the
  # thread-local values) is discarded after every call.
  idle = queue.SimpleQueue()

  def augment_numpy(image: np.ndarray, label: np.ndarray,
                    index: np.ndarray) -> np.ndarray:
    label, index = int(label), int(index)
    if label not in range(len(constants.LABEL_NAMES)):
      raise ValueError(f'No augmentation policy for label {label}.')
    if index < 0:
      raise ValueError(f'index must be non-negative, got {index}.')
    try:
      pipelines = idle.get_nowait()
    except queue.Empty:
      pipelines = build_pipelines(policies)
    try:
      output = _apply(pipelines[label], image, seed, index)
    finally:
      idle.put(pipelines)
    return output

  def augment(image: tf.Tensor, label: tf.Tensor,
              index: tf.Tensor) -> tf.Tensor:
    image = tf.convert_to_tensor(image, tf.float32)
    output = tf.numpy_function(
        augment_numpy,
        [image, tf.cast(label, tf.int64), tf.cast(index, tf.int64)],
        tf.float32, stateful=False, name='augment')
    return tf.ensure_shape(output, image.shape)

  return augment


validate_policies(POLICIES)
