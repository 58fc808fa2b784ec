"""The option declarations: validation, profiles, parameter round trips."""
import dataclasses

import pytest

from contract import options


def test_profile_then_overrides():
  quick = options.training_settings('quick', epochs=None, batch_size=8)
  assert (quick.image_size, quick.epochs, quick.batch_size) == (128, 3, 8)
  assert quick.profile == 'quick'
  assert options.training_settings() == options.TrainingSettings()


def test_settings_are_frozen_and_validated():
  settings = options.TrainingSettings()
  with pytest.raises(dataclasses.FrozenInstanceError):
    settings.epochs = 1
  for bad in ({'architectures': ['vgg16']}, {'architectures': []},
              {'image_size': 16}, {'epochs': 0}, {'batch_size': 0},
              {'augmentation_policy': 'cutmix'}, {'label_smoothing': 1.0},
              {'label_smoothing': -0.1}, {'race_after_epochs': -1}):
    with pytest.raises(ValueError):
      options.TrainingSettings(**bad)
  with pytest.raises(ValueError, match='unknown training settings'):
    options.TrainingSettings.from_dict({'epoch': 3})
  with pytest.raises(ValueError, match='unknown profile'):
    options.training_settings('slow')


def test_dict_round_trip_is_json_ready():
  settings = options.training_settings('quick', architectures=['resnet50'])
  values = settings.to_dict()
  assert values['architectures'] == ['resnet50']
  assert options.TrainingSettings.from_dict(values) == settings


@pytest.mark.parametrize('group', options.GROUPS)
def test_parameters_round_trip(group):
  instance = group()
  for field in options.runtime_fields(group):
    carried = options.to_parameter(field, getattr(instance, field.name))
    assert isinstance(carried, options.parameter_type(field))
    assert options.from_parameter(field, carried) == getattr(
        instance, field.name)
    assert options.from_parameter(field, '') is None

