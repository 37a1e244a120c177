"""Does the search find a better network than chance, on this task, at this cost?
(``vidnas bench``; docs/design.md, "The search-quality harness".)

For one task (a config) and one target cost it runs, as jobs in parallel worker
processes that a stopped bench reuses when finished and resumes when not:

- a *population*: architectures drawn uniformly from the space, kept when their
  MACs are within ``tolerance`` of the target, each retrained with every training
  seed; plus ``r2plus1d-baseline`` and the hand-designed network at the target;
- the *search* with each search seed in budget mode at the target, its derived
  network retrained the same way, and random search with weight sharing on each
  search's supernet (the best of ``ws_samples`` same-cost candidates, scored with
  the supernet's weights on the validate split);
- the *shuffled-label null*: the same search on permuted labels with no cost term,
  whose verdict must not be *decided*;
- every row twice when ``init`` is on: from scratch, and starting from a supernet's
  weights (the population and the baselines from the first search's supernet, each
  searched network from its own), because inheriting weights is extra training;
- *ranking*: for each population member, the first supernet's estimate (its
  inherited weights, BatchNorm re-estimated, on the search's inference split) and
  the training-free scores of :mod:`vidnas.nas.proxies`, each ranked against the
  member's stand-alone accuracy (Kendall's tau).

Outputs in ``out``: ``results.jsonl`` (one row per retrained network), ``bench.json``
(the summary), ``table.md`` and ``accuracy_vs_gmacs.png``.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from vidnas.apps.evaluate import run_test
from vidnas.apps.population import sample_within, split_loaders, supernet_scores
from vidnas.config import Config, config_from_dict, dump_config, to_dict, with_overrides
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.errors import ConfigError
from vidnas.loops.search import run_search
from vidnas.loops.train import run_train
from vidnas.models.archs import baseline_spec, hand_designed_spec
from vidnas.models.space import SearchSpace, search_space
from vidnas.models.spec import ArchSpec
from vidnas.nas.derive import Derivation
from vidnas.nas.proxies import kendall_tau, training_free_scores
from vidnas.report.plots import plot_accuracy_vs_gmacs

log = logging.getLogger("vidnas.bench")


@dataclass(frozen=True)
class BenchSettings:
    """What one bench runs (module docstring)."""

    target_gmacs: float
    tolerance: float = 0.1
    population: int = 12
    seeds: tuple[int, ...] = (0, 1)  # training seeds of every row
    search_seeds: tuple[int, ...] = (0, 1, 2)
    ws_samples: int = 30
    nulls: int = 1  # shuffled-label searches
    init: bool = True  # also every row from a supernet's weights
    workers: int = 2


@dataclass
class BenchResult:
    out: Path
    table: str
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- jobs


def _threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _search_job(job: dict[str, Any]) -> dict[str, Any]:
    """One search in a worker: its summary, verdict record and derived spec."""
    torch.set_num_threads(job["threads"])
    cfg = config_from_dict(job["config"])
    res = run_search(cfg, out=job["out"], resume=True, progress=False)
    return {
        "name": job["name"],
        "summary": res.summary,
        "verdict": res.decisiveness_record,
        "spec": res.derivation.spec.to_dict(),
    }


def _train_job(job: dict[str, Any]) -> dict[str, Any]:
    """Retrain one spec with one seed (from scratch or from a search's supernet) and
    test it with the config's views: one row of ``results.jsonl``."""
    torch.set_num_threads(job["threads"])
    cfg = config_from_dict(job["config"])
    spec = ArchSpec.from_dict(job["spec"])
    run = RunDir(job["out"])
    res = run_train(
        spec, cfg, out=run.path, resume=True, init_from=job["init_from"], progress=False
    )
    test = run_test(
        res.best, (cfg.test.clips, cfg.test.crops), out=run.path / "test", progress=False
    ).metrics
    return {
        **job["row"],
        "top1": test["top1"],
        "top5": test["top5"],
        "gmacs": test["gmacs_per_view"],
        "params": test["params"],
        "train_seconds": res.summary["train_seconds"],
    }


class Ledger:
    """``results.jsonl``: every finished row by its run name, kept across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                self.rows[row["run"]] = row

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["run"]] = row
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.rows.values()))


def _pool(
    workers: int, fn: Callable, jobs: list[dict[str, Any]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``fn`` over ``jobs`` in ``workers`` processes (in this one with a single
    worker): (job index, result) as each finishes, so that a caller can record it
    before the slowest job is done."""
    if workers <= 1 or len(jobs) <= 1:
        for i, j in enumerate(jobs):
            yield i, fn(j)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(fn, j): i for i, j in enumerate(jobs)}
        for done in as_completed(futures):
            yield futures[done], done.result()


