"""Seeded, stratified splits of a training list, saved with the run.

The search divides the training videos into train / validate / inference
(0.6 / 0.2 / 0.2, paper appendix A.1); retraining holds out a fraction for
per-epoch validation. Both are written to a JSON file in the run directory the
first time and read back, never recomputed, afterwards: a resumed run, or one
whose code changed how splits are drawn, keeps the videos it started with.

Stratified: each class is divided in the given proportions, and the rounding
left over is handed to the part furthest behind its overall share, so the
totals match the fractions to within one video and no class lands wholly in
one part by rounding.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import torch

from vidnas.config import Config
from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.sampling import generator
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.errors import DataError

FORMAT = "vidnas-split/1"
SEARCH_PARTS = ("train", "validate", "inference")
HOLDOUT_PARTS = ("train", "holdout")


def stratified_split(
    records: list[VideoRecord], fractions: tuple[float, ...], seed: int, salt: str
) -> list[list[VideoRecord]]:
    """``records`` divided into ``len(fractions)`` parts, per class, by a seeded shuffle.

    Each part keeps the records' original order.
    """
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(records):
        by_class[r.label].append(i)
    gen = generator(seed, "split", salt)
    parts: list[list[int]] = [[] for _ in fractions]
    ideal_total = [0.0] * len(fractions)
    given_total = [0] * len(fractions)
    for label in sorted(by_class):
        members = by_class[label]
        order = [members[j] for j in torch.randperm(len(members), generator=gen).tolist()]
        ideal = [len(members) * f for f in fractions]
        take = [math.floor(x + 1e-9) for x in ideal]
        ideal_total = [a + b for a, b in zip(ideal_total, ideal)]
        for _ in range(len(members) - sum(take)):
            behind = [ideal_total[p] - given_total[p] - take[p] for p in range(len(fractions))]
            take[behind.index(max(behind))] += 1
        given_total = [a + b for a, b in zip(given_total, take)]
        start = 0
        for p, n in enumerate(take):
            parts[p].extend(order[start : start + n])
            start += n
    return [[records[i] for i in sorted(part)] for part in parts]


def _save(path: Path, kind: str, seed: int, fractions: tuple[float, ...], parts: dict) -> None:
    doc = {
        "format": FORMAT,
        "kind": kind,
        "seed": seed,
        "fractions": list(fractions),
        "parts": {name: [[r.path, r.label] for r in recs] for name, recs in parts.items()},
    }
    atomic_write_text(Path(path), json.dumps(doc, indent=1) + "\n")


def _load(path: Path, kind: str, names: tuple[str, ...], index: VideoIndex) -> list[VideoIndex]:
    try:
        doc = json.loads(Path(path).read_text())
        if doc.get("format") != FORMAT or doc.get("kind") != kind:
            raise ValueError(f"not a '{kind}' split file of format {FORMAT}")
        listed = {name: doc["parts"][name] for name in names}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"{path}: unreadable split file ({err}); delete it to split anew") from None
    by_path = {r.path: r for r in index.records}
    out, seen = [], set()
    for name in names:
        recs = []
        for entry in listed[name]:
            rec = by_path.get(entry[0]) if isinstance(entry, list) and entry else None
            if rec is None or rec.label != entry[1]:
                raise DataError(
                    f"{path}: lists {entry[0] if isinstance(entry, list) else entry!r} which is "
                    "not (or not with that label) in the dataset now; the dataset changed "
                    "since the split was made: restore it, or delete the file to split anew"
                )
            recs.append(rec)
            seen.add(rec.path)
        out.append(index.subset(recs))
    unlisted = [r.path for r in index.records if r.path not in seen]
    if unlisted:
        raise DataError(
            f"{path}: {len(unlisted)} videos of the dataset are in no part of this split "
            f"(e.g. {unlisted[0]}); the dataset changed since the split was made: restore it, "
            "or delete the file to split anew"
        )
    return out


def search_split(
    index: VideoIndex, cfg: Config, path: Path
) -> tuple[VideoIndex, VideoIndex, VideoIndex]:
    """(train, validate, inference) of the search, by ``data.search_split`` and ``seed``;
    read from ``path`` if it exists, else made and written there."""
    path = Path(path)
    if path.exists():
        train, validate, inference = _load(path, "search", SEARCH_PARTS, index)
        return train, validate, inference
    fractions = tuple(cfg.data.search_split)
    parts = stratified_split(index.records, fractions, cfg.seed, "search")
    for name, part in zip(SEARCH_PARTS, parts):
        if not part:
            raise DataError(
                f"data.search_split: {len(index)} training videos are too few for a non-empty "
                f"'{name}' part with fractions {list(fractions)}"
            )
    _save(path, "search", cfg.seed, fractions, dict(zip(SEARCH_PARTS, parts)))
    train, validate, inference = (index.subset(p) for p in parts)
    return train, validate, inference


def holdout_split(
    index: VideoIndex, fraction: float, seed: int, path: Path
) -> tuple[VideoIndex, VideoIndex]:
    """(train, holdout) with ``fraction`` of each class held out; read from ``path``
    if it exists, else made and written there. ``fraction`` 0 holds out nothing."""
    path = Path(path)
    if path.exists():
        train, holdout = _load(path, "holdout", HOLDOUT_PARTS, index)
        return train, holdout
    if not 0 <= fraction < 1:
        raise DataError(f"train.holdout: must be in [0, 1), got {fraction}")
    if fraction == 0:
        parts = [list(index.records), []]
    else:
        parts = stratified_split(index.records, (1 - fraction, fraction), seed, "holdout")
        if not parts[1] or not parts[0]:
            raise DataError(
                f"train.holdout: {len(index)} training videos are too few to hold out {fraction}"
            )
    _save(path, "holdout", seed, (1 - fraction, fraction), dict(zip(HOLDOUT_PARTS, parts)))
    return index.subset(parts[0]), index.subset(parts[1])
