"""Batches whose order is a pure function of (seed, epoch), and the bad-video log.

``make_loader`` computes the whole epoch's batches of indices up front and
hands the DataLoader only those from ``start_batch`` on, so resuming in the
middle of an epoch skips the batches already seen without decoding them, and
continues exactly as the interrupted run would have. The per-sample
randomness lives in the datasets (seeded by seed, epoch and index), so neither
the order nor the clips depend on the number of workers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from vidnas.data.sampling import batch_order

log = logging.getLogger("vidnas.data")


class Collate:
    """Stack items into a batch, dropping skipped ones (``clip`` None) and gathering
    every item's ``failed`` list.

    ``batch = {clip: [B, ...], label: int64 [B], index: int64 [B],
    failed: [(path, reason)], skipped: int}``; a batch whose items were all skipped
    has ``B == 0``.
    """

    def __init__(self, clip_shape: tuple[int, ...]) -> None:
        self.clip_shape = tuple(clip_shape)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        kept = [it for it in items if it["clip"] is not None]
        failed = [f for it in items for f in it["failed"]]
        if kept:
            clip = torch.stack([it["clip"] for it in kept])
        else:
            clip = torch.empty((0, *self.clip_shape), dtype=torch.float32)
        return {
            "clip": clip,
            "label": torch.tensor([it["label"] for it in kept], dtype=torch.int64),
            "index": torch.tensor([it["index"] for it in kept], dtype=torch.int64),
            "failed": failed,
            "skipped": len(items) - len(kept),
        }


class ClipLoader:
    """The batches of one epoch. ``len()`` is the number of batches in the whole
    epoch; iterating yields those from ``start_batch`` on."""

    def __init__(
        self,
        dataset: Dataset,
        batches: list[list[int]],
        *,
        start_batch: int,
        num_workers: int,
        collate: Collate,
    ) -> None:
        self.dataset = dataset
        self.batches = batches
        self.start_batch = start_batch
        self.num_workers = num_workers
        self.collate = collate

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        remaining = self.batches[self.start_batch :]
        if not remaining:
            return iter(())
        loader = DataLoader(
            self.dataset,
            batch_sampler=remaining,
            num_workers=self.num_workers,
            collate_fn=self.collate,
            # Without its own generator a DataLoader draws its workers' base seed from
            # torch's global RNG, which dropout also draws from: a resumed epoch (one more
            # iterator) would then see other dropout masks. Clips never use that seed.
            generator=torch.Generator().manual_seed(0),
        )
        return iter(loader)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    start_batch: int = 0,
    num_workers: int,
    drop_last: bool,
) -> ClipLoader:
    """The batches of epoch ``epoch`` of ``dataset`` (see the module docstring)."""
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    batches = batch_order(
        len(dataset), batch_size, shuffle=shuffle, seed=seed, epoch=epoch, drop_last=drop_last
    )
    shape = getattr(dataset, "clip_shape", ())
    return ClipLoader(
        dataset,
        batches,
        start_batch=start_batch,
        num_workers=num_workers,
        collate=Collate(shape),
    )


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
                log.warning("unreadable video skipped: %s: %s", path, reason)
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
