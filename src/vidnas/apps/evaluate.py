"""Multi-view testing, the way the field reports video results (paper section 4.2).

Every test video is cut into ``clips`` temporal clips spread uniformly over it
x ``crops`` spatial crops of the short-side-scaled frames (the paper: 10 x 3 =
30 views); the prediction is the mean of the views' softmax. Reported: top-1,
top-5, mean class accuracy, videos tested and skipped, GMACs per view x views,
parameters. For UCF101 the field reports the mean over its three official
splits: :func:`mean_over_splits` runs one checkpoint per split.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from vidnas.config import Config, with_overrides
from vidnas.data import MultiViewDataset, load_index, make_loader
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.loop import BadVideoLog
from vidnas.engine.runtime import Runtime
from vidnas.errors import ConfigError, DataError
from vidnas.models.cost import network_cost
from vidnas.models.model_file import TrainedModel, load_trained
from vidnas.report.plots import plot_confusion

log = logging.getLogger("vidnas.evaluate")


@dataclass
class TestResult:
    metrics: dict[str, Any]
    out_dir: Path


def parse_views(text: str) -> tuple[int, int]:
    """``10x3`` -> (10 clips, 3 crops)."""
    try:
        clips, crops = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--views: expected CLIPSxCROPS such as 10x3, got {text!r}") from None
    if clips < 1 or crops not in (1, 3):
        raise ConfigError(f"--views: need at least 1 clip and 1 or 3 crops, got {text!r}")
    return clips, crops


def test_config(tm: TrainedModel, overrides: Sequence[str] = ()) -> Config:
    """The checkpoint's own config with data overrides (``data.root=...``); the input
    shape belongs to the network and cannot change."""
    cfg = with_overrides(tm.config, *overrides)
    if tuple(cfg.input) != tuple(tm.spec.input):
        raise ConfigError(f"input: this network takes {tm.spec.input}; it cannot be changed")
    return cfg


def _default_out(ckpt: Path) -> Path:
    if ckpt.parent.name == "checkpoints":
        return ckpt.parent.parent / f"test-{ckpt.stem}"
    return ckpt.parent / f"test-{ckpt.stem}"


@torch.no_grad()
def view_probs(net: torch.nn.Module, views: torch.Tensor, rt: Runtime, batch: int) -> torch.Tensor:
    """One video's class probabilities: the mean over its views (``[V, 3, T, H, W]``)
    of each view's softmax, ``batch`` views at a time (float32, CPU)."""
    probs = []
    for chunk in views.split(max(1, batch)):
        with rt.autocast():
            probs.append(net(rt.input(chunk)).float().softmax(-1).cpu())
    return torch.cat(probs).mean(0)


def run_test(
    ckpt: str | Path,
    views: tuple[int, int] | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    progress: bool = True,
) -> TestResult:
    """Test a train checkpoint on its dataset's test list (or the data overrides')."""
    ckpt = Path(ckpt)
    tm = load_trained(ckpt)
    cfg = test_config(tm, overrides)
    clips, crops = views or (cfg.test.clips, cfg.test.crops)
    rt = Runtime.open(cfg.runtime)
    index = load_index(cfg, "test")
    if list(index.classes) != tm.classes:
        raise DataError(
            f"the test data has classes {index.classes[:5]}... but the checkpoint was trained "
            f"on {tm.classes[:5]}...; point data.root/data.format at the matching dataset"
        )
    bad = BadVideoLog()
    scored = _score(tm, index, cfg, clips, crops, rt, bad, progress)
    rows, confusion, hits = _tally(scored, index, tm.classes)
    cost = network_cost(tm.spec)
    n_cls = len(tm.classes)
    per_class = [confusion[c][c] / sum(confusion[c]) for c in range(n_cls) if sum(confusion[c])]
    metrics = {
        "checkpoint": str(ckpt),
        "dataset": f"{cfg.data.format}:{cfg.data.root}"
        + (f" split {cfg.data.ucf_split}" if cfg.data.format in ("ucf101", "synthetic") else ""),
        "top1": hits[0] / len(rows),
        "top5": hits[1] / len(rows),
        "mean_class_acc": sum(per_class) / len(per_class),
        "videos_tested": len(rows),
        "videos_skipped": bad.count,
        "views": clips * crops,
        "clips": clips,
        "crops": crops,
        "gmacs_per_view": cost.macs / 1e9,
        "gmacs_x_views": f"{cost.macs / 1e9:.4f} x {clips * crops}",
        "params": cost.params,
        "input": list(tm.spec.input),
    }
    out_dir = Path(out) if out else _default_out(ckpt)
    if rt.dist.main:
        _write(out_dir, metrics, rows, confusion, tm.classes)
    rt.dist.barrier()  # the files exist for every rank once it returns
    return TestResult(metrics, out_dir)


