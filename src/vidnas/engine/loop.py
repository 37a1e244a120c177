"""The run lifecycle that the search and retraining share, written once.

A run is epochs of steps over seeded batches, resumable at any step from one
checkpoint object, optionally spread over the ranks of a ``torchrun`` job.
:class:`RunLoop` owns what does not depend on what is trained: the device and
the rank, the epoch/step counters and summed metrics (all-reduced over ranks
after every step, so every rank holds the same), the history, the bad-video
log (merged over ranks), per-rank random state, rank-0-only checkpoints,
progress bars and TensorBoard, and the checkpoint cadence. The search
(:class:`vidnas.loops.search.SearchLoop`) and retraining
(:class:`vidnas.loops.train.TrainLoop`) add their models, steps and outputs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from vidnas.config import Config
from vidnas.engine.checkpoint import save_checkpoint
from vidnas.engine.rundir import RunDir, with_precision
from vidnas.engine.runtime import Runtime, cosine_lr, rng_state, set_rng_state
from vidnas.engine.steps import check_finite
from vidnas.errors import ConfigError, RunError

log = logging.getLogger("vidnas.loop")

PLOT_EVERY_S = 60.0
_data_log = logging.getLogger("vidnas.data")


class BadVideoLog:
    """Main-process record of unreadable videos: each path is logged once
    (``logging.warning`` on ``vidnas.data``) however often batches report it."""

    def __init__(self) -> None:
        self.bad: dict[str, str] = {}

    def update(self, failed: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Take a batch's ``failed`` list; return (and log) the paths new to the log."""
        new = []
        for path, reason in failed:
            if path not in self.bad:
                self.bad[path] = reason
                new.append((path, reason))
                _data_log.warning("unreadable video skipped: %s: %s", path, reason)
        return new

    @property
    def count(self) -> int:
        return len(self.bad)

    def state_dict(self) -> dict[str, str]:
        """What a checkpoint keeps, so a resumed run neither re-reports nor forgets a file."""
        return dict(self.bad)

    def load_state_dict(self, state: dict[str, str]) -> None:
        self.bad = dict(state)

    def summary(self) -> str:
        if not self.bad:
            return "no unreadable videos"
        lines = [f"{self.count} unreadable video(s) skipped:"]
        lines += [f"  {path}: {reason}" for path, reason in sorted(self.bad.items())]
        return "\n".join(lines)


def load_scaler(scaler: torch.amp.GradScaler, state: dict[str, Any] | None) -> None:
    """Restore a gradient scaler from a checkpoint; a checkpoint without one (older, or
    saved by a disabled scaler) leaves it as it is."""
    if state:
        scaler.load_state_dict(state)