# ---------------------------------------------------------------------- plan


def with_path(d: Derivation) -> ArchSpec:
    """The derived spec with its supernet position in ``meta.x-search`` (what
    retraining from a supernet's weights copies along)."""
    return d.spec.replace(
        meta={"x-search": {"path": list(d.path), "layers": [list(x) for x in d.layers]}}
    )


def locate(spec: ArchSpec, space: SearchSpace) -> ArchSpec:
    """``spec`` with its supernet position: each stage's width among the candidates, its
    blocks in the stage's first layers. Refused if the space has no such network."""
    path, layers = [], []
    for i, (st, mine) in enumerate(zip(space.stages, spec.stages)):
        if mine.width not in st.widths or len(mine.ops) > st.max_layers:
            raise ConfigError(f"{spec.name}: stage {i + 2} is not in the searched space")
        path.append(st.widths.index(mine.width))
        layers.append(list(range(len(mine.ops))))
    return spec.replace(meta={"x-search": {"path": path, "layers": layers}})


def population(cfg: Config, settings: BenchSettings, classes: int) -> list[ArchSpec]:
    """The population: uniform samples within the target's cost band, seeded."""
    space = search_space(cfg)
    gen = torch.Generator().manual_seed(20_201)
    target = settings.target_gmacs * 1e9
    drawn = sample_within(space, cfg, classes, target, settings.tolerance, gen, settings.population)
    return [with_path(d).replace(name=f"member-{i}") for i, d in enumerate(drawn)]


# ---------------------------------------------------------------------- the bench


def run_bench(
    cfg: Config, out: str | Path, settings: BenchSettings, progress: bool = True
) -> BenchResult:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "config.yaml").exists():
        atomic_write_text(out / "config.yaml", dump_config(cfg))
    atomic_write_text(out / "settings.json", json.dumps(asdict(settings), indent=2))
    threads = _threads(settings.workers)
    searches = _searches(cfg, out, settings, threads)
    classes = searches[0]["summary"]["classes"]
    members = population(cfg, settings, classes)
    first = out / "search" / searches[0]["name"]
    rows = _rows(cfg, settings, members, searches, first, classes)
    ledger = Ledger(out / "results.jsonl")
    jobs = []
    for row, spec, init in rows:
        for seed in settings.seeds:
            name = f"{row['group']}/{row['arch_name']}/s{seed}{'-init' if init else ''}"
            if name in ledger.rows:
                continue
            cfg_seed = with_overrides(cfg, f"seed={seed}", f"runtime.threads={threads}")
            jobs.append(
                {
                    "config": to_dict(cfg_seed),
                    "spec": spec.to_dict(),
                    "out": str(out / "train" / name),
                    "init_from": str(init) if init else None,
                    "threads": threads,
                    "row": {**row, "run": name, "seed": seed, "init": bool(init)},
                }
            )
    log.info("bench: %d retraining jobs to run (%d done before)", len(jobs), len(ledger.rows))
    for _, row in _pool(settings.workers, _train_job, jobs):
        ledger.add(row)
    ranking = _ranking(first, members, list(ledger.rows.values()))
    summary = _summarise(list(ledger.rows.values()), searches, ranking, settings)
    atomic_write_text(out / "bench.json", json.dumps(summary, indent=2))
    table = _table(cfg, settings, summary)
    atomic_write_text(out / "table.md", table)
    plot_accuracy_vs_gmacs(
        [r for r in ledger.rows.values() if not r["init"]], GROUPS, out / "accuracy_vs_gmacs.png"
    )
    return BenchResult(out, table, list(ledger.rows.values()), summary)


