"""Human-readable Markdown reports of runs: a search's, a retraining's and the
demo's ``report.md``. Each speaks of its own run only; where the method needs
explaining it links to docs/design.md."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidnas.config import Config
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.models.cost import network_cost
from vidnas.models.spec import ArchSpec
from vidnas.nas.verdict import Verdict
from vidnas.report.verdict import verdict_section


def arch_table(spec: ArchSpec) -> str:
    """A spec as a Markdown table laid out like the paper's Table 3."""
    c, t, h, w = spec.input
    cost = network_cost(spec)
    lines = [
        f"input: {c} x {t} x {h} x {w}",
        "",
        "| stage | head width | stride | stack layers | operations | GMACs |",
        "|---|---|---|---|---|---|",
        f"| 1 (stem) | {spec.stem_width} | {spec.stem_stride} | 0 | - | "
        f"{cost.rows[0].cost.macs / 1e9:.4f} |",
    ]
    for i, (st, row) in enumerate(zip(spec.stages, cost.rows[1:])):
        ops = ", ".join(st.ops) if st.ops else "-"
        lines.append(
            f"| {i + 2} | {st.width} | {st.stride} | {len(st.ops)} | {ops} | "
            f"{row.cost.macs / 1e9:.4f} |"
        )
    lines.append(
        f"| GAP + classifier | {spec.num_classes} classes | | | | "
        f"{cost.rows[-1].cost.macs / 1e9:.4f} |"
    )
    lines.append(f"| **total** | | | {spec.num_layers} | | **{cost.macs / 1e9:.4f}** |")
    lines += ["", f"{cost.macs / 1e9:.4f} GMACs per clip, {cost.params / 1e6:.3f} M parameters."]
    return "\n".join(lines)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if 0 < abs(v) < 10**-digits:  # a gradient's size: 0.000 would say nothing
            return f"{v:.1e}"
        return f"{v:.{digits}f}"
    return str(v)


def metrics_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    head = "| " + " | ".join(title for _, title in columns) + " |"
    sep = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


SEARCH_COLUMNS = [
    ("epoch", "epoch"),
    ("phase", "phase"),
    ("train_acc", "train acc"),
    ("val_acc", "validate acc"),
    ("inference_acc", "inference acc"),
    ("train_loss", "train loss"),
    ("val_loss", "validate loss"),
    ("expected_gmacs", "expected GMACs"),
    ("derived_gmacs", "derived GMACs"),
    ("alpha_entropy", "H(alpha)"),
    ("beta_entropy", "H(beta)"),
    ("op_win_min", "min winning op p"),
    ("width_win_min", "min winning width p"),
    ("alpha_grad_snr", "alpha grad SNR"),
    ("alpha_grad_rms", "alpha grad rms"),
    ("derived_changed", "derived changed"),
    ("time_s", "time (s)"),
]


def write_search_report(
    run: RunDir,
    cfg: Config,
    spec: ArchSpec,
    history: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    bad: Any,
    verdict: Verdict | None = None,
) -> None:
    parts = [
        f"# Search report: {run.path.name}",
        "",
        *_search_settings(cfg, summary, bad),
        "",
        "## Derived architecture",
        "",
        arch_table(spec),
        "",
        *_derived_lines(cfg, history[-1] if history else {}, summary),
        "![architecture](plots/arch.png)",
        "",
        "## Curves (the paper's Figure 2)",
        "",
        "![curves](plots/search_curves.png)",
        "",
        "## Architecture parameters",
        "",
        "![alpha and beta](plots/arch_params.png)",
        "",
        *(verdict_section(verdict, history) if verdict else []),
        "## Per epoch",
        "",
        metrics_table(history, SEARCH_COLUMNS),
        "",
    ]
    atomic_write_text(run.report_path, "\n".join(parts))


