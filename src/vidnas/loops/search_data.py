"""The search's data: its three splits of the training list and their loaders.

train (weight steps), validate (architecture steps) and inference (never seen by
an architecture step: the held-out check and the per-epoch inference figure)
are drawn once per run, stratified and seeded, and written to the run
directory. Batches are pure functions of (seed, epoch, index), so a resumed
epoch draws what the interrupted one drew.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidnas.config import Config
from vidnas.data import ClipDataset, load_index, make_loader, search_split
from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.sampling import derive_seed
from vidnas.engine.distributed import Dist
from vidnas.engine.runtime import Runtime
from vidnas.engine.steps import evaluate_single_view
from vidnas.errors import DataError

_PARTS = ("train", "validate", "inference")


class SearchData:
    """The splits (:attr:`train`, :attr:`validate`, :attr:`inference`), the classes,
    and :meth:`loader` for each way the search reads them."""

    def __init__(self, cfg: Config, split_path: Path, dist: Dist) -> None:
        self.cfg, self.dist = cfg, dist
        index = load_index(cfg, "train")
        self.classes = list(index.classes)
        with dist.main_first():  # rank 0 writes the split that the others read
            parts = search_split(index, cfg, split_path)
        if cfg.search.shuffle_labels:
            parts = tuple(shuffled_labels(p, cfg.seed, n) for p, n in zip(parts, _PARTS))
        for name, part in zip(_PARTS, parts):
            if not part.records:
                raise DataError(f"the search's {name} split is empty: the dataset is too small")
        self.train, self.validate, self.inference = parts
        self.datasets = {
            "train": ClipDataset(self.train, cfg, "train"),
            "val": ClipDataset(self.validate, cfg, "train"),
            "train_eval": ClipDataset(self.train, cfg, "eval"),
            "val_eval": ClipDataset(self.validate, cfg, "eval"),
            "inference_eval": ClipDataset(self.inference, cfg, "eval"),
        }

    def steps_per_epoch(self) -> int:
        """Weight steps an epoch takes; refused if the train split holds less than a batch."""
        steps = len(self.loader("train", epoch=0))
        if steps == 0:
            raise DataError(
                f"the search's train split has {len(self.train.records)} videos, fewer "
                f"than one batch (search.batch_size={self.cfg.search.batch_size})"
            )
        return steps

    def loader(self, name: str, epoch: int, start: int = 0, shuffle: bool = True) -> Any:
        """Epoch ``epoch`` of ``name`` (``train``, ``val``: augmented, for the steps;
        ``train_eval``, ``val_eval``, ``inference_eval``: one centre clip a video)
        from batch ``start``. Evaluations take epoch 0, shuffled by a fixed seed: the
        same clips every epoch, and with ``search.eval_batches`` a sample of every class
        rather than the first classes of a list sorted by label."""
        return make_loader(
            self.datasets[name],
            self.cfg.search.batch_size,
            shuffle=shuffle,
            seed=self.cfg.seed + (1 if name == "val" else 0),
            epoch=epoch,
            start_batch=start,
            num_workers=self.cfg.data.num_workers,
            drop_last=name == "train",
            dist=self.dist,
        )

    def val_batches(self, epoch: int, start: int) -> Iterator[dict[str, Any]]:
        """Validate batches for the architecture steps from step ``start`` of epoch
        ``epoch``, cycled (the validate split is smaller than the train split): a pure
        function of (epoch, step), so a resumed epoch draws the same batches."""
        per_cycle = len(self.loader("val", epoch=0))
        cycle, offset = divmod(start, per_cycle)
        while True:
            yield from self.loader("val", epoch=epoch * 100_003 + cycle, start=offset)
            cycle, offset = cycle + 1, 0

    def evaluate(
        self,
        net: nn.Module,
        rt: Runtime,
        max_batches: int | None,
        on_failed: Callable[[list[tuple[str, str]]], Any],
    ) -> dict[str, dict[str, float]]:
        """Single-view loss and accuracy of ``net`` on the validate and the inference
        split (``max_batches`` of each: a seeded sample, the same every epoch);
        ``on_failed`` hears of each batch's unreadable videos."""
        return {
            name: evaluate_single_view(
                net,
                self.loader(f"{name}_eval", epoch=0),
                rt,
                max_batches,
                on_batch=lambda b: on_failed(b["failed"]),
            )
            for name in ("val", "inference")
        }


def shuffled_labels(part: VideoIndex, seed: int, name: str) -> VideoIndex:
    """``part`` with its labels permuted by a generator seeded by (seed, part): the
    null control of ``search.shuffle_labels``."""
    gen = torch.Generator().manual_seed(derive_seed("shuffle-labels", seed, name))
    order = torch.randperm(len(part.records), generator=gen).tolist()
    labels = [part.records[i].label for i in order]
    return part.subset([VideoRecord(r.path, y) for r, y in zip(part.records, labels)])