def _searches(
    cfg: Config, out: Path, settings: BenchSettings, threads: int
) -> list[dict[str, Any]]:
    """Every search in budget mode at the target, then the shuffled-label nulls."""
    jobs = []
    budget = f"search.budget_gmacs={settings.target_gmacs}"
    for seed in settings.search_seeds:
        scfg = with_overrides(cfg, f"seed={seed}", budget, f"runtime.threads={threads}")
        jobs.append({"name": f"s{seed}", "config": to_dict(scfg), "threads": threads})
    for i in range(settings.nulls):
        null = ("search.shuffle_labels=true", "search.cost_lambda=0")
        scfg = with_overrides(cfg, f"seed={i}", *null, f"runtime.threads={threads}")
        jobs.append({"name": f"null{i}", "config": to_dict(scfg), "threads": threads})
    for j in jobs:
        j["out"] = str(out / "search" / j["name"])
    finished = dict(_pool(settings.workers, _search_job, jobs))
    return [finished[i] for i in range(len(jobs))]


def _rows(
    cfg: Config,
    settings: BenchSettings,
    members: list[ArchSpec],
    searches: list[dict[str, Any]],
    first: Path,
    classes: int,
) -> list[tuple[dict[str, Any], ArchSpec, Path | None]]:
    """(row, spec, supernet run to start from or None) of every network to retrain."""
    full = SearchSpace.from_config(cfg.space)
    space = search_space(cfg)
    target = settings.target_gmacs * 1e9
    # The searched networks and the baselines first, so that a bench stopped early
    # has the rows the population is there to place.
    out = []
    for s in searches:
        if s["name"].startswith("null"):
            continue
        run = first.parent / s["name"]
        spec = ArchSpec.from_dict(s["spec"]).replace(name=f"searched-{s['name']}")
        out += [("searched", spec, None)] + ([("searched", spec, run)] if settings.init else [])
        ws = _random_ws(cfg, run, settings, classes).replace(name=f"random-ws-{s['name']}")
        out += [("random-ws", ws, None)] + ([("random-ws", ws, run)] if settings.init else [])
    fixed = [("r2plus1d", locate(baseline_spec(full, cfg.input, classes), space))]
    fixed.append(("hand", locate(hand_designed_spec(full, cfg.input, classes, target), space)))
    fixed += [("population", m) for m in members]
    for group, spec in fixed:
        out += [(group, spec, None)] + ([(group, spec, first)] if settings.init else [])
    return [
        ({"group": g, "arch_name": spec.name, "arch": spec.to_dict()}, spec, init)
        for g, spec, init in out
    ]


def _random_ws(cfg: Config, search_run: Path, settings: BenchSettings, classes: int) -> ArchSpec:
    """Random search with weight sharing on one search's supernet: the same-cost
    candidate its weights score best on the validate split (cached in the run)."""
    cache = search_run / "random_ws.json"
    if cache.exists():
        return ArchSpec.from_dict(json.loads(cache.read_text()))
    scfg = RunDir(search_run).load_config()
    gen = torch.Generator().manual_seed(1000 + scfg.seed)
    target = settings.target_gmacs * 1e9
    cands = sample_within(
        search_space(scfg), scfg, classes, target, settings.tolerance, gen, settings.ws_samples
    )
    scores = supernet_scores(search_run, cands)
    best = with_path(cands[max(range(len(cands)), key=lambda k: scores[k])])
    atomic_write_text(cache, json.dumps(best.to_dict()))
    return best


