"""Shared fixtures: small specs and spaces, and a fixed torch thread count."""

from __future__ import annotations

import pytest
import torch

from vidnas.config import load_config
from vidnas.space import SearchSpace

torch.set_num_threads(2)


@pytest.fixture
def tiny_cfg():
    return load_config("tiny")


@pytest.fixture
def tiny_space(tiny_cfg) -> SearchSpace:
    return SearchSpace.from_config(tiny_cfg.space)
