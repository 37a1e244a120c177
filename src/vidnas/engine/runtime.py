"""Where and how a run computes, and its random state.

:class:`Runtime` is made once when a run (a search, a retraining, a test)
opens: the device, the precision (``runtime.precision=auto`` decided by
:func:`resolve_precision`, once), the memory layout and the process group. It is
frozen and passed down, so every step, evaluation and checkpoint of the run sees
the same choices; the config itself is never rewritten. The random state a
loop uses is captured and restored through :func:`rng_state` /
:func:`set_rng_state`, which is what makes resume exact.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch.nn import functional as F

from vidnas.config import RuntimeConfig
from vidnas.engine import distributed
from vidnas.engine.distributed import Dist

Precision = Literal["fp32", "bf16", "fp16"]

log = logging.getLogger("vidnas.runtime")

# The probe that decides ``auto`` on a CPU: one Conv3d forward and backward of about
# the size of a small search layer, timed in fp32 and under bf16 autocast.
_PROBE_SHAPE = (2, 16, 8, 28, 28)  # batch, channels, T, H, W; kernel 3, padding 1
_PROBE_WARMUP = 1
_PROBE_REPS = 5
_PROBE_BUDGET_S = 0.75  # per precision: fewer repetitions where each is slow
_BF16_MARGIN = 0.9  # bf16 must take at most 90% of fp32's time to be chosen


def resolve_device(cfg: RuntimeConfig) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def setup_threads(cfg: RuntimeConfig) -> None:
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)


def _sync(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def _probe_seconds(
    device: torch.device,
    dtype: torch.dtype | None,
    channels_last: bool,
    give_up_after: float | None = None,
) -> float:
    """Best time of one Conv3d forward+backward, under ``dtype`` autocast (None: fp32).

    The input and weight come from a private generator, so the run's random state
    is untouched. Timing stops early once the probe has spent its time budget, or
    (``give_up_after``) once two repetitions were both slower than that: such a
    precision cannot win, and on CPUs without bf16 units it is many times slower,
    so its remaining repetitions would only cost start-up time.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(_PROBE_SHAPE, generator=gen).to(device)
    c = _PROBE_SHAPE[1]
    w = (torch.randn((c, c, 3, 3, 3), generator=gen) * 0.1).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
        w = w.contiguous(memory_format=torch.channels_last_3d)
    w.requires_grad_(True)
    times: list[float] = []
    begun = time.perf_counter()
    with torch.enable_grad():  # callers may be under no_grad (testing, prediction)
        for i in range(_PROBE_WARMUP + _PROBE_REPS):
            _sync(device)
            started = time.perf_counter()
            ctx = (
                torch.autocast(device_type=device.type, dtype=dtype)
                if dtype is not None
                else contextlib.nullcontext()
            )
            with ctx:
                y = F.conv3d(x, w, padding=1)
            y.float().square().mean().backward()
            w.grad = None
            _sync(device)
            if i >= _PROBE_WARMUP:
                times.append(time.perf_counter() - started)
                if give_up_after is not None and len(times) >= 2 and min(times) > give_up_after:
                    break
                if time.perf_counter() - begun > _PROBE_BUDGET_S:
                    break
    return min(times)


def _measure_precision(cfg: RuntimeConfig, device: torch.device) -> Precision:
    """``auto`` off CUDA: bf16 only if the probe runs clearly faster under it."""
    fp32_s = _probe_seconds(device, None, cfg.channels_last)
    try:
        bf16_s = _probe_seconds(device, torch.bfloat16, cfg.channels_last, give_up_after=fp32_s)
    except RuntimeError as err:  # no bf16 autocast of conv3d on this device
        log.info(
            "runtime.precision=auto on %s: bf16 autocast failed (%s); using fp32",
            device,
            str(err).splitlines()[0] if str(err) else type(err).__name__,
        )
        return "fp32"
    choice: Precision = "bf16" if bf16_s <= _BF16_MARGIN * fp32_s else "fp32"
    log.info(
        "runtime.precision=auto on %s: a Conv3d forward+backward took %.1f ms in fp32 and "
        "%.1f ms under bf16 autocast (bf16 needs <= %d%% of fp32's time); using %s",
        device,
        fp32_s * 1e3,
        bf16_s * 1e3,
        round(_BF16_MARGIN * 100),
        choice,
    )
    return choice