class RunLoop:
    """Shared state and plumbing of a resumable, possibly distributed, epoch loop.

    Subclasses set :attr:`kind` (the checkpoint kind) and :attr:`sum_keys`, and
    extend :meth:`state_dict` / :meth:`load_state_dict` with their own parts.

    The :class:`Runtime` (device, precision, process group) is opened here, once per
    run (``auto`` precision may measure), and every step and evaluation computes in
    it; the config stays as given. Checkpoints keep the resolved precision (in the
    config they store and under ``precision``: a resumed run reuses it,
    :func:`vidnas.engine.rundir.open_run`) with the fp16 gradient scaler's state
    under ``scaler``; ``config.yaml`` records where the run ran.
    """

    kind: str = ""
    sum_keys: tuple[str, ...] = ()
    steps_per_epoch: int = 0
    total_steps: int = 0

    def __init__(self, cfg: Config, run: RunDir, progress: bool = True) -> None:
        self.run = run
        self.cfg = cfg
        self.rt = Runtime.open(cfg.runtime)
        self.dist = self.rt.dist
        if cfg.runtime.sync_batchnorm and self.dist.enabled and self.rt.device.type != "cuda":
            raise ConfigError(
                "runtime.sync_batchnorm: needs CUDA (NCCL); gloo on the CPU has no SyncBatchNorm"
            )
        if self.dist.main:
            run.write_config(cfg, self.rt.describe())
        # fp16's loss scaling for the weight step (enabled for fp16 only).
        self.scaler = self.rt.grad_scaler()
        self.progress = progress and self.dist.main
        self.bad = BadVideoLog()
        self.epoch = 0
        self.step = 0
        self.sums = dict.fromkeys(self.sum_keys, 0.0)
        self.history: list[dict[str, Any]] = []
        self.elapsed = 0.0
        self.done = False
        self.writer: Any = None
        self._plotted_at = time.monotonic()  # the first figures after PLOT_EVERY_S

    # ------------------------------------------------------------------ models

    def data_parallel(
        self, net: nn.Module, find_unused: bool = False, ignore: Iterable[nn.Parameter] = ()
    ) -> nn.Module:
        """``net`` under DDP in a job (SyncBatchNorm if asked), else ``net`` itself.

        ``ignore``: parameters DDP leaves alone (the supernet's alpha and beta, which
        :class:`vidnas.nas.architect.Architect` averages itself). Checkpoints keep the
        unwrapped module's state.
        """
        if not self.dist.enabled:
            return net
        if self.cfg.runtime.sync_batchnorm:
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
        ignored = {id(p) for p in ignore}
        names = [n for n, p in net.named_parameters() if id(p) in ignored]
        if names:
            nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                net, names
            )
        return nn.parallel.DistributedDataParallel(
            net, device_ids=ids, find_unused_parameters=find_unused
        )

    def check(self, what: str) -> Any:
        """The non-finite-loss check of one step, agreed over ranks."""
        return lambda loss: check_finite(
            loss, what, self.epoch, self.step, self.run.last_checkpoint, self.dist
        )

    def sync_buffers(self, net: nn.Module) -> None:
        """Rank 0's BatchNorm statistics on every rank (DDP syncs them only at the next
        forward), so that evaluations and checkpoints see one model."""
        self.dist.broadcast(net.buffers())

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The shared part of the checkpoint; a collective call (every rank's random
        state is gathered), so every rank must call it, and :meth:`save`."""
        rngs = self.dist.gather(rng_state())
        return {
            "epoch": self.epoch,
            "step": self.step,
            "rng": rngs[0] if len(rngs) == 1 else rngs,
            "world_size": self.dist.world,
            "sums": dict(self.sums),
            "history": self.history,
            "bad_videos": self.bad.state_dict(),
            "elapsed": self.elapsed,
            "done": self.done,
            "precision": self.rt.precision,
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        world = state.get("world_size", 1)
        if world != self.dist.world:
            log.warning(
                "this run was checkpointed with %d process(es) and resumes with %d: each "
                "rank now sees other clips, so it will not end exactly as it would have",
                world,
                self.dist.world,
            )
        rng = state["rng"]
        if isinstance(rng, list):
            rng = rng[self.dist.rank] if self.dist.rank < len(rng) else rng[0]
        set_rng_state(rng)
        self.epoch, self.step = state["epoch"], state["step"]
        self.sums = dict(state["sums"])
        self.history = list(state["history"])
        self.bad.load_state_dict(state["bad_videos"])
        self.elapsed = state["elapsed"]
        self.done = state["done"]
        saved = state.get("precision", self.rt.precision)
        if saved != self.rt.precision:
            log.warning(
                "this run computed in %s and resumes in %s (runtime.precision): it will "
                "not end exactly as it would have",
                saved,
                self.rt.precision,
            )
        load_scaler(self.scaler, state.get("scaler"))

    def resolved_config(self) -> Config:
        """The config as the run computes it (``runtime.precision`` decided), which is
        what checkpoints keep: a model tested later computes as it was trained."""
        return with_precision(self.cfg, self.rt.precision)

    def check_classes(self, state: dict[str, Any], classes: list[str]) -> None:
        if state["classes"] != classes:
            raise RunError("the dataset's classes changed since this run started")

    def save(self) -> None:
        state = self.state_dict()
        if self.dist.main:
            save_checkpoint(self.run.last_checkpoint, state, kind=self.kind)

    # ------------------------------------------------------------------ data

    def scheduled_lr(self, lr: float, lr_min: float, warmup_epochs: float) -> float:
        """The learning rate at the current step: linear warm-up over ``warmup_epochs``,
        at most a quarter of the run, then cosine from ``lr`` to ``lr_min`` by the last
        step (:func:`cosine_lr`; the subclass sets ``steps_per_epoch`` and
        ``total_steps``). The cap lets the defaults' warm-up serve a run of any
        length: a 2-epoch test run warms up for half an epoch instead of refusing."""
        step = self.epoch * self.steps_per_epoch + self.step
        warmup = min(round(warmup_epochs * self.steps_per_epoch), self.total_steps // 4)
        return cosine_lr(step, self.total_steps, lr, lr_min, warmup)

    def add(self, **values: float) -> None:
        """Add one step's figures to the epoch's sums, summed over ranks."""
        keys = list(values)
        totals = self.dist.sum([values[k] for k in keys])
        for k, v in zip(keys, totals):
            self.sums[k] += v

    def mean(self, total: str, count: str) -> float:
        return self.sums[total] / max(self.sums[count], 1)

    def merge_bad_videos(self) -> None:
        """Every rank's unreadable videos into every rank's log (at each epoch end)."""
        if self.dist.enabled:
            for bad in self.dist.gather(self.bad.state_dict()):
                self.bad.update(bad.items())

    def reset_epoch(self) -> None:
        self.epoch += 1
        self.step = 0
        self.sums = dict.fromkeys(self.sum_keys, 0.0)

    # ------------------------------------------------------------------ progress and outputs

    def bar(self, total: int, desc: str) -> tqdm:
        return tqdm(
            total=total,
            initial=self.step,
            disable=not self.progress,
            desc=desc,
            leave=False,
            dynamic_ncols=True,
        )

    def checkpoint_due(self, every: int, steps: int, started: float) -> float:
        """Save if ``every`` steps passed mid-epoch (the epoch end saves anyway); returns
        the new start of the timed span."""
        if self.step % every == 0 and self.step < steps:
            self.elapsed += time.perf_counter() - started
            self.save()
            return time.perf_counter()
        return started

    def plots_due(self) -> bool:
        """Whether an epoch's end should redraw the run's figures: at most once every
        ``PLOT_EVERY_S`` seconds (matplotlib takes seconds a figure on a small CPU,
        which a run of short epochs would spend mostly drawing), and always at its end
        (the loops draw their final figures themselves)."""
        now = time.monotonic()
        if now - self._plotted_at < PLOT_EVERY_S:
            return False
        self._plotted_at = now
        return True

    def write_scalars(self, section: str, row: dict[str, Any]) -> None:
        """metrics.jsonl and TensorBoard for the epoch just ended (rank 0 only)."""
        if not self.dist.main:
            return
        self.run.write_metrics(self.history)
        if self.writer is None:
            self.writer = self.run.summary_writer(purge_step=len(self.history))
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"{section}/{k}", v, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
