"""Batches whose order is a pure function of (seed, epoch), sharded over the ranks
of a job.

``make_loader`` computes the whole epoch's batches of indices up front and
hands the DataLoader only those from ``start_batch`` on, so resuming in the
middle of an epoch skips the batches already seen without decoding them, and
continues exactly as the interrupted run would have. The per-sample
randomness lives in the datasets (seeded by seed, epoch and index), so neither
the order nor the clips depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from vidnas.data.sampling import batch_order
from vidnas.engine.distributed import Dist, shard_batches


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
    dist: Dist | None = None,
) -> ClipLoader:
    """The batches of epoch ``epoch`` of ``dataset`` (see the module docstring).

    In a job of N processes (``dist``), the epoch is cut into global batches of
    ``N * batch_size`` and this rank gets its slice of each, so every rank has the
    same number of batches and together they see what one process would.
    """
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    d = dist or Dist()
    batches = batch_order(
        len(dataset),
        batch_size * d.world,
        shuffle=shuffle,
        seed=seed,
        epoch=epoch,
        drop_last=drop_last,
    )
    batches = shard_batches(batches, d, batch_size)
    shape = getattr(dataset, "clip_shape", ())
    return ClipLoader(
        dataset,
        batches,
        start_batch=start_batch,
        num_workers=num_workers,
        collate=Collate(shape),
    )
