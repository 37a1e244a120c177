"""Does the search beat simpler choices at equal cost? And which dimensions matter?

``run_compare`` trains every network with the same pipeline, epochs and seeds
and tests each with the same views:

- ``searched``: the architecture each seed's search derives, retrained from
  scratch like every other network (``searched+init`` adds the paper's
  practice of starting from the supernet's weights, which is extra training
  the others do not get, so it is its own row);
- ``r2plus1d``: the hand-designed baseline of the space at the same input;
- ``hand``: a hand-designed network at the searched cost (R(2+1)D blocks with
  dilations 1, 2, 4 repeating, :func:`~vidnas.models.archs.hand_designed_spec`);
- ``random``: architectures drawn uniformly from the space, kept only when
  their MACs are within ``tolerance`` of the searched one's;
- ``random-ws``: random search with weight sharing: candidates drawn the same
  way, scored with the supernet's weights (BatchNorm re-estimated) on the
  validate split, the best one retrained.

``run_ablation`` searches with subsets of {channels, ops, depth} (the paper's
Table 6) and retrains each result the same way. Every run is its own run
directory under ``out``; a stopped comparison resumes where it was.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vidnas.apps.evaluate import run_test
from vidnas.apps.population import NoSameCostArchitectures, sample_within, supernet_scores
from vidnas.config import Config, dump_config, with_overrides
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.loops.search import SearchResult, run_search
from vidnas.loops.train import run_train
from vidnas.models.archs import baseline_spec, hand_designed_spec
from vidnas.models.cost import network_cost
from vidnas.models.space import SearchSpace, search_space
from vidnas.models.spec import ArchSpec
from vidnas.nas.derive import Derivation
from vidnas.report.plots import plot_accuracy_vs_gmacs

log = logging.getLogger("vidnas.compare")

ABLATIONS: tuple[tuple[bool, bool, bool], ...] = (
    (True, False, False),
    (False, True, False),
    (False, False, True),
    (True, False, True),
    (False, True, True),
    (True, True, False),
    (True, True, True),
)


@dataclass
class CompareResult:
    out: Path
    table: str
    rows: list[dict[str, Any]]


class Comparison:
    def __init__(self, cfg: Config, out: Path, progress: bool) -> None:
        self.cfg, self.out, self.progress = cfg, out, progress
        out.mkdir(parents=True, exist_ok=True)
        cfg_path = out / "config.yaml"
        if not cfg_path.exists():
            atomic_write_text(cfg_path, dump_config(cfg))
        self.results_path = out / "results.jsonl"
        self.results: dict[str, dict[str, Any]] = {}
        if self.results_path.exists():
            for line in self.results_path.read_text().splitlines():
                r = json.loads(line)
                self.results[r["run"]] = r

    def _record(self, row: dict[str, Any]) -> dict[str, Any]:
        self.results[row["run"]] = row
        text = "".join(json.dumps(r) + "\n" for r in self.results.values())
        atomic_write_text(self.results_path, text)
        return row

    def search(self, cfg: Config, name: str) -> SearchResult:
        """The search ``name`` (run, resumed, or read back if it finished)."""
        return run_search(cfg, out=self.out / "search" / name, resume=True, progress=self.progress)

    def train_and_test(
        self,
        group: str,
        arch: ArchSpec | str,
        seed: int,
        name: str,
        init_from: Path | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Retrain ``arch`` with ``seed`` and test it (30 views); cached by run name."""
        key = f"{group}/{name}"
        if key in self.results:
            return self.results[key]
        cfg = with_overrides(self.cfg, f"seed={seed}")
        run = RunDir(self.out / "train" / group / name)
        res = run_train(
            arch, cfg, out=run.path, resume=True, init_from=init_from, progress=self.progress
        )
        test = run_test(
            res.best,
            (cfg.test.clips, cfg.test.crops),
            out=run.path / "test",
            progress=self.progress,
        ).metrics
        return self._record(
            {
                "run": key,
                "group": group,
                "seed": seed,
                "arch": json.loads(run.arch_path.read_text()),
                "top1": test["top1"],
                "top5": test["top5"],
                "views": test["views"],
                "gmacs": test["gmacs_per_view"],
                "params": test["params"],
                "train_seconds": res.summary["train_seconds"],
                **(extra or {}),
            }
        )


