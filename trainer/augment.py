"""Class-conditional, reproducible augmentation of the cached train images.

Training caches `preprocessing.preprocess_image` tensors (float32 [S, S, 1] in
[0, 1]) once per run and augments only the train split, inside tf.data, after
the cache.

Label-shortcut rule: both classes get exactly the same transform families
(checked by `validate_policies`, also at import); only probability and
magnitude differ. Geometric borders are filled by reflection, never with a
constant, and there is no noise, cut-out or flip: a transform that only one
class gets (or that leaves a tell-tale mark such as black rotation corners)
lets the model learn the augmentation instead of the lungs. Horizontal flips
are left out because they move the heart to the wrong side.

The policies (which families, per class, how strong) are in
augment_policies.py, by name: `anatomy` (the default: NORMAL, the minority
class, gets the stronger one) and `acquisition` (issue 10 §3).

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
import numpy as np
import tensorflow as tf

from contract import names as constants
from contract import options
from trainer import augment_families
from trainer import augment_policies

# The default policy (`anatomy`); every policy is in augment_policies.
POLICIES = augment_policies.ANATOMY

FAMILIES = augment_families.FAMILIES
_FAMILY_BUILDERS = augment_families.BUILDERS
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


def build_pipelines(policies=POLICIES, size: int = 224
                   ) -> Dict[int, A.Compose]:
  """One albumentations Compose per label value.

  Args:
    policies: {class name: {family: {parameter: value}}}, like `POLICIES`.
    size: side of the square images it will see (the crop resizes to it).

  Returns:
    {label value: Compose} for every label in `constants.LABEL_NAMES`; both
    Composes hold the same transform types in the same order.

  Raises:
    ValueError: if `validate_policies` rejects `policies`.
  """
  validate_policies(policies)
  pipelines = {}
  for label, name in enumerate(constants.LABEL_NAMES):
    transforms = [builder(policies[name][family], size)
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
  # One queue per image side (the crop resizes to it); setdefault is atomic.
  idle: Dict[int, queue.SimpleQueue] = {}

  def augment_numpy(image: np.ndarray, label: np.ndarray,
                    index: np.ndarray) -> np.ndarray:
    label, index = int(label), int(index)
    if label not in range(len(constants.LABEL_NAMES)):
      raise ValueError(f'No augmentation policy for label {label}.')
    if index < 0:
      raise ValueError(f'index must be non-negative, got {index}.')
    size = int(image.shape[0])
    pool = idle.setdefault(size, queue.SimpleQueue())
    try:
      pipelines = pool.get_nowait()
    except queue.Empty:
      pipelines = build_pipelines(policies, size)
    try:
      output = _apply(pipelines[label], image, seed, index)
    finally:
      pool.put(pipelines)
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


def policies_for(name: str):
  """The policy named by `TrainingSettings.augmentation_policy`."""
  if name not in augment_policies.BY_NAME:
    raise ValueError(f'unknown augmentation policy {name!r}; choose from '
                     f'{", ".join(augment_policies.BY_NAME)}')
  return augment_policies.BY_NAME[name]


assert tuple(augment_policies.BY_NAME) == options.AUGMENTATION_POLICIES
for _policy in augment_policies.BY_NAME.values():
  validate_policies(_policy)
