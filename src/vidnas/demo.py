"""The built-in demo: the whole method on the synthetic dataset, end to end.

search (cpu-small) -> retrain the derived network from the supernet's weights
-> 30-view test -> ``report.md``. Each phase is its own run directory inside
the demo's, so a demo that was stopped picks up where it was: a finished
phase is reused, an unfinished one resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnas.checkpoint import atomic_write_text, load_checkpoint
from vidnas.config import Config, dump_config, load_config
from vidnas.report import arch_table

log = logging.getLogger("vidnas.demo")


@dataclass
class DemoResult:
    out: Path
    report: Path
    timings: dict[str, float]
    test: dict[str, Any]


def _phase_done(run: Path, kind: str) -> bool:
    ckpt = run / "checkpoints" / "last.pt"
    return ckpt.exists() and bool(load_checkpoint(ckpt, kind).get("done"))


def run_demo(
    out: str | Path = "runs/demo",
    config: str | Path = "cpu-small",
    overrides: list[str] | None = None,
    progress: bool = True,
) -> DemoResult:
    from vidnas.evaluate import run_test
    from vidnas.search import run_search
    from vidnas.train import run_train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / "config.yaml"
    if cfg_path.exists():
        cfg = load_config(cfg_path)
        if overrides:
            log.info("%s exists: using its config.yaml, not the overrides", out)
    else:
        cfg = load_config(config, overrides or [])
        atomic_write_text(cfg_path, dump_config(cfg))
    timings_path = out / "timings.json"
    timings: dict[str, float] = (
        json.loads(timings_path.read_text()) if timings_path.exists() else {}
    )

    def phase(name: str, fn: Any, done: bool = False) -> Any:
        log.info("== %s%s ==", name, " (done before, reused)" if done else "")
        t0 = time.perf_counter()
        res = fn()
        if not done:
            timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 1)
            atomic_write_text(timings_path, json.dumps(timings, indent=2))
        return res

    search_dir, train_dir = out / "search", out / "train"

    def search() -> Any:
        if (search_dir / "checkpoints" / "last.pt").exists():
            return run_search(resume=search_dir, progress=progress)
        return run_search(cfg, out=search_dir, progress=progress)

    def train() -> Any:
        if (train_dir / "checkpoints" / "last.pt").exists():
            return run_train(resume=train_dir, progress=progress)
        return run_train(
            search_dir / "arch.json", cfg, out=train_dir, init_from=search_dir, progress=progress
        )

    sres = phase("search", search, _phase_done(search_dir, "search"))
    tres = phase("retrain", train, _phase_done(train_dir, "train"))
    test_res = phase(
        "test",
        lambda: run_test(
            tres.best, (cfg.test.clips, cfg.test.crops), out=out / "test", progress=progress
        ),
    )
    report = _write_report(out, cfg, sres, tres, test_res.metrics, timings)
    return DemoResult(out, report, timings, test_res.metrics)


def _write_report(
    out: Path, cfg: Config, sres: Any, tres: Any, test: dict[str, Any], timings: dict[str, float]
) -> Path:
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for src in (
        sres.run_dir / "plots" / "search_curves.png",
        sres.run_dir / "plots" / "arch_params.png",
        sres.run_dir / "plots" / "arch.png",
        tres.run_dir / "plots" / "train_curves.png",
        out / "test" / "confusion.png",
    ):
        if src.exists():
            shutil.copyfile(src, plots / src.name)
    c, t, h, w = cfg.input
    s, tr = sres.summary, tres.summary
    spec = sres.derivation.spec
    total = sum(timings.values())
    lines = [
        "# vidnas demo report",
        "",
        f"The method end to end on the built-in synthetic dataset ({s['classes']} classes, "
        f"`{cfg.data.root}`), preset-sized input {c}x{t}x{h}x{w}: a differentiable search "
        f"of {cfg.search.epochs} epochs ({cfg.search.warmup_epochs} warm-up), retraining of the "
        f"derived network for {cfg.train.epochs} epochs from the supernet's weights, and a "
        f"{test['clips']}x{test['crops']}-view test on the test list.",
        "",
        "## Result",
        "",
        "| | value |",
        "|---|---|",
        f"| top-1 ({test['views']} views) | {100 * test['top1']:.2f} % |",
        f"| top-5 | {100 * test['top5']:.2f} % |",
        f"| mean class accuracy | {100 * test['mean_class_acc']:.2f} % |",
        f"| chance | {100 / s['classes']:.2f} % |",
        f"| GMACs x views | {test['gmacs_x_views']} (input {c}x{t}x{h}x{w}) |",
        f"| parameters | {test['params'] / 1e6:.3f} M |",
        f"| test videos | {test['videos_tested']} tested, {test['videos_skipped']} skipped |",
        "",
        "## Derived architecture (as the paper's Table 3)",
        "",
        arch_table(spec),
        "",
        "![architecture](plots/arch.png)",
        "",
        "## Search",
        "",
        "Accuracy and loss on the train, validate and inference splits (the paper's Figure 2):",
        "",
        "![search curves](plots/search_curves.png)",
        "",
        "The architecture parameters over the epochs (probability of each width from beta; "
        "mean probability of each op from alpha):",
        "",
        "![alpha and beta](plots/arch_params.png)",
        "",
        f"Before retraining, the derived network with the supernet's weights scored top-1 "
        f"{100 * s['derived_inference_acc']:.2f} % on the inference split "
        f"(1 view per video). Search run: `{sres.run_dir}`.",
        "",
        "## Retraining",
        "",
        "![retraining curves](plots/train_curves.png)",
        "",
        f"Best validation top-1 {100 * tr['best_val_acc']:.2f} % (epoch {tr['best_epoch']}, "
        f"{tr['val_source']}); the test above uses that checkpoint. "
        f"Training run: `{tres.run_dir}`.",
        "",
        "![confusion matrix](plots/confusion.png)",
        "",
        "## Time per phase",
        "",
        "| phase | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in timings.items()],
        f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |",
        "",
    ]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