def resolve_precision(
    cfg: RuntimeConfig, device: torch.device, dist: Dist | None = None
) -> Precision:
    """The precision a run computes in: ``cfg.precision`` itself, or what ``auto`` picks.

    ``auto`` on CUDA is bf16 autocast where the GPU supports bf16, else fp16 (with a
    gradient scaler, :func:`grad_scaler`). Elsewhere bf16 pays off only on CPUs with
    bf16 matrix units (AMX, AVX512-BF16) that PyTorch uses: without them bf16
    convolutions are several times slower than fp32 (benchmarks/search_step.py,
    docs/design.md "Precision"). That is easier to measure than to infer from CPU
    flags, so ``auto`` times a short Conv3d forward+backward in both (under a second
    on an idle machine, about two at most) and takes bf16 only if it is at least
    10% faster; fp16 is never chosen off CUDA. Call it once per run and keep the
    result (the loops do, and their checkpoints record it, so a resumed run uses the
    same precision instead of measuring again). In a job (``dist``) rank 0 decides
    for every rank.
    """
    if cfg.precision != "auto":
        return cfg.precision
    dist = dist or Dist()
    choice: Precision | None = None
    if dist.main:
        if device.type == "cuda":
            bf16 = torch.cuda.is_bf16_supported()
            choice = "bf16" if bf16 else "fp16"
            log.info(
                "runtime.precision=auto on %s: bf16 is%s supported; using %s",
                device,
                "" if bf16 else " not",
                choice,
            )
        else:
            choice = _measure_precision(cfg, device)
    return dist.broadcast_object(choice)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for fp16, whose narrow range lets small gradients underflow to
    zero; a disabled scaler (every call a pass-through) for fp32 and bf16. Its
    ``state_dict()`` belongs in the run's checkpoint."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


@dataclass(frozen=True)
class Runtime:
    """Where and how one run computes, resolved once (:meth:`open`).

    ``precision`` is never ``auto`` here. fp32 is the default; bf16 and fp16 run
    under autocast (fp16 with a gradient scaler, :meth:`grad_scaler`). Why ``auto``
    measures on a CPU: bf16 convolutions run several times slower than fp32 on CPUs
    without bf16 units and faster on CPUs with AMX (benchmarks/search_step.py), and
    a short timing at start-up tells the two apart more reliably than CPU flags.
    """

    device: torch.device
    precision: Precision = "fp32"
    channels_last: bool = True
    dist: Dist = field(default_factory=Dist)

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(
                f"Runtime needs a resolved precision (resolve_precision), not {self.precision!r}"
            )

    @classmethod
    def open(cls, cfg: RuntimeConfig, dist: Dist | None = None) -> Runtime:
        """The runtime ``cfg`` asks for on this machine: threads set, the job's process
        group joined (``dist``: given, or :func:`vidnas.engine.distributed.setup`), the
        device picked, ``auto`` precision decided (by rank 0, for every rank)."""
        setup_threads(cfg)
        dist = distributed.setup() if dist is None else dist
        device = distributed.local_device(resolve_device(cfg), dist)
        return cls(device, resolve_precision(cfg, device, dist), cfg.channels_last, dist)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """bf16/fp16 autocast when the run computes in it; fp32 does nothing."""
        if self.precision == "fp32":
            yield
            return
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        with torch.autocast(device_type=self.device.type, dtype=dtype):
            yield

    def module(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` on the run's device and in its memory layout."""
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last_3d)
        return module

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of clips on the run's device and in its memory layout."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 5:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A fresh gradient scaler for one of the run's optimisers (enabled for fp16)."""
        return grad_scaler(self.precision, self.device)

    def describe(self) -> dict[str, Any]:
        """What a run records of where it ran (config.yaml, arch.json, report.md)."""
        return {
            "device": str(self.device),
            "precision": self.precision,
            "world_size": self.dist.world,
            "backend": self.dist.backend or None,
        }


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def cosine_lr(step: int, total: int, lr_max: float, lr_min: float, warmup: int = 0) -> float:
    """Cosine annealing from ``lr_max`` to ``lr_min`` over ``total`` steps (SGDR without
    restarts), after ``warmup`` steps of linear warm-up from ``lr_max / warmup`` (as
    PySlowFast's and MMAction2's schedules). A pure function of the step, so resuming
    needs no scheduler object."""
    if step < warmup:
        return lr_max * (step + 1) / warmup
    step, total = step - warmup, total - warmup
    if total <= 1:
        return lr_max
    t = min(step, total - 1) / (total - 1)
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t))
