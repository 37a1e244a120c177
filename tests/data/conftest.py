"""Fixtures of the data tests: tiny synthetic datasets, generated for real."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vidnas.config import SynthConfig, load_config
from vidnas.data.synth import write_synthetic

TINY_SYNTH = SynthConfig(classes=4, per_class=5, frames=16, size=48, seed=0)


@pytest.fixture(scope="session")
def tiny_synth_root(tmp_path_factory) -> Path:
    """A tiny synthetic dataset (4 classes x 5 videos of 16 frames at 48x36), made once."""
    return write_synthetic(tmp_path_factory.mktemp("synth") / "tiny", TINY_SYNTH)


@pytest.fixture
def tiny_data_cfg(tiny_synth_root, tmp_path):
    """The tiny preset on a private copy of the tiny synthetic dataset."""
    root = tmp_path / "tiny"
    shutil.copytree(tiny_synth_root, root)
    return load_config("tiny", [f"data.root={root}"])