Scored = list[tuple[int, int, list[int], float]]  # (index, label, top-5, p of top-1)


def _score(
    tm: TrainedModel,
    index: Any,
    cfg: Config,
    clips: int,
    crops: int,
    rt: Runtime,
    bad: BadVideoLog,
    progress: bool,
) -> Scored:
    """Every test video's top-5 from the mean of its views' softmax, in list order;
    in a job each rank scores its share and every rank gets all of them (and every
    rank's unreadable videos in ``bad``), so the figures are those of one process."""
    net = rt.module(tm.net).eval()
    loader = make_loader(
        MultiViewDataset(index, cfg, clips, crops),
        1,
        shuffle=False,
        seed=cfg.seed,
        epoch=0,
        num_workers=cfg.data.num_workers,
        drop_last=False,
        dist=rt.dist,
    )
    n_cls = len(tm.classes)
    scored: Scored = []
    quiet = not (progress and rt.dist.main)
    bar = tqdm(
        loader, total=len(loader), disable=quiet, desc="test", dynamic_ncols=True, leave=False
    )
    for batch in bar:
        bad.update(batch["failed"])
        for clip, label, idx in zip(batch["clip"], batch["label"], batch["index"]):
            p = view_probs(net, clip.reshape(-1, *clip.shape[-4:]), rt, cfg.test.batch_size)
            top = p.topk(min(5, n_cls)).indices.tolist()
            scored.append((int(idx), int(label), top, float(p[top[0]])))
    for part in rt.dist.gather(bad.state_dict()):
        bad.update(part.items())
    return sorted(v for part in rt.dist.gather(scored) for v in part)


def _tally(
    scored: Scored, index: Any, classes: list[str]
) -> tuple[list[tuple], list[list[int]], tuple[int, int]]:
    """predictions.csv's rows, the confusion matrix and the (top-1, top-5) hits."""
    n_cls = len(classes)
    confusion = [[0] * n_cls for _ in range(n_cls)]
    rows, top1, top5 = [], 0, 0
    for idx, y, top, p_top in scored:
        top1 += top[0] == y
        top5 += y in top
        confusion[y][top[0]] += 1
        picks = ";".join(classes[k] for k in top)
        rows.append((index.records[idx].path, classes[y], classes[top[0]], p_top, picks))
    if not rows:
        raise DataError("no test video could be read; see the messages above")
    return rows, confusion, (top1, top5)


def _write(
    out: Path,
    metrics: dict[str, Any],
    rows: list[tuple],
    confusion: list[list[int]],
    classes: list[str],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "test_metrics.json", json.dumps(metrics, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "label", "prediction", "probability", "top5"])
    w.writerows(rows)
    atomic_write_text(out / "predictions.csv", buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["true \\ predicted", *classes])
    for name, row in zip(classes, confusion):
        w.writerow([name, *row])
    atomic_write_text(out / "confusion.csv", buf.getvalue())
    plot_confusion(confusion, classes, out / "confusion.png")


def format_metrics(m: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"checkpoint       {m['checkpoint']}",
            f"data             {m['dataset']}",
            f"top-1            {100 * m['top1']:.2f}",
            f"top-5            {100 * m['top5']:.2f}",
            f"mean class acc   {100 * m['mean_class_acc']:.2f}",
            f"videos           {m['videos_tested']} tested, {m['videos_skipped']} skipped",
            f"GMACs x views    {m['gmacs_x_views']} ({m['clips']} clips x {m['crops']} crops, "
            f"input {'x'.join(map(str, m['input']))})",
            f"parameters       {m['params'] / 1e6:.3f} M",
        ]
    )


def mean_over_splits(results: Sequence[TestResult]) -> dict[str, float]:
    """The mean of top-1/top-5 over several checkpoint/split pairs (UCF101's protocol)."""
    n = len(results)
    return {
        "pairs": n,
        "top1": sum(r.metrics["top1"] for r in results) / n,
        "top5": sum(r.metrics["top5"] for r in results) / n,
        "mean_class_acc": sum(r.metrics["mean_class_acc"] for r in results) / n,
    }
