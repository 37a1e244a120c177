"""Shared fixtures: the tiny preset, its synthetic dataset, and one tiny search run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidnas.config import load_config
from vidnas.space import SearchSpace

torch.set_num_threads(2)

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture
def tiny_cfg():
    return load_config("tiny")


@pytest.fixture
def tiny_space(tiny_cfg) -> SearchSpace:
    return SearchSpace.from_config(tiny_cfg.space)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """Where the tiny synthetic dataset is written (by the first run that needs it)."""
    return tmp_path_factory.mktemp("synthetic") / "tiny"


def tiny(data_root: Path, *overrides: str):
    return load_config("tiny", [f"data.root={data_root}", "runtime.threads=1", *overrides])


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory, data_root):
    from vidnas.search import run_search

    out = tmp_path_factory.mktemp("runs") / "search"
    return out, run_search(tiny(data_root), out=out, progress=False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_root, finished_search):
    """The searched architecture retrained from the supernet's weights."""
    from vidnas.train import run_train

    search_dir, _ = finished_search
    out = tmp_path_factory.mktemp("runs") / "train"
    res = run_train(
        search_dir / "arch.json", tiny(data_root), out=out, init_from=search_dir, progress=False
    )
    return out, res
