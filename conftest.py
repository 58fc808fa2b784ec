"""Shared pytest fixtures (helpers live in tests/support.py)."""
import pathlib

import pytest

from tests.support import require_shared_data


@pytest.fixture
def original_sample() -> pathlib.Path:
  """Full-resolution Kermany originals (240 files, 184 patients)."""
  return require_shared_data('kermany-original-sample')


@pytest.fixture
def kermany_224() -> pathlib.Path:
  """The whole Kaggle train split resized to 224 px (5,216 files)."""
  return require_shared_data('kermany-224')
