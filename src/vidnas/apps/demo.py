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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidnas.apps.evaluate import run_test
from vidnas.config import dump_config, load_config
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.loops import search
from vidnas.loops.train import run_train
from vidnas.models import model_file
from vidnas.nas.verdict import Verdict
from vidnas.report.markdown import write_demo_report

log = logging.getLogger("vidnas.demo")


@dataclass
class DemoResult:
    out: Path
    report: Path
    timings: dict[str, float]
    test: dict[str, Any]
    verdict: Verdict  # the search's


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
    report = write_demo_report(
        out,
        cfg,
        search_run,
        sres.summary,
        sres.derivation.spec,
        sres.verdict,
        sres.history,
        train_run,
        tres.summary,
        test_res.metrics,
        timings,
    )
    return DemoResult(out, report, timings, test_res.metrics, sres.verdict)
