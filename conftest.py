"""Shared pytest fixtures (helpers live in testing/support.py)."""
import pathlib

from absl import logging as absl_logging
import pytest

from testing.support import require_shared_data


@pytest.fixture
def original_sample() -> pathlib.Path:
  """Full-resolution Kermany originals (240 files, 184 patients)."""
  return require_shared_data('kermany-original-sample')


@pytest.fixture
def kermany_224() -> pathlib.Path:
  """The whole Kaggle train split resized to 224 px (5,216 files)."""
  return require_shared_data('kermany-224')


@pytest.fixture(autouse=True)
def absl_info_logging():
  """INFO lines reach caplog whatever earlier tests did to absl's level
  (tf.saved_model.save resets the absl logger to absl's verbosity flag)."""
  absl_logging.set_verbosity(absl_logging.INFO)