def _ranking(first: Path, members: list[ArchSpec], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Kendall's tau of each estimate of the population members against their
    stand-alone accuracy (mean over training seeds, from scratch): the first search's
    supernet on its inference split, and the training-free scores."""
    acc = {
        m.name: statistics.mean(
            r["top1"] for r in rows if r["arch_name"] == m.name and not r["init"]
        )
        for m in members
    }
    placed = [
        Derivation(m, tuple(xs["path"]), tuple(tuple(x) for x in xs["layers"]), 1.0)
        for m, xs in ((m, m.meta["x-search"]) for m in members)
    ]
    estimates: dict[str, list[float]] = {"supernet": supernet_scores(first, placed, "inference")}
    (inference,) = split_loaders(RunDir(first).load_config(), first, ("inference",))
    clips = next(iter(inference))["clip"]
    for m in members:
        for k, v in training_free_scores(m, clips).items():
            estimates.setdefault(k, []).append(v)
    truth = [acc[m.name] for m in members]
    return {
        "members": [m.name for m in members],
        "accuracy": truth,
        "estimates": estimates,
        "tau": {k: kendall_tau(v, truth) for k, v in estimates.items()},
    }


# ---------------------------------------------------------------------- summary

GROUPS = {
    "population": "uniform random, same cost",
    "r2plus1d": "r2plus1d-baseline",
    "hand": "hand-designed, target cost",
    "searched": "searched (budget mode)",
    "random-ws": "random search + weight sharing",
}


def _stats(xs: Sequence[float]) -> dict[str, float | None]:
    return {
        "mean": statistics.mean(xs) if xs else None,
        "std": statistics.stdev(xs) if len(xs) > 1 else None,
        "n": len(xs),
    }


def _summarise(
    rows: list[dict[str, Any]],
    searches: list[dict[str, Any]],
    ranking: dict[str, Any],
    settings: BenchSettings,
) -> dict[str, Any]:
    """Per comparison (from scratch, from the supernet): each group's mean and spread
    of per-architecture means, the population's percentiles, and where each searched
    network stands in the population."""
    out: dict[str, Any] = {"target_gmacs": settings.target_gmacs, "comparisons": {}}
    for init in (False, True) if settings.init else (False,):
        per_arch: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            if r["init"] == init:
                per_arch.setdefault((r["group"], r["arch_name"]), []).append(r["top1"])
        means = {k: statistics.mean(v) for k, v in per_arch.items()}
        pop = sorted(v for (g, _), v in means.items() if g == "population")
        groups = {g: _stats([v for (gg, _), v in means.items() if gg == g]) for g in GROUPS}
        searched = {a: v for (g, a), v in means.items() if g == "searched"}
        out["comparisons"]["supernet" if init else "scratch"] = {
            "groups": groups,
            "population_percentiles": {
                str(q): _quantile(pop, q / 100) for q in (10, 25, 50, 75, 80, 90)
            },
            "searched_percentile": {a: _percentile(pop, v) for a, v in searched.items()},
        }
    out["verdicts"] = {s["name"]: s["verdict"]["verdict"] for s in searches}
    out["search_seconds"] = {s["name"]: s["summary"]["search_seconds"] for s in searches}
    out["derived_gmacs"] = {s["name"]: s["summary"]["gmacs"] for s in searches}
    out["ranking"] = ranking
    return out


def _quantile(xs: Sequence[float], q: float) -> float | None:
    if not xs:
        return None
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _percentile(pop: Sequence[float], v: float) -> float | None:
    """The share of the population (in %) that ``v`` beats, ties counted half."""
    if not pop:
        return None
    return 100 * (sum(p < v for p in pop) + 0.5 * sum(p == v for p in pop)) / len(pop)


def _table(cfg: Config, settings: BenchSettings, summary: dict[str, Any]) -> str:
    c, t, h, w = cfg.input
    lines = [
        f"Target {settings.target_gmacs} GMACs +- {settings.tolerance:.0%} at input "
        f"{c}x{t}x{h}x{w}; top-1 in % ({cfg.test.clips}x{cfg.test.crops} views), per "
        f"architecture the mean over training seeds {list(settings.seeds)}, then mean +- "
        "standard deviation over architectures.",
        "",
    ]
    for name, comp in summary["comparisons"].items():
        lines += [
            f"**{'From scratch' if name == 'scratch' else 'From the supernet weights'}**",
            "",
            "| network | archs | top-1 |",
            "|---|---|---|",
        ]
        for g, title in GROUPS.items():
            st = comp["groups"][g]
            if st["n"]:
                spread = f" ± {100 * st['std']:.1f}" if st["std"] is not None else ""
                lines.append(f"| {title} | {st['n']} | {100 * st['mean']:.1f}{spread} |")
        pct = comp["population_percentiles"]
        lines += [
            "",
            "Population percentiles: "
            + ", ".join(f"{q}th {100 * v:.1f}" for q, v in pct.items() if v is not None)
            + ". Searched networks' percentile in the population: "
            + ", ".join(
                f"{a} {v:.0f}" for a, v in comp["searched_percentile"].items() if v is not None
            )
            + ".",
            "",
        ]
    tau = summary["ranking"]["tau"]
    lines += [
        "Kendall's tau against stand-alone accuracy (population, from scratch): "
        + ", ".join(f"{k} {'-' if v is None else f'{v:+.2f}'}" for k, v in tau.items())
        + ".",
        "",
        "Verdicts: " + ", ".join(f"{k} {v}" for k, v in summary["verdicts"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"