def _search_settings(cfg: Config, summary: dict[str, Any], bad: Any) -> list[str]:
    """The run's settings as a list: input, classes, what was searched, its budget."""
    c, t, h, w = cfg.input
    s = cfg.search
    sched = summary.get("schedule", {})
    mode = (
        f"budget {s.budget_gmacs} GMACs (lambda {s.cost_lambda}, k {s.cost_base})"
        if s.budget_gmacs is not None
        else f"lambda {s.cost_lambda}, k {s.cost_base}"
    )
    return [
        f"- input {c}x{t}x{h}x{w}, {summary.get('classes', '?')} classes, seed {cfg.seed}",
        f"- searched dimensions: {', '.join(s.dimensions)}; cost term: {mode}; {s.mode} supernet",
        f"- {s.epochs} epochs ({sched.get('warmup_epochs', s.warmup_epochs)} warm-up), batch "
        f"{s.batch_size}; {sched.get('arch_steps', '?')} architecture steps at learning rate "
        f"{_fmt(sched.get('arch_lr'), 4)}; search time {summary.get('search_seconds', 0):.0f} s",
        f"- ran in {summary.get('precision', '?')} on {summary.get('world_size', 1)} process(es)",
        f"- unreadable videos skipped: {getattr(bad, 'count', 0)}",
    ]


