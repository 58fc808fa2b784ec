"""Tests for trainer.augment: class choice, reproducibility, borders, policy."""
import copy

import albumentations as A
import cv2
import numpy as np
import pytest
import tensorflow as tf

from contract import names as constants
from contract import options
from trainer import augment
from trainer import augment_families
from trainer import augment_policies

_SIZE = 64
_NORMAL_NAME = constants.LABEL_NAMES[constants.NORMAL]
_PNEUMONIA_NAME = constants.LABEL_NAMES[constants.PNEUMONIA]
_FORBIDDEN = ('noise', 'dropout', 'cutout', 'erasing', 'masking', 'flip',
              'saltandpepper', 'salt_and_pepper', 'gridmask')


def _image(size=_SIZE, seed=0):
  """A textured [size, size, 1] float32 image in [0.2, 0.9], no zero pixel."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:size, 0:size] / (size - 1)
  image = 0.2 + 0.4 * x * (1.0 - y) + 0.3 * rng.random((size, size))
  return image[..., None].astype(np.float32)


def _with_p(policies, p_by_name):
  """A copy of `policies` with every probability of a class replaced."""
  policies = copy.deepcopy(policies)
  for name, p in p_by_name.items():
    for params in policies[name].values():
      params['p'] = p
  return policies


_ALWAYS = _with_p(augment.POLICIES, {_NORMAL_NAME: 1.0, _PNEUMONIA_NAME: 1.0})


def _run(fn, image, label, index):
  return fn(tf.constant(image), tf.constant(label, tf.int64),
            tf.constant(index, tf.int64)).numpy()


def _map(dataset, fn, **kwargs):
  return dataset.map(lambda i, xy: (i, fn(xy[0], xy[1], i)), **kwargs)


# --- policy configuration -----------------------------------------------------

def test_policies_cover_both_classes_with_the_same_families():
  assert set(augment.POLICIES) == set(constants.LABEL_NAMES)
  families = [set(augment.POLICIES[name]) for name in constants.LABEL_NAMES]
  assert families[0] == families[1] == {'affine', 'brightness_contrast',
                                        'gamma'}
  for family in families[0]:
    assert (set(augment.POLICIES[_NORMAL_NAME][family]) ==
            set(augment.POLICIES[_PNEUMONIA_NAME][family]))
  augment.validate_policies(augment.POLICIES)  # does not raise


def test_normal_policy_is_at_least_as_strong_and_somewhere_stronger():
  normal = augment.POLICIES[_NORMAL_NAME]
  pneumonia = augment.POLICIES[_PNEUMONIA_NAME]
  pairs = [(family, key, normal[family][key], pneumonia[family][key])
           for family in normal for key in normal[family]]
  weaker = [pair for pair in pairs if pair[2] < pair[3]]
  assert not weaker, f'NORMAL weaker than PNEUMONIA in {weaker}'
  assert any(n > p for _, _, n, p in pairs)
  # Every probability is strictly higher for NORMAL, the minority class.
  assert all(n > p for _, key, n, p in pairs if key == 'p')


def test_build_pipelines_wires_policy_values_and_reflection():
  pipelines = augment.build_pipelines()
  assert set(pipelines) == {constants.NORMAL, constants.PNEUMONIA}
  types = {label: [type(t) for t in compose.transforms]
           for label, compose in pipelines.items()}
  assert types[0] == types[1] == [A.Affine, A.RandomBrightnessContrast,
                                  A.RandomGamma]
  for label, name in enumerate(constants.LABEL_NAMES):
    policy = augment.POLICIES[name]
    affine, brightness_contrast, gamma = pipelines[label].transforms
    assert affine.border_mode == cv2.BORDER_REFLECT_101
    assert affine.p == policy['affine']['p']
    assert affine.rotate == pytest.approx(
        (-policy['affine']['rotate'], policy['affine']['rotate']))
    shift = policy['affine']['translate']
    assert affine.translate_percent['x'] == pytest.approx((-shift, shift))
    assert affine.scale['x'] == pytest.approx(
        (1 - policy['affine']['scale'], 1 + policy['affine']['scale']))
    assert brightness_contrast.p == policy['brightness_contrast']['p']
    assert brightness_contrast.contrast_limit == pytest.approx(
        (-policy['brightness_contrast']['contrast'],
         policy['brightness_contrast']['contrast']))
    assert gamma.p == policy['gamma']['p']
    assert gamma.gamma_limit == pytest.approx(
        (100 * (1 - policy['gamma']['gamma']),
         100 * (1 + policy['gamma']['gamma'])))


def test_no_noise_cutout_or_flip_transform_in_either_policy():
  names = [family.lower() for name in constants.LABEL_NAMES
           for family in augment.POLICIES[name]]
  for compose in augment.build_pipelines().values():
    names += [type(t).__name__.lower() for t in compose.transforms]
  assert len(names) == 12
  found = [(name, word) for name in names for word in _FORBIDDEN
           if word in name]
  assert not found


def _drop_family(policies):
  del policies[_PNEUMONIA_NAME]['gamma']


def _add_one_class_cutout(policies):
  policies[_NORMAL_NAME]['coarse_dropout'] = {'p': 0.5}


def _add_one_class_parameter(policies):
  policies[_NORMAL_NAME]['affine']['shear'] = 5.0


def _drop_parameter_both(policies):
  for name in constants.LABEL_NAMES:
    del policies[name]['affine']['translate']


def _add_unknown_family_both(policies):
  for name in constants.LABEL_NAMES:
    policies[name]['gauss_noise'] = {'p': 0.1}


def _drop_class(policies):
  del policies[_PNEUMONIA_NAME]


def _bad_probability(policies):
  policies[_NORMAL_NAME]['gamma']['p'] = 1.5


def _negative_magnitude(policies):
  policies[_PNEUMONIA_NAME]['brightness_contrast']['brightness'] = -0.1


def _string_magnitude(policies):
  policies[_PNEUMONIA_NAME]['affine']['rotate'] = '5'


@pytest.mark.parametrize('mutate, message', [
    (_drop_family, 'same transform families'),
    (_add_one_class_cutout, 'same transform families'),
    (_add_one_class_parameter, 'same parameters'),
    (_drop_parameter_both, 'parameters must be'),
    (_add_unknown_family_both, 'Unknown transform families'),
    (_drop_class, 'exactly the classes'),
    (_bad_probability, 'outside'),
    (_negative_magnitude, 'outside'),
    (_string_magnitude, 'must be a number'),
])
def test_policy_check_rejects(mutate, message):
  policies = copy.deepcopy(augment.POLICIES)
  mutate(policies)
  with pytest.raises(ValueError, match=message):
    augment.validate_policies(policies)
  with pytest.raises(ValueError, match=message):
    augment.build_pipelines(policies)
  with pytest.raises(ValueError, match=message):
    augment.make_augment_fn(0, policies)


def test_policy_check_accepts_a_family_both_classes_leave_out():
  policies = copy.deepcopy(augment.POLICIES)
  for name in constants.LABEL_NAMES:
    del policies[name]['gamma']
  pipelines = augment.build_pipelines(policies)
  assert [type(t) for t in pipelines[1].transforms] == [
      A.Affine, A.RandomBrightnessContrast]


# --- augment function ---------------------------------------------------------

@pytest.mark.parametrize('active', [constants.NORMAL, constants.PNEUMONIA])
def test_pipeline_is_chosen_by_label(active):
  active_name = constants.LABEL_NAMES[active]
  idle_name = constants.LABEL_NAMES[1 - active]
  fn = augment.make_augment_fn(
      3, _with_p(augment.POLICIES, {active_name: 1.0, idle_name: 0.0}))
  image = _image()
  for index in range(6):
    changed = _run(fn, image, active, index)
    unchanged = _run(fn, image, 1 - active, index)
    assert np.abs(changed - image).max() > 0.01
    np.testing.assert_array_equal(unchanged, image)


@pytest.mark.parametrize('size', [64, 224])
@pytest.mark.parametrize('label', [constants.NORMAL, constants.PNEUMONIA])
def test_shape_dtype_and_range_are_kept(size, label):
  image = _image(size)
  image[:size // 4] = 1.0  # saturated and black areas, so clipping matters
  image[-size // 4:] = 0.0
  fn = augment.make_augment_fn(5, _ALWAYS)
  for index in range(4):
    output = _run(fn, image, label, index)
    assert output.shape == (size, size, 1)
    assert output.dtype == np.float32
    assert output.min() >= 0.0 and output.max() <= 1.0
    assert not np.array_equal(output, image)
  dataset = tf.data.Dataset.from_tensor_slices(
      (image[None], np.array([label], np.int64))).enumerate()
  element_spec = _map(dataset, fn).element_spec[1]
  assert element_spec.shape == (size, size, 1)
  assert element_spec.dtype == tf.float32


def test_same_seed_and_index_give_identical_output():
  image = _image()
  fn = augment.make_augment_fn(11, _ALWAYS)
  other_fn = augment.make_augment_fn(11, _ALWAYS)  # a fresh pipeline pool
  for label in (constants.NORMAL, constants.PNEUMONIA):
    first = _run(fn, image, label, 7)
    np.testing.assert_array_equal(_run(fn, image, label, 7), first)
    np.testing.assert_array_equal(_run(other_fn, image, label, 7), first)
    _run(fn, image, label, 8)  # other calls in between change nothing
    np.testing.assert_array_equal(_run(fn, image, label, 7), first)


def test_different_index_or_seed_gives_different_output():
  image = _image()
  fn = augment.make_augment_fn(11, _ALWAYS)
  for label in (constants.NORMAL, constants.PNEUMONIA):
    outputs = [_run(fn, image, label, index) for index in range(8)]
    for i in range(len(outputs)):
      for j in range(i):
        assert np.abs(outputs[i] - outputs[j]).max() > 1e-3, (i, j)
    other_seed = _run(augment.make_augment_fn(12, _ALWAYS), image, label, 0)
    assert np.abs(other_seed - outputs[0]).max() > 1e-3


def test_real_policies_vary_with_index():
  image = _image()
  fn = augment.make_augment_fn(0)
  for label in (constants.NORMAL, constants.PNEUMONIA):
    outputs = [_run(fn, image, label, index) for index in range(12)]
    distinct = {output.tobytes() for output in outputs}
    assert len(distinct) >= 8


def test_parallel_tf_data_map_is_deterministic():
  count, epochs = 16, 2
  images = np.stack([_image(seed=s) for s in range(count)])
  labels = np.arange(count, dtype=np.int64) % 2
  dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
  dataset = dataset.repeat(epochs).enumerate()
  fn = augment.make_augment_fn(2024, _ALWAYS)

  def collect(**kwargs):
    return {int(i): x.numpy() for i, x in _map(dataset, fn, **kwargs)}

  first = collect(num_parallel_calls=4, deterministic=True)
  second = collect(num_parallel_calls=4, deterministic=True)
  sequential = collect()
  unordered = collect(num_parallel_calls=4, deterministic=False)
  assert sorted(first) == list(range(count * epochs))
  for index in first:
    np.testing.assert_array_equal(second[index], first[index])
    np.testing.assert_array_equal(sequential[index], first[index])
    np.testing.assert_array_equal(unordered[index], first[index])
  for index in range(count):  # the same image gets new randomness each epoch
    assert np.abs(first[index] - first[index + count]).max() > 1e-3
    assert np.abs(first[index] - images[index]).max() > 1e-3


def _geometry_only(rotate, translate):
  """Only the affine family, always on, with the given magnitudes."""
  policies = _with_p(augment.POLICIES, {_NORMAL_NAME: 0.0,
                                        _PNEUMONIA_NAME: 0.0})
  for name in constants.LABEL_NAMES:
    policies[name]['affine'].update(p=1.0, rotate=rotate, translate=translate)
  return policies


def test_borders_are_reflected_not_black(monkeypatch):
  image = _image()
  assert image.min() > 0.0
  policies = _geometry_only(rotate=25.0, translate=0.1)

  def outputs():
    fn = augment.make_augment_fn(9, policies)
    return [_run(fn, image, label, index)
            for label in (constants.NORMAL, constants.PNEUMONIA)
            for index in range(10)]

  reflected = outputs()
  for output in reflected:
    assert np.abs(output - image).max() > 0.01  # the geometry did change
    assert output.min() > 0.0, 'a constant (black) border appeared'
  # The same draws with a constant fill would leave black pixels, so the
  # test above can fail.
  monkeypatch.setattr(augment_families, 'BORDER_MODE', cv2.BORDER_CONSTANT)
  constant = outputs()
  black_corners = [np.any(output[[0, 0, -1, -1], [0, -1, 0, -1]] == 0.0)
                   for output in constant]
  assert sum(black_corners) >= len(constant) // 2


def test_real_policies_never_produce_black_pixels():
  image = _image(seed=4)
  fn = augment.make_augment_fn(1, _ALWAYS)
  for label in (constants.NORMAL, constants.PNEUMONIA):
    for index in range(10):
      assert _run(fn, image, label, index).min() > 0.0


def test_rejects_bad_seed_and_label():
  with pytest.raises(ValueError, match='seed'):
    augment.make_augment_fn(-1)
  fn = augment.make_augment_fn(0)
  with pytest.raises(ValueError, match='No augmentation policy'):
    _run(fn, _image(), -1, 0)  # eagerly the Python error comes through
  dataset = tf.data.Dataset.from_tensor_slices(
      (_image()[None], np.array([-1], np.int64))).enumerate()
  with pytest.raises(tf.errors.OpError, match='No augmentation policy'):
    list(_map(dataset, fn))


# --- named policies: acquisition (issue 10 §3) --------------------------------

_ACQUISITION = augment.policies_for('acquisition')
_ACQUISITION_ALWAYS = _with_p(_ACQUISITION, {_NORMAL_NAME: 1.0,
                                             _PNEUMONIA_NAME: 1.0})
_ACQUISITION_ONLY = ('resized_crop', 'blur_sharpen', 'jpeg')


def test_named_policies_are_the_declared_ones():
  assert tuple(augment_policies.BY_NAME) == options.AUGMENTATION_POLICIES
  assert augment.policies_for('anatomy') is augment.POLICIES
  with pytest.raises(ValueError, match='unknown augmentation policy'):
    augment.policies_for('cutmix')


def test_acquisition_gives_both_classes_the_same_families_and_values():
  augment.validate_policies(_ACQUISITION)  # the label-shortcut rule holds
  normal, pneumonia = _ACQUISITION[_NORMAL_NAME], _ACQUISITION[_PNEUMONIA_NAME]
  assert set(normal) == set(pneumonia) == set(augment.FAMILIES)
  assert set(augment.POLICIES[_NORMAL_NAME]) < set(normal)
  # Acquisition differences are not the class's: identical, probability too.
  for family in set(normal) - {'affine'}:
    assert normal[family] == pneumonia[family], family
  for name in constants.LABEL_NAMES:  # anatomy's geometry is kept
    assert _ACQUISITION[name]['affine'] == augment.POLICIES[name]['affine']
  names = [type(t).__name__.lower() for compose in
           augment.build_pipelines(_ACQUISITION, 64).values()
           for t in compose.transforms] + list(normal)
  assert not [(n, w) for n in names for w in _FORBIDDEN if w in n]


def test_acquisition_pipelines_wire_the_crop_size_and_ranges():
  pipelines = augment.build_pipelines(_ACQUISITION, 96)
  types = {label: [type(t) for t in compose.transforms]
           for label, compose in pipelines.items()}
  assert types[0] == types[1] == [
      A.RandomResizedCrop, A.Affine, A.RandomBrightnessContrast,
      A.RandomGamma, A.OneOf, A.ImageCompression]
  crop, *_, blur_sharpen, jpeg = pipelines[0].transforms
  assert tuple(crop.size) == (96, 96)
  assert crop.scale == pytest.approx((0.8, 1.0))
  assert [type(t) for t in blur_sharpen.transforms] == [A.GaussianBlur,
                                                        A.Sharpen]
  assert tuple(jpeg.quality_range) == (40, 95)


@pytest.mark.parametrize('size', [64, 128])
def test_acquisition_keeps_shape_dtype_and_range_and_changes_images(size):
  image = _image(size)
  fn = augment.make_augment_fn(5, _ACQUISITION_ALWAYS)
  for label in (constants.NORMAL, constants.PNEUMONIA):
    for index in range(3):
      output = _run(fn, image, label, index)
      assert output.shape == (size, size, 1)
      assert output.dtype == np.float32
      assert output.min() >= 0.0 and output.max() <= 1.0
      assert np.abs(output - image).max() > 0.01


def test_acquisition_is_reproducible_for_a_seed_and_index():
  image = _image()
  fn = augment.make_augment_fn(11, _ACQUISITION_ALWAYS)
  fresh = augment.make_augment_fn(11, _ACQUISITION_ALWAYS)
  for label in (constants.NORMAL, constants.PNEUMONIA):
    first = _run(fn, image, label, 7)
    _run(fn, _image(128), label, 7)  # another size has its own pool
    np.testing.assert_array_equal(_run(fn, image, label, 7), first)
    np.testing.assert_array_equal(_run(fresh, image, label, 7), first)
    assert np.abs(_run(fn, image, label, 8) - first).max() > 1e-3


def test_acquisition_only_families_each_change_the_image():
  image = _image(seed=2)
  for family in _ACQUISITION_ONLY:
    policies = _with_p(_ACQUISITION, {_NORMAL_NAME: 0.0, _PNEUMONIA_NAME: 0.0})
    for name in constants.LABEL_NAMES:
      policies[name][family]['p'] = 1.0
    fn = augment.make_augment_fn(3, policies)
    assert np.abs(_run(fn, image, constants.NORMAL, 0) - image).max() > 1e-3
