"""Shared fixtures: the tiny preset, its synthetic dataset, and one tiny search run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vidnas.config import load_config
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.models.space import SearchSpace

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


def cli(*args: str) -> subprocess.CompletedProcess:
    """``vidnas ARGS`` in a fresh interpreter, output captured."""
    return subprocess.run([sys.executable, "-m", "vidnas", *args], capture_output=True, text=True)


def kill_mid_epoch(
    args: list[str], ckpt: Path, kind: str, timeout: float = 240
) -> tuple[tuple[int, int] | None, int, str]:
    """Start ``vidnas ARGS`` and SIGKILL it as soon as ``ckpt`` holds a mid-epoch
    checkpoint of an epoch after the first. Returns ((epoch, step) killed at, or
    None if it never got there), the exit code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidnas", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + timeout
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                state = load_checkpoint(ckpt, kind)
            except Exception:  # being replaced right now: look again
                state = None
            if state and state["epoch"] >= 1 and state["step"] >= 1:
                os.kill(proc.pid, signal.SIGKILL)
                killed_at = (state["epoch"], state["step"])
                break
        time.sleep(0.01)
    proc.wait()
    return killed_at, proc.returncode, proc.stderr.read().decode()


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory, data_root):
    from vidnas.loops.search import run_search

    out = tmp_path_factory.mktemp("runs") / "search"
    return out, run_search(tiny(data_root), out=out, progress=False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_root, finished_search):
    """The searched architecture retrained from the supernet's weights."""
    from vidnas.loops.train import run_train

    search_dir, _ = finished_search
    out = tmp_path_factory.mktemp("runs") / "train"
    res = run_train(
        search_dir / "arch.json", tiny(data_root), out=out, init_from=search_dir, progress=False
    )
    return out, res