def _derived_lines(cfg: Config, last: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """The derived network's expected and derived cost, and its inherited accuracy."""
    s = cfg.search
    budget = (
        [
            f"Budget mode: the derived network costs {_fmt(last.get('derived_gmacs'), 4)} "
            f"GMACs against a budget of {s.budget_gmacs} +- {s.budget_tolerance:.0%}; it is "
            "the most probable architecture within that range. The unconstrained argmax of "
            f"alpha and beta would cost {_fmt(last.get('argmax_gmacs'), 4)} GMACs.",
            "",
        ]
        if s.budget_gmacs is not None
        else []
    )
    return [
        f"Expected cost at the end of the search: {_fmt(last.get('expected_gmacs'), 4)} GMACs; "
        f"probability of the Viterbi path: {_fmt(last.get('path_prob'), 4)}.",
        "",
        *budget,
        "With the supernet's weights of its path and re-estimated BatchNorm statistics "
        f"(no retraining), the derived network scores top-1 "
        f"{_fmt(summary.get('derived_inference_acc'))} on the inference split "
        f"({summary.get('derived_inference_videos', 0)} videos, 1 view each; chance "
        f"{_fmt(summary.get('chance'))}).",
        "",
    ]


_OPTIMIZERS = {"sgd": "SGD", "adamw": "AdamW"}  # as the papers spell them


def write_train_report(
    run: RunDir,
    cfg: Config,
    spec: ArchSpec,
    history: Sequence[dict[str, Any]],
    summary: dict[str, Any],
) -> None:
    c, t, h, w = cfg.input
    tr = cfg.train
    init = summary.get("init") or {}
    start = (
        f"the supernet weights of {init['search_run']} (validation top-1 "
        f"{_fmt(init.get('val_acc'))} after BatchNorm re-estimation, before retraining)"
        if init
        else "random initialisation"
    )
    parts = [
        f"# Training report: {run.path.name}",
        "",
        f"- architecture: {spec.name or 'arch.json'}; input {c}x{t}x{h}x{w}, "
        f"{spec.num_classes} classes, seed {cfg.seed}",
        f"- started from {start}",
        f"- {tr.epochs} epochs, batch {tr.batch_size}, {_OPTIMIZERS[tr.optimizer]} lr {tr.lr} -> "
        f"{tr.lr_min} (cosine), "
        f"dropout {tr.dropout}; validation on {summary.get('val_source')}",
        f"- best validation top-1 {_fmt(summary.get('best_val_acc'))} at epoch "
        f"{summary.get('best_epoch')}; last {_fmt(summary.get('last_val_acc'))}",
        f"- training time {summary.get('train_seconds', 0):.0f} s; unreadable videos skipped: "
        f"{summary.get('bad_videos', 0)}",
        "",
        "## Architecture",
        "",
        arch_table(spec),
        "",
        "![architecture](plots/arch.png)",
        "",
        "## Curves",
        "",
        "![curves](plots/train_curves.png)",
        "",
        metrics_table(
            history,
            [
                ("epoch", "epoch"),
                ("lr", "lr"),
                ("train_loss", "train loss"),
                ("train_acc", "train acc"),
                ("val_loss", "val loss"),
                ("val_acc", "val acc"),
                ("time_s", "time (s)"),
            ],
        ),
        "",
    ]
    atomic_write_text(run.report_path, "\n".join(parts))


def write_demo_report(
    out: Path,
    cfg: Config,
    search: RunDir,
    search_summary: dict[str, Any],
    spec: ArchSpec,
    verdict: Verdict,
    search_history: Sequence[dict[str, Any]],
    train: RunDir,
    train_summary: dict[str, Any],
    test: dict[str, Any],
    timings: dict[str, float],
) -> Path:
    """The demo's ``report.md`` (and its plots, copied from the phases' run directories)."""
    _collect_plots(out / "plots", search, train, out / "test")
    c, t, h, w = cfg.input
    s, tr = search_summary, train_summary
    warmup = s.get("schedule", {}).get("warmup_epochs", cfg.search.warmup_epochs)
    lines = [
        "# vidnas demo report",
        "",
        f"The method end to end on the built-in synthetic dataset ({s['classes']} classes, "
        f"`{cfg.data.root}`), preset-sized input {c}x{t}x{h}x{w}: a differentiable search "
        f"of {cfg.search.epochs} epochs ({warmup} warm-up), retraining "
        f"of the derived network for {cfg.train.epochs} epochs from the supernet's weights, and a "
        f"{test['clips']}x{test['crops']}-view test on the test list.",
        "",
        "## Result",
        "",
        *_test_table(test, s["classes"], cfg),
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
        *verdict_section(verdict, search_history),
        f"Before retraining, the derived network with the supernet's weights scored top-1 "
        f"{100 * s['derived_inference_acc']:.2f} % on the inference split "
        f"(1 view per video). Search run: `{search.path}`.",
        "",
        "## Retraining",
        "",
        "![retraining curves](plots/train_curves.png)",
        "",
        f"Best validation top-1 {100 * tr['best_val_acc']:.2f} % (epoch {tr['best_epoch']}, "
        f"{tr['val_source']}); the test above uses that checkpoint. "
        f"Training run: `{train.path}`.",
        "",
        "![confusion matrix](plots/confusion.png)",
        "",
        "## Time per phase",
        "",
        *_timing_table(timings),
        "",
    ]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _collect_plots(plots: Path, search: RunDir, train: RunDir, test: Path) -> None:
    plots.mkdir(exist_ok=True)
    for src in (
        search.plots / "search_curves.png",
        search.plots / "arch_params.png",
        search.plots / "arch.png",
        train.plots / "train_curves.png",
        test / "confusion.png",
    ):
        if src.exists():
            shutil.copyfile(src, plots / src.name)


def _test_table(test: dict[str, Any], classes: int, cfg: Config) -> list[str]:
    c, t, h, w = cfg.input
    return [
        "| | value |",
        "|---|---|",
        f"| top-1 ({test['views']} views) | {100 * test['top1']:.2f} % |",
        f"| top-5 | {100 * test['top5']:.2f} % |",
        f"| mean class accuracy | {100 * test['mean_class_acc']:.2f} % |",
        f"| chance | {100 / classes:.2f} % |",
        f"| GMACs x views | {test['gmacs_x_views']} (input {c}x{t}x{h}x{w}) |",
        f"| parameters | {test['params'] / 1e6:.3f} M |",
        f"| test videos | {test['videos_tested']} tested, {test['videos_skipped']} skipped |",
    ]


def _timing_table(timings: dict[str, float]) -> list[str]:
    total = sum(timings.values())
    return [
        "| phase | seconds |",
        "|---|---|",
        *[f"| {k} | {v:.0f} |" for k, v in timings.items()],
        f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |",
    ]
