"""Fixtures of the data tests: the tiny synthetic dataset, generated for real."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.conftest import tiny


@pytest.fixture(scope="session")
def tiny_synth_root(data_root) -> Path:
    """The tiny synthetic dataset (4 classes x 5 videos of 16 frames at 48x36): the
    session's ``data_root``, read only."""
    return data_root


@pytest.fixture
def tiny_data_cfg(tiny_synth_root, tmp_path):
    """The tiny preset on a private copy of the tiny synthetic dataset."""
    root = tmp_path / "tiny"
    shutil.copytree(tiny_synth_root, root)
    return tiny(root)
