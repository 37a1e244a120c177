"""The built-in demo: the whole method on the synthetic dataset, end to end.

search (the ``demo`` preset: the echo task, a small space) -> retrain the
derived network from the supernet's weights -> 30-view test -> ``report.md``.
Each phase is its own run directory inside the demo's, so a demo that was
stopped picks up where it was: a finished phase is reused, an unfinished one
resumed from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnas.apps.evaluate import run_test
from vidnas.apps.train import run_train
from vidnas.config import Config, dump_config, load_config
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.models import model_file
from vidnas.nas import search
from vidnas.report.markdown import arch_table, decisiveness_section

log = logging.getLogger("vidnas.demo")


@dataclass
class DemoResult:
    out: Path
    report: Path
    timings: dict[str, float]
    test: dict[str, Any]
    decisiveness: dict[str, Any]  # arch.json's record: probabilities and settling


def run_demo(
    out: str | Path = "runs/demo",
    config: str | Path = "demo",
    overrides: list[str] | None = None,
    progress: bool = True,
) -> DemoResult:
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

    search_run, train_run = RunDir(out / "search"), RunDir(out / "train")
    sres = phase(
        "search",
        lambda: search.run_search(cfg, out=search_run.path, resume=True, progress=progress),
        search_run.finished(search.KIND),
    )
    tres = phase(
        "retrain",
        lambda: run_train(
            search_run.arch_path,
            cfg,
            out=train_run.path,
            resume=True,
            init_from=search_run.path,
            progress=progress,
        ),
        train_run.finished(model_file.KIND),
    )
    test_res = phase(
        "test",
        lambda: run_test(
            tres.best, (cfg.test.clips, cfg.test.crops), out=out / "test", progress=progress
        ),
    )
    report = _write_report(out, cfg, sres, tres, test_res.metrics, timings)
    return DemoResult(out, report, timings, test_res.metrics, sres.decisiveness_record)


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
        *decisiveness_section(sres.decisiveness_record, sres.history),
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
