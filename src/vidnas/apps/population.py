"""Same-cost architectures and what a supernet says of them: what ``vidnas
compare`` and ``vidnas bench`` compare a searched network against.

- :func:`sample_within`: architectures drawn uniformly from the space (every width
  and every layer's op equally likely), kept when their MACs are within a tolerance
  of a target.
- :func:`supernet_scores`: each candidate's single-view accuracy with a search's
  supernet weights of its path, BatchNorm re-estimated on the search's train split,
  on one of the search's splits: the weight-sharing estimate that random search
  with weight sharing ranks by.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from vidnas.config import Config
from vidnas.data import ClipDataset, load_index, make_loader, search_split
from vidnas.engine.distributed import Dist
from vidnas.engine.rundir import RunDir
from vidnas.engine.runtime import Runtime
from vidnas.engine.steps import evaluate_single_view, recalibrate_bn
from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.space import SearchSpace
from vidnas.nas.derive import Derivation, sample_derivation
from vidnas.nas.supernet import inherit_weights, load_supernet

log = logging.getLogger("vidnas.population")


class NoSameCostArchitectures(RuntimeError):
    """Uniform sampling does not reach the target cost: a target at the edge of the
    space (e.g. every layer skipped) has almost no uniform neighbours."""


def sample_within(
    space: SearchSpace,
    cfg: Config,
    classes: int,
    target: float,
    tolerance: float,
    gen: torch.Generator,
    count: int,
    max_tries: int = 20_000,
) -> list[Derivation]:
    """``count`` uniform samples whose MACs are within ``tolerance`` of ``target``
    (MACs), drawn by ``gen``; :class:`NoSameCostArchitectures` after ``max_tries``."""
    out, tries = [], 0
    while len(out) < count:
        tries += 1
        if tries > max_tries:
            raise NoSameCostArchitectures(
                f"only {len(out)} of {max_tries} uniform samples fell within {tolerance:.0%} of "
                f"the target {target / 1e9:.4f} GMACs; widen --tolerance to compare against "
                "random architectures"
            )
        d = sample_derivation(space, cfg.input, classes, gen)
        if abs(network_cost(d.spec).macs - target) <= tolerance * target:
            out.append(d)
    log.info(
        "%d architectures within %.0f%% of %.4f GMACs from %d uniform samples",
        count,
        100 * tolerance,
        target / 1e9,
        tries,
    )
    return out


def split_loaders(cfg: Config, search_run: Path, parts: Sequence[str]) -> list[Any]:
    """Single-view loaders of a search's splits (``train`` shuffled and whole batches,
    for BatchNorm re-estimation; the others in order)."""
    index = load_index(cfg, "train")
    split = search_split(index, cfg, RunDir(search_run).split_path)
    by_name = dict(zip(("train", "validate", "inference"), split))
    return [
        make_loader(
            ClipDataset(by_name[p], cfg, "eval"),
            cfg.search.batch_size,
            shuffle=p == "train",
            seed=cfg.seed,
            epoch=0,
            num_workers=cfg.data.num_workers,
            drop_last=p == "train",
        )
        for p in parts
    ]


@torch.no_grad()
def supernet_scores(
    search_run: Path, candidates: Sequence[Derivation], part: str = "validate"
) -> list[float]:
    """Each candidate's accuracy on the search's ``part`` split with the search's
    supernet weights of its path and BatchNorm re-estimated (module docstring)."""
    supernet, cfg, _ = load_supernet(search_run)
    rt = Runtime.open(cfg.runtime, Dist())  # one process, whatever the environment says
    supernet = supernet.to(rt.device)
    bn, held = split_loaders(cfg, search_run, ("train", part))
    scores = []
    for d in candidates:
        net = build_network(d.spec)
        inherit_weights(net, supernet, d.path, d.layers)
        net = rt.module(net)
        recalibrate_bn(net, bn, rt, cfg.train.bn_recalibration_batches)
        scores.append(evaluate_single_view(net, held, rt)["acc"])
    return scores
