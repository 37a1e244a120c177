"""PNG figures of a run: curves (the paper's Figure 2), the architecture
parameters over epochs, the derived architecture, and a confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec

SET_COLOURS = {"train": "tab:blue", "val": "tab:green", "inference": "tab:red"}
SET_NAMES = {"train": "train", "val": "validate", "inference": "inference"}


def _save(fig: Any, path: Path, tight: bool = True) -> Path:
    """Write and close ``fig``; ``tight=False`` keeps the figure's own margins (a tight
    bounding box lays the figure out twice, seconds on a small CPU for many panels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def plot_search(
    folder: Path,
    history: Sequence[dict[str, Any]],
    arch_history: Sequence[dict[str, Any]],
    space: SearchSpace,
    warmup_epochs: int,
) -> None:
    """A search's figures as they stand after an epoch: its curves
    (``search_curves.png``) and alpha and beta (``arch_params.png``)."""
    plot_curves(history, folder / "search_curves.png", warmup_epochs=warmup_epochs, title="search")
    plot_arch_params(
        arch_history, [st.widths for st in space.stages], space.ops, folder / "arch_params.png"
    )


def plot_curves(
    rows: Sequence[dict[str, Any]],
    path: Path,
    sets: Sequence[str] = ("train", "val", "inference"),
    warmup_epochs: int = 0,
    title: str = "",
) -> Path:
    """Accuracy and loss per epoch on each set (the paper's Figure 2 a-b)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = [r["epoch"] for r in rows]
    for ax, metric, label in ((axes[0], "acc", "top-1 accuracy"), (axes[1], "loss", "loss")):
        for s in sets:
            ys = [r.get(f"{s}_{metric}") for r in rows]
            if all(y is None or (isinstance(y, float) and math.isnan(y)) for y in ys):
                continue
            ax.plot(epochs, ys, "-o", ms=3, color=SET_COLOURS.get(s), label=SET_NAMES.get(s, s))
        if warmup_epochs:
            ax.axvspan(0.5, warmup_epochs + 0.5, color="0.9", label="warm-up (weights only)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_arch_params(
    history: Sequence[dict[str, Any]],
    widths: Sequence[Sequence[int]],
    ops: Sequence[str],
    path: Path,
) -> Path:
    """Per stage: the probability of reaching each candidate width (from beta) and the
    mean probability of each op over the stage's layers (from alpha), per epoch."""
    n = len(widths)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5), sharex=True, squeeze=False)
    epochs = [h["epoch"] for h in history]
    for s in range(n):
        ax = axes[0][s]
        for j, w in enumerate(widths[s]):
            ax.plot(epochs, [h["reach"][s][j] for h in history], label=str(w))
        ax.set_title(f"stage {s + 2} width", fontsize=9)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7)
        ax = axes[1][s]
        if history and history[0]["ops"][s]:
            for o, name in enumerate(ops):
                ax.plot(epochs, [h["ops"][s][o] for h in history], label=name)
            ax.legend(fontsize=7)
        else:
            ax.text(
                0.5,
                0.5,
                "no stack layers",
                ha="center",
                va="center",
                fontsize=8,
                transform=ax.transAxes,
            )
        ax.set_title(f"stage {s + 2} ops", fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("P(width)")
    axes[1][0].set_ylabel("mean P(op)")
    fig.subplots_adjust(left=0.3 / n, right=0.99, bottom=0.1, top=0.93, wspace=0.25, hspace=0.3)
    return _save(fig, path, tight=False)


_OP_COLOURS = {1: "#9ecae1", 2: "#4292c6", 4: "#08519c"}


def plot_arch(spec: ArchSpec, path: Path, title: str | None = None) -> Path:
    """A drawing of a network: stem, each stage's head and kept layers, classifier."""
    columns: list[tuple[str, list[tuple[str, str]]]] = [("stem", [(f"{spec.stem_width}", "0.8")])]
    for i, st in enumerate(spec.stages):
        boxes = [(f"head {st.width}" + (" /2" if st.stride == 2 else ""), "0.75")]
        for op in st.ops:
            d = int(op[3:])
            boxes.append((op, _OP_COLOURS.get(d, "#08306b")))
        columns.append((f"stage {i + 2}", boxes))
    columns.append(("classifier", [(f"{spec.num_classes}", "0.85")]))
    height = max(len(b) for _, b in columns)
    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 1, 0.45 * height + 1.4))
    for x, (name, boxes) in enumerate(columns):
        ax.text(x, 0.6, name, ha="center", va="bottom", fontsize=8, weight="bold")
        for y, (label, colour) in enumerate(boxes):
            ax.add_patch(
                FancyBboxPatch(
                    (x - 0.45, -y - 0.4), 0.9, 0.8, boxstyle="round,pad=0.02", fc=colour, ec="0.3"
                )
            )
            dark = colour.startswith("#08")
            ax.text(
                x,
                -y,
                label,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-height + 0.4, 1.2)
    ax.axis("off")
    c, t, h, w = spec.input
    ax.set_title(title or f"{spec.name or 'architecture'} (input {c}x{t}x{h}x{w})", fontsize=9)
    return _save(fig, path)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> Path:
    n = len(classes)
    size = min(14, 2 + 0.35 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    if n <= 40:
        ax.set_xticks(range(n), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(n), classes, fontsize=7)
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _save(fig, path)


def plot_accuracy_vs_gmacs(
    rows: Sequence[dict[str, Any]], titles: dict[str, str], path: Path
) -> Path:
    """One point per retrained network (``group``, ``gmacs``, ``top1``), a colour per group."""
    fig, ax = plt.subplots(figsize=(7, 5))
    for group, title in titles.items():
        g = [r for r in rows if r["group"] == group]
        if g:
            ax.scatter(
                [r["gmacs"] for r in g], [100 * r["top1"] for r in g], label=title, alpha=0.75
            )
    ax.set_xlabel("GMACs per view")
    ax.set_ylabel("top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
