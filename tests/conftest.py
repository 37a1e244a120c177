"""Shared test helpers, each the one way to do its job: the tiny config (:func:`tiny`),
its synthetic dataset (``data_root``), the command line in-process (:func:`run_cli`)
or in a fresh interpreter (:func:`cli`), stopping a run at a checkpoint
(:func:`kill_after` in-process, :func:`sigkill_at_checkpoint` for a real process),
and one finished tiny search and retraining shared by the tests that only read them.

No test may leave state behind for another: torch's thread count is put back
after every test, and the shared runs are read, never written (a test that needs
to change one works on its own copy).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from vidnas.config import Config, load_config
from vidnas.data.synth import write_synthetic
from vidnas.engine.checkpoint import load_checkpoint
from vidnas.models.space import SearchSpace

# Two cores: one process with two threads, or (pytest -n 2) two processes with one each;
# more threads than cores makes every small op wait on the others.
THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2
torch.set_num_threads(THREADS)

ASSETS = Path(__file__).parent / "assets"


def tiny(data_root: Path | str | None = None, *overrides: str) -> Config:
    """The tiny preset, on the tiny dataset at ``data_root`` if given."""
    root = [f"data.root={data_root}"] if data_root is not None else []
    return load_config("tiny", [*root, *overrides])


@pytest.fixture(autouse=True)
def _torch_threads():
    """A run that sets ``runtime.threads`` changes torch's process-wide thread count;
    put it back, so that no test runs on what another left."""
    yield
    torch.set_num_threads(THREADS)


@pytest.fixture
def tiny_cfg() -> Config:
    return tiny()


@pytest.fixture
def tiny_space(tiny_cfg) -> SearchSpace:
    return SearchSpace.from_config(tiny_cfg.space)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """The tiny preset's synthetic dataset, written once; read-only for every test (a
    test that needs to change it copies it)."""
    root = tmp_path_factory.mktemp("synthetic") / "tiny"
    return write_synthetic(root, tiny().data.synth)


# --------------------------------------------------------------------------- the command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``vidnas ARGS`` in this process: its exit status, stdout, and stderr with the
    log lines. A fresh interpreter (:func:`cli`) tests nothing more, except the
    process's own exit status and start-up, and costs seconds of imports."""
    from vidnas.apps.cli import main

    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse's errors and --help
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def cli(*args: str) -> subprocess.CompletedProcess:
    """``vidnas ARGS`` in a fresh interpreter, output captured."""
    return subprocess.run([sys.executable, "-m", "vidnas", *args], capture_output=True, text=True)


# --------------------------------------------------------------------------- stopping a run


class Killed(Exception):
    """Stands for a SIGKILL right after a checkpoint (:func:`kill_after`)."""


def kill_after(monkeypatch: pytest.MonkeyPatch, loop_cls: type, epoch: int, step: int) -> None:
    """Make ``loop_cls`` (a search or training loop) stop with :class:`Killed` right
    after it checkpointed mid-epoch at (``epoch``, ``step``): what a SIGKILL then would
    leave on disk, in-process."""
    checkpoint_due = loop_cls.checkpoint_due

    def due_then_die(self, every, steps, started):
        started = checkpoint_due(self, every, steps, started)
        if (self.epoch, self.step) == (epoch, step):
            raise Killed
        return started

    monkeypatch.setattr(loop_cls, "checkpoint_due", due_then_die)


def sigkill_at_checkpoint(
    proc: subprocess.Popen,
    ckpt: Path,
    kind: str,
    when: Callable[[dict[str, Any]], bool],
    victim: Callable[[], int | None] | None = None,
    timeout: float = 240,
) -> tuple[int, int] | None:
    """SIGKILL a running process as soon as its checkpoint ``ckpt`` satisfies ``when``:
    ``proc`` itself, or the process ``victim`` names (a rank under torchrun; None while
    there is none yet). Returns the (epoch, step) it was killed at, or None if the run
    ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            state = load_checkpoint(ckpt, kind) if ckpt.exists() else None
        except Exception:  # being replaced right now: look again
            state = None
        if state is not None and when(state):
            pid = proc.pid if victim is None else victim()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                return state["epoch"], state["step"]
        time.sleep(0.01)
    return None


def kill_mid_epoch(
    args: list[str], ckpt: Path, kind: str, timeout: float = 240
) -> tuple[tuple[int, int] | None, int, str]:
    """Start ``vidnas ARGS`` and SIGKILL it as soon as ``ckpt`` holds a mid-epoch
    checkpoint of an epoch after the first. Returns ((epoch, step) killed at, or
    None if it never got there), the exit code and stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidnas", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    killed_at = sigkill_at_checkpoint(
        proc, ckpt, kind, lambda s: s["epoch"] >= 1 and s["step"] >= 1, timeout=timeout
    )
    _, err = proc.communicate()
    return killed_at, proc.returncode, err.decode()


# --------------------------------------------------------------------------- shared runs


@pytest.fixture(scope="session")
def finished_search(tmp_path_factory, data_root):
    """A finished tiny search; read it, never write into it (copy it first)."""
    from vidnas.loops.search import run_search

    out = tmp_path_factory.mktemp("runs") / "search"
    return out, run_search(tiny(data_root), out=out, progress=False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, data_root, finished_search):
    """The searched architecture retrained from the supernet's weights; read only."""
    from vidnas.loops.train import run_train

    search_dir, _ = finished_search
    out = tmp_path_factory.mktemp("runs") / "train"
    res = run_train(
        search_dir / "arch.json", tiny(data_root), out=out, init_from=search_dir, progress=False
    )
    return out, res


def copy_run(src: Path, dst: Path) -> Path:
    """A private copy of a shared run directory."""
    shutil.copytree(src, dst)
    return dst