def run_compare(
    cfg: Config,
    out: str | Path = "runs/compare",
    seeds: Sequence[int] = (0, 1, 2),
    n_random: int = 5,
    ws_samples: int = 30,
    tolerance: float = 0.10,
    init_row: bool = True,
    progress: bool = True,
) -> CompareResult:
    cmp = Comparison(cfg, Path(out), progress)
    searches = {s: cmp.search(with_overrides(cfg, f"seed={s}"), f"s{s}") for s in seeds}
    search_seconds = {s: r.summary["search_seconds"] for s, r in searches.items()}
    macs = sorted(network_cost(r.derivation.spec).macs for r in searches.values())
    target = macs[len(macs) // 2]  # the median searched architecture's cost
    classes = searches[seeds[0]].summary["classes"]
    full_space = SearchSpace.from_config(cfg.space)
    for seed in seeds:
        spec = searches[seed].derivation.spec
        cmp.train_and_test("searched", spec, seed, f"s{seed}")
        if init_row:
            run = searches[seed].run_dir
            cmp.train_and_test("searched+init", spec, seed, f"s{seed}", init_from=run)
        base = baseline_spec(full_space, cfg.input, classes)
        cmp.train_and_test("r2plus1d", base, seed, f"s{seed}")
        hand = hand_designed_spec(full_space, cfg.input, classes, target)
        cmp.train_and_test("hand", hand, seed, f"s{seed}")
    band = _CostBand(search_space(cfg), cfg, classes, target, tolerance)
    sampled = band.sample(n_random, 12345, "random")
    for i, d in enumerate(sampled or ()):
        for seed in seeds:
            cmp.train_and_test("random", d.spec.replace(name=f"random-{i}"), seed, f"a{i}-s{seed}")
    # The weight-sharing candidates come from the same band: if it was out of reach for
    # the random rows, it is for these too.
    for seed in seeds if ws_samples > 0 and sampled is not None else ():
        if f"random-ws/s{seed}" not in cmp.results:
            _random_ws_row(cmp, band, searches[seed].run_dir, seed, ws_samples)
    rows = list(cmp.results.values())
    table = _compare_table(rows, search_seconds, cfg, tolerance)
    table += "".join(f"\n{n}\n" for n in band.notes)
    atomic_write_text(cmp.out / "table.md", table)
    plot_accuracy_vs_gmacs(rows, _titles(tolerance), cmp.out / "accuracy_vs_gmacs.png")
    return CompareResult(cmp.out, table, rows)


@dataclass
class _CostBand:
    """Uniform samples within ``tolerance`` of ``target`` MACs; where the band is out of
    reach a note for the table instead, so every other row is kept."""

    space: SearchSpace
    cfg: Config
    classes: int
    target: float
    tolerance: float
    notes: list[str] = field(default_factory=list)

    def sample(self, count: int, gen_seed: int, rows: str) -> list[Derivation] | None:
        gen = torch.Generator().manual_seed(gen_seed)
        try:
            return sample_within(
                self.space, self.cfg, self.classes, self.target, self.tolerance, gen, count
            )
        except NoSameCostArchitectures as err:
            log.warning("no %s rows: %s", rows, err)
            self.notes.append(f"No {rows} rows: {err}.")
            return None


def _random_ws_row(
    cmp: Comparison, band: _CostBand, search_run: Path, seed: int, samples: int
) -> None:
    """Random search with weight sharing on the search ``seed``'s supernet: the best
    of ``samples`` candidates in the band by their weight-sharing score, retrained."""
    started = time.perf_counter()
    cands = band.sample(samples, 1000 + seed, f"random-ws (seed {seed})")
    if not cands:
        return
    scores = supernet_scores(search_run, cands)
    best = max(range(len(cands)), key=lambda k: scores[k])
    ws_seconds = time.perf_counter() - started
    log.info(
        "random search with weight sharing (seed %d): best of %d scores %.3f",
        seed,
        len(cands),
        scores[best],
    )
    cmp.train_and_test(
        "random-ws",
        cands[best].spec.replace(name=f"random-ws-{seed}"),
        seed,
        f"s{seed}",
        extra={
            "ws_score": scores[best],
            "ws_candidates": len(cands),
            "ws_seconds": round(ws_seconds, 1),
        },
    )


def _mean_std(xs: Sequence[float], digits: int = 2) -> str:
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


GROUP_TITLES = {
    "searched": "searched (vidnas), from scratch",
    "searched+init": "searched, from the supernet's weights",
    "r2plus1d": "r2plus1d-baseline",
    "hand": "hand-designed, same cost (dilations 1, 2, 4)",
    "random": "uniform random, same cost ±{tol:.0%}",
    "random-ws": "random search + weight sharing",
}


def _titles(tolerance: float) -> dict[str, str]:
    return {k: v.format(tol=tolerance) for k, v in GROUP_TITLES.items()}


def _compare_table(
    rows: list[dict[str, Any]], search_seconds: dict[int, float], cfg: Config, tolerance: float
) -> str:
    c, t, h, w = cfg.input
    lines = [
        f"input {c}x{t}x{h}x{w}; top-1/top-5 in % on the test list with "
        f"{cfg.test.clips}x{cfg.test.crops} views, mean ± standard deviation over runs; "
        f"every network retrained {cfg.train.epochs} epochs with the same pipeline.",
        "",
        "| network | archs | runs | top-1 | top-5 | GMACs | params (M) | train time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, title in _titles(tolerance).items():
        g = [r for r in rows if r["group"] == group]
        if not g:
            continue
        archs = len({json.dumps(r["arch"]["stages"]) for r in g})
        lines.append(
            f"| {title} | {archs} | {len(g)} | {_mean_std([100 * r['top1'] for r in g])} | "
            f"{_mean_std([100 * r['top5'] for r in g])} | "
            # 4 decimals: the demo's networks cost about 0.01 GMACs
            f"{_mean_std([r['gmacs'] for r in g], 4)} | "
            f"{_mean_std([r['params'] / 1e6 for r in g])} | "
            f"{_mean_std([r['train_seconds'] for r in g])} |"
        )
    total = sum(search_seconds.values())
    ws = [r.get("ws_seconds", 0) for r in rows if r["group"] == "random-ws"]
    lines += [
        "",
        f"Search cost: {len(search_seconds)} searches, "
        f"{_mean_std(list(search_seconds.values()))} s each, {total:.0f} s in all"
        + (
            f"; weight-sharing random search adds {_mean_std(ws)} s of scoring per seed "
            "on top of its search's supernet."
            if ws
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def run_ablation(
    cfg: Config, out: str | Path = "runs/ablation", seed: int = 0, progress: bool = True
) -> CompareResult:
    """Search each subset of {channels, ops, depth} (the paper's Table 6), retrain, test."""
    cmp = Comparison(cfg, Path(out), progress)
    for channels, ops, depth in ABLATIONS:
        name = "".join(k for k, on in (("C", channels), ("O", ops), ("D", depth)) if on)
        dims = [d for d, on in (("channels", channels), ("ops", ops), ("depth", depth)) if on]
        scfg = with_overrides(cfg, f"seed={seed}", f"search.dimensions=[{','.join(dims)}]")
        res = cmp.search(scfg, name)
        cmp.train_and_test(
            f"ablation-{name}",
            res.derivation.spec,
            seed,
            "s0",
            extra={
                "channels": channels,
                "ops": ops,
                "depth": depth,
                "search_seconds": res.summary["search_seconds"],
            },
        )
    rows = [r for r in cmp.results.values() if r["group"].startswith("ablation-")]
    tick = {True: "✓", False: ""}
    lines = [
        f"{cfg.search.epochs} search epochs each; top-1 in % on the test list, "
        f"{cfg.test.clips}x{cfg.test.crops} views; one seed.",
        "",
        "| | channel | stack operation | stack number | top-1 | GMACs | search (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        lines.append(
            f"| {i} | {tick[r['channels']]} | {tick[r['ops']]} | {tick[r['depth']]} | "
            f"{100 * r['top1']:.2f} | {r['gmacs']:.4f} | {r['search_seconds']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    atomic_write_text(cmp.out / "table.md", table)
    return CompareResult(cmp.out, table, rows)
