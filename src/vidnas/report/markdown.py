"""Human-readable Markdown reports of runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidnas.config import Config
from vidnas.engine.checkpoint import atomic_write_text
from vidnas.engine.rundir import RunDir
from vidnas.models.cost import network_cost
from vidnas.models.spec import ArchSpec


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


def write_search_report(
    run: RunDir,
    cfg: Config,
    spec: ArchSpec,
    history: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    bad: Any,
    decisiveness: dict[str, Any] | None = None,
) -> None:
    c, t, h, w = cfg.input
    last = history[-1] if history else {}
    s = cfg.search
    searched = s.dimensions
    mode = (
        f"budget {s.budget_gmacs} GMACs (lambda {s.cost_lambda}, k {s.cost_base})"
        if s.budget_gmacs is not None
        else f"lambda {s.cost_lambda}, k {s.cost_base}"
    )
    parts = [
        f"# Search report: {run.path.name}",
        "",
        f"- input {c}x{t}x{h}x{w}, {summary.get('classes', '?')} classes, seed {cfg.seed}",
        f"- searched dimensions: {', '.join(searched)}; cost term: {mode}; {s.mode} supernet",
        f"- {s.epochs} epochs ({s.warmup_epochs} warm-up), batch {s.batch_size}, "
        f"search time {summary.get('search_seconds', 0):.0f} s",
        f"- unreadable videos skipped: {getattr(bad, 'count', 0)}",
        "",
        "## Derived architecture",
        "",
        arch_table(spec),
        "",
        f"Expected cost at the end of the search: {_fmt(last.get('expected_gmacs'), 4)} GMACs; "
        f"probability of the Viterbi path: {_fmt(last.get('path_prob'), 4)}.",
        "",
        *(
            [
                f"Budget mode: the derived network costs {_fmt(last.get('derived_gmacs'), 4)} "
                f"GMACs against a budget of {s.budget_gmacs} +- {s.budget_tolerance:.0%}; it is "
                "the most probable architecture within that range. The unconstrained argmax of "
                f"alpha and beta would cost {_fmt(last.get('argmax_gmacs'), 4)} GMACs.",
                "",
            ]
            if s.budget_gmacs is not None
            else []
        ),
        "With the supernet's weights of its path and re-estimated BatchNorm statistics "
        f"(no retraining), the derived network scores top-1 "
        f"{_fmt(summary.get('derived_inference_acc'))} on the inference split "
        f"({summary.get('derived_inference_videos', 0)} videos, 1 view each; chance "
        f"{_fmt(summary.get('chance'))}).",
        "",
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
        *(decisiveness_section(decisiveness, history) if decisiveness else []),
        "## Per epoch",
        "",
        metrics_table(
            history,
            [
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
            ],
        ),
        "",
    ]
    atomic_write_text(run.report_path, "\n".join(parts))


def decisiveness_section(dec: dict[str, Any], history: Sequence[dict[str, Any]]) -> list[str]:
    """Whether the search decided, per stage, in plain words (docs/design.md, "Search
    decisiveness"): the derivation is an argmax, and an argmax of a near-uniform
    distribution is not a finding."""
    t = dec["threshold"]
    lines = [
        "### Did the search decide?",
        "",
        f"Probability of each choice on the derived path at the end of the search "
        f"(undecided below {t:.2f}):",
        "",
        "| stage | width p | ops (p of each layer's winner) | mean op p |",
        "|---|---|---|---|",
    ]
    for i, (ops, wins, width) in enumerate(zip(dec["ops"], dec["op_win"], dec["width_win"])):
        layers = ", ".join(f"{o} {p:.2f}" for o, p in zip(ops, wins)) or "-"
        mean = sum(wins) / len(wins) if wins else None
        lines.append(f"| {i + 2} | {_fmt(width, 2)} | {layers} | {_fmt(mean, 2)} |")
    changed = [r["epoch"] for r in history if r.get("derived_changed")]
    stable = 0
    for r in reversed(history):
        stable += 1
        if r.get("derived_changed"):
            break
    lines += [
        "",
        f"The derived network changed after epochs {', '.join(map(str, changed)) or 'none'}; "
        f"it has been the same for the last {stable} epoch(s).",
        "",
    ]
    last = history[-1] if history else {}
    if last.get("alpha_grad_rms") is not None:
        lines += [
            f"Alpha's gradient over the last epoch: signal-to-noise "
            f"{_fmt(last.get('alpha_grad_snr'), 2)} "
            f"(median over elements; pure noise over n steps reads about 0.67 / sqrt(n), "
            f"0.13 at the demo's 27), size "
            f"{last['alpha_grad_rms']:.1e} (rms).",
            "",
        ]
    lines += [
        "Probabilities above the threshold are not evidence on their own: on the demo's "
        "benchmark searches on shuffled labels (`search.shuffle_labels=true "
        "search.cost_lambda=0`) reach them too, and some settled there (docs/results.md, "
        '"The null that decided"). A further check is whether the learned alpha and beta '
        "predict videos that no architecture step saw (the inference split) better than "
        "uniform ones, each with its predictions calibrated by a temperature fitted on the "
        "validate split (uncalibrated, 4 of 11 shuffled-label searches passed it by being "
        "less overconfident than the uniform mixture; calibrated, every shuffled-label "
        'search measured so far failed it and every real one passed: docs/results.md, "A '
        'calibrated held-out check"). It is evidence, not proof:',
        "",
        *_heldout_lines(dec),
        "",
    ]
    if dec["undecided"]:
        lines += [
            "**The search did not decide everything.** Where a choice is undecided, the "
            "derived network's choice there is the argmax of near-equal probabilities, "
            "not a finding:",
            "",
            *(f"- {note}" for note in dec["undecided"]),
            "",
            *_effect_lines(dec),
        ]
    elif dec["settled"] and dec.get("confirmed"):
        lines += [
            f"**Decided**: every searched layer and width has a winner at p >= {t:.2f}, "
            f"the derived network has been the same for the last {dec['settle_epochs']} "
            "epochs, and the learned alpha and beta predict held-out videos better than "
            "uniform ones.",
            "",
        ]
    elif dec["settled"]:
        lines += [
            f"**Not confirmed**: every searched layer and width has a winner at p >= "
            f"{t:.2f} and the derived network has settled, but the learned alpha and beta "
            "predict held-out videos no better than uniform ones (by less than "
            f"{dec.get('heldout_se', 2.0):g} standard errors): the choices may fit the "
            "validate split, as a shuffled-label search's do, and are not a finding.",
            "",
        ]
    else:
        lines += [
            f"**Not settled**: every searched layer and width has a winner at p >= {t:.2f}, "
            f"but {_unsettled(dec)}: shuffled-label searches reached such probabilities "
            "without settling, so this is not a decision.",
            "",
        ]
    return lines


def _effect_lines(dec: dict[str, Any]) -> list[str]:
    """What forcing each undecided choice either way changes, in plain words."""
    effects = dec.get("undecided_effects") or []
    if not effects:
        return []
    se_k = dec.get("heldout_se", 2.0)
    lines = [
        f"Each undecided choice forced either way in the supernet (the other choices as "
        f"learned; inference split, {effects[0]['clips']} videos): cross-entropy of the "
        "runner-up minus the winner, and the expected cost's change:",
        "",
    ]
    lines += [f"- {effect_line(e, se_k)}" for e in effects]
    return [*lines, ""]


def effect_line(e: dict[str, Any], se_k: float = 2.0) -> str:
    """One undecided choice forced either way (an entry of ``undecided_effects``), in
    words: the held-out cross-entropy difference, what it means at ``se_k`` standard
    errors, and the cost difference."""
    if e["ce_diff"] is None:
        verdict = "not measured"
    elif abs(e["ce_diff"]) <= se_k * e["se"]:
        verdict = "no measurable difference: the data do not tell them apart"
    elif e["ce_diff"] > 0:
        verdict = f"{e['winner']} predicts better"
    else:
        verdict = f"{e['runner_up']} predicts better"
    diff = "-" if e["ce_diff"] is None else f"{_small(e['ce_diff'], 3)} +- {_small(e['se'], 3, '')}"
    return (
        f"{e['choice']}: {e['runner_up']} instead of {e['winner']}: {diff} nats a clip "
        f"({verdict}); {_small(e['gmacs_diff'], 4)} GMACs"
    )


def _small(x: float, decimals: int, sign: str = "+") -> str:
    """``x`` to ``decimals`` places, or in scientific notation where that would read
    as zero (a tiny network's differences)."""
    if x == 0 or abs(x) >= 0.5 * 10**-decimals:
        return f"{x:{sign}.{decimals}f}"
    return f"{x:{sign}.1e}"


def _unsettled(dec: dict[str, Any]) -> str:
    n = dec["settle_epochs"]
    if not dec["unsettled_epochs"]:
        return f"fewer than {n} epochs were searched"
    changed = ", ".join(map(str, dec["unsettled_epochs"]))
    return f"the derived network changed after epoch(s) {changed}, within the last {n}"


def settled_line(dec: dict[str, Any]) -> str:
    """One line for the terminal: has the derived network stopped changing?"""
    if dec["settled"]:
        n = dec["settle_epochs"]
        return f"settled:       the same derived network over the last {n} epochs"
    return f"not settled:   {_unsettled(dec)}"


def _gain(h: dict[str, Any] | None) -> str | None:
    """``+gain +- se`` of a held-out measurement, None where it was not measured."""
    if not h or h.get("gain") is None:
        return None
    return f"{h['gain']:+.3f} +- {h['se']:.3f}"


def _confirmed_word(dec: dict[str, Any]) -> str:
    return "confirmed" if dec.get("confirmed") else "not confirmed"


_NOT_MEASURED = "not measured (fewer than 2 inference videos)"


def _heldout_lines(dec: dict[str, Any]) -> list[str]:
    h, gain = dec.get("heldout"), _gain(dec.get("heldout"))
    if gain is None:
        return [f"- held-out: {_NOT_MEASURED}."]
    out = [
        f"- inference split ({h['clips']} videos, never seen by an architecture step): "
        f"calibrated cross-entropy {gain} nats a clip lower than with uniform alpha and "
        f"beta ({_confirmed_word(dec)}: the gain must exceed {dec['heldout_se']:g} "
        "standard errors);"
    ]
    t, raw = h.get("temperature"), _gain(h.get("uncalibrated"))
    if t is not None and raw is not None:
        out.append(
            f"- the temperatures fitted on the validate split: {t['learned']:.2f} for the "
            f"learned alpha and beta, {t['uniform']:.2f} for uniform ones (1 = as "
            f"predicted; larger = overconfident, softened); uncalibrated gain {raw};"
        )
    v, v_gain = dec.get("validate_gain"), _gain(dec.get("validate_gain"))
    if v_gain is not None:
        out.append(
            f"- validate split ({v['clips']} videos, which the architecture steps fitted): "
            f"{v_gain}."
        )
    return out


def heldout_line(dec: dict[str, Any]) -> str:
    """One line for the terminal: do the learned alpha and beta predict videos that
    no architecture step saw better than uniform ones?"""
    h, gain = dec.get("heldout"), _gain(dec.get("heldout"))
    if gain is None:
        return f"held-out:      {_NOT_MEASURED}"
    return (
        f"held-out:      {_confirmed_word(dec)}: with the learned alpha and beta the "
        f"supernet's calibrated cross-entropy on {h['clips']} inference videos is {gain} "
        "nats a clip lower than with uniform ones"
    )


_VERDICTS = {
    "decided": "decided (winners at p >= {t:.2f}, settled, confirmed on held-out videos)",
    "undecided": "undecided (some winners below p = {t:.2f})",
    "not settled": "not settled (the derived network still changed in the last epochs)",
    "not confirmed": "not confirmed (no gain on held-out videos: may fit the validate split)",
}


def verdict_line(dec: dict[str, Any]) -> str:
    """One line for the terminal: the search's verdict (docs/design.md, "Search
    decisiveness")."""
    verdict = dec.get("verdict")
    text = _VERDICTS.get(verdict, str(verdict)).format(t=dec["threshold"])
    return f"verdict:       {text}"


def decision_lines(dec: dict[str, Any]) -> list[str]:
    """The terminal's account of the decision, the same for `vidnas search` and
    `vidnas demo`: what each undecided choice is worth, then settling, the held-out
    check and the verdict."""
    return [
        *(f"  - {effect_line(e)}" for e in dec.get("undecided_effects", [])),
        settled_line(dec),
        heldout_line(dec),
        verdict_line(dec),
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
