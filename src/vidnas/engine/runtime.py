"""Device, precision and random-state handling, shared by every loop.

Nothing here is global: a loop asks for its device and autocast context from its
config, and captures and restores the random state it uses through
:func:`rng_state` / :func:`set_rng_state`, which is what makes resume exact.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch

from vidnas.config import RuntimeConfig


def resolve_device(cfg: RuntimeConfig) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def setup_threads(cfg: RuntimeConfig) -> None:
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)


@contextlib.contextmanager
def autocast(cfg: RuntimeConfig, device: torch.device) -> Iterator[None]:
    """bf16/fp16 autocast when asked for; fp32 does nothing.

    On the 2-core Xeon without AMX we develop on, bf16 convs are ~3x slower than
    fp32 (benchmarks/search_step.py), so fp32 is the default; bf16 pays off on
    GPUs and on CPUs with AMX.
    """
    if cfg.precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def prepare_module(
    module: torch.nn.Module, cfg: RuntimeConfig, device: torch.device
) -> torch.nn.Module:
    module = module.to(device)
    if cfg.channels_last:
        module = module.to(memory_format=torch.channels_last_3d)
    return module


def prepare_input(x: torch.Tensor, cfg: RuntimeConfig, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if cfg.channels_last and x.dim() == 5:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cosine_lr(step: int, total: int, lr_max: float, lr_min: float) -> float:
    """Cosine annealing from ``lr_max`` to ``lr_min`` over ``total`` steps (SGDR without
    restarts). A pure function of the step, so resuming needs no scheduler object."""
    if total <= 1:
        return lr_max
    t = min(step, total - 1) / (total - 1)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t))
