"""The search's verdict in words: a section of ``report.md`` and the lines
``vidnas search`` and ``vidnas demo`` print, both rendered from one
:class:`vidnas.nas.verdict.Verdict` (docs/design.md, "Search decisiveness").
They speak of the user's run only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from vidnas.nas.verdict import Verdict

_NOT_MEASURED = "not measured (fewer than 2 inference videos)"

_OUTCOMES = {
    "decided": "decided (winners at p >= {t:.2f}, settled, confirmed on held-out videos)",
    "undecided": "undecided (some winners below p = {t:.2f})",
    "not settled": "not settled (the derived network still changed in the last epochs)",
    "not confirmed": "not confirmed (no gain on held-out videos: may fit the validate split)",
}


# ---------------------------------------------------------------------- terminal


def terminal_lines(v: Verdict) -> list[str]:
    """The terminal's account of the decision, the same for ``vidnas search`` and
    ``vidnas demo``: the winners (or each undecided choice and what it is worth), then
    settling, the held-out check and the verdict."""
    if v.undecided:
        lines = [
            f"undecided:     {len(v.undecided)} choice(s) below p = {v.threshold:.2f}; "
            "the derived network is partly arbitrary there:",
            *(f"  - {note}" for note in v.undecided),
        ]
        if v.effects:
            lines.append("  forced either way in the supernet (held-out cross-entropy, cost):")
            lines += [f"  - {effect_line(e, v.heldout_se)}" for e in v.effects]
    else:
        lines = [f"winners:       every searched choice has a winner at p >= {v.threshold:.2f}"]
    return [*lines, settled_line(v), heldout_line(v), verdict_line(v)]


def settled_line(v: Verdict) -> str:
    """One line: has the derived network stopped changing?"""
    if v.settled:
        return f"settled:       the same derived network over the last {v.settle_epochs} epochs"
    return f"not settled:   {_unsettled(v)}"


def heldout_line(v: Verdict) -> str:
    """One line: do the learned alpha and beta predict videos that no architecture step
    saw better than uniform ones?"""
    h, gain = v.heldout, _gain(v.heldout)
    if h is None or gain is None:
        return f"held-out:      {_NOT_MEASURED}"
    return (
        f"held-out:      {_confirmed_word(v)}: with the learned alpha and beta the "
        f"supernet's calibrated cross-entropy on {h['clips']} inference videos is {gain} "
        "nats a clip lower than with uniform ones"
    )


def verdict_line(v: Verdict) -> str:
    """One line: the verdict by name."""
    return f"verdict:       {_OUTCOMES[v.outcome].format(t=v.threshold)}"


def effect_line(e: dict[str, Any], se_k: float = 2.0) -> str:
    """One undecided choice forced either way (an entry of ``Verdict.effects``), in
    words: the held-out cross-entropy difference, what it means at ``se_k`` standard
    errors, and the cost difference."""
    if e["ce_diff"] is None:
        meaning = "not measured"
    elif abs(e["ce_diff"]) <= se_k * e["se"]:
        meaning = "no measurable difference: the data do not tell them apart"
    elif e["ce_diff"] > 0:
        meaning = f"{e['winner']} predicts better"
    else:
        meaning = f"{e['runner_up']} predicts better"
    diff = "-" if e["ce_diff"] is None else f"{_small(e['ce_diff'], 3)} +- {_small(e['se'], 3, '')}"
    return (
        f"{e['choice']}: {e['runner_up']} instead of {e['winner']}: {diff} nats a clip "
        f"({meaning}); {_small(e['gmacs_diff'], 4)} GMACs"
    )


# ---------------------------------------------------------------------- report.md


def verdict_section(v: Verdict, history: Sequence[dict[str, Any]]) -> list[str]:
    """``report.md``'s "Did the search decide?": the probabilities per stage, settling,
    the gradient's signal, the held-out check, and the verdict in plain words."""
    dec = v.decisiveness
    lines = [
        "### Did the search decide?",
        "",
        f"Probability of each choice on the derived path at the end of the search "
        f"(undecided below {v.threshold:.2f}):",
        "",
        "| stage | width p | ops (p of each layer's winner) | mean op p |",
        "|---|---|---|---|",
    ]
    for i, (ops, wins, width) in enumerate(zip(dec.ops, dec.op_win, dec.width_win)):
        layers = ", ".join(f"{o} {p:.2f}" for o, p in zip(ops, wins)) or "-"
        mean = sum(wins) / len(wins) if wins else None
        lines.append(f"| {i + 2} | {_fmt(width)} | {layers} | {_fmt(mean)} |")
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
        *_gradient_lines(history[-1] if history else {}),
        "Probabilities above the threshold are not evidence on their own: a search on "
        "shuffled labels can reach them by fitting the validate split (docs/design.md, "
        '"Search decisiveness"). A further check is whether the learned alpha and beta '
        "predict videos that no architecture step saw (the inference split) better than "
        "uniform ones, each with its predictions calibrated by a temperature fitted on the "
        "validate split. It is evidence, not proof:",
        "",
        *_heldout_lines(v),
        "",
        *_outcome_lines(v),
    ]
    return lines


def _gradient_lines(last: dict[str, Any]) -> list[str]:
    if last.get("alpha_grad_rms") is None:
        return []
    steps = last.get("arch_steps") or 0
    noise = f", {0.67 / math.sqrt(steps):.2f} over this epoch's {steps}" if steps else ""
    return [
        f"Alpha's gradient over the last epoch: signal-to-noise "
        f"{_fmt(last.get('alpha_grad_snr'))} (median over elements; pure noise over n steps "
        f"reads about 0.67 / sqrt(n){noise}), size {last['alpha_grad_rms']:.1e} (rms).",
        "",
    ]


def _outcome_lines(v: Verdict) -> list[str]:
    t = v.threshold
    if v.outcome == "undecided":
        lines = [
            "**The search did not decide everything.** Where a choice is undecided, the "
            "derived network's choice there is the argmax of near-equal probabilities, "
            "not a finding:",
            "",
            *(f"- {note}" for note in v.undecided),
            "",
        ]
        if v.effects:
            lines += [
                f"Each undecided choice forced either way in the supernet (the other choices "
                f"as learned; inference split, {v.effects[0]['clips']} videos): cross-entropy "
                "of the runner-up minus the winner, and the expected cost's change:",
                "",
                *(f"- {effect_line(e, v.heldout_se)}" for e in v.effects),
                "",
            ]
        return lines
    text = {
        "decided": f"**Decided**: every searched layer and width has a winner at p >= {t:.2f}, "
        f"the derived network has been the same for the last {v.settle_epochs} epochs, and "
        "the learned alpha and beta predict held-out videos better than uniform ones.",
        "not confirmed": f"**Not confirmed**: every searched layer and width has a winner at "
        f"p >= {t:.2f} and the derived network has settled, but the learned alpha and beta "
        f"predict held-out videos no better than uniform ones (by less than "
        f"{v.heldout_se:g} standard errors): the choices may fit the validate split, and "
        "are not a finding.",
        "not settled": f"**Not settled**: every searched layer and width has a winner at "
        f"p >= {t:.2f}, but {_unsettled(v)}: a network that keeps changing is not a "
        "decision.",
    }[v.outcome]
    return [text, ""]


def _heldout_lines(v: Verdict) -> list[str]:
    h, gain = v.heldout, _gain(v.heldout)
    if h is None or gain is None:
        return [f"- held-out: {_NOT_MEASURED}."]
    out = [
        f"- inference split ({h['clips']} videos, never seen by an architecture step): "
        f"calibrated cross-entropy {gain} nats a clip lower than with uniform alpha and "
        f"beta ({_confirmed_word(v)}: the gain must exceed {v.heldout_se:g} "
        "standard errors);"
    ]
    t, raw = h.get("temperature"), _gain(h.get("uncalibrated"))
    if t is not None and raw is not None:
        out.append(
            f"- the temperatures fitted on the validate split: {t['learned']:.2f} for the "
            f"learned alpha and beta, {t['uniform']:.2f} for uniform ones (1 = as "
            f"predicted; larger = overconfident, softened); uncalibrated gain {raw};"
        )
    val, val_gain = v.validate_gain, _gain(v.validate_gain)
    if val is not None and val_gain is not None:
        out.append(
            f"- validate split ({val['clips']} videos, which the architecture steps fitted): "
            f"{val_gain}."
        )
    return out


# ---------------------------------------------------------------------- pieces


def _unsettled(v: Verdict) -> str:
    if not v.unsettled_epochs:
        return f"fewer than {v.settle_epochs} epochs were searched"
    changed = ", ".join(map(str, v.unsettled_epochs))
    return (
        f"the derived network changed after epoch(s) {changed}, within the last {v.settle_epochs}"
    )


def _gain(h: dict[str, Any] | None) -> str | None:
    """``+gain +- se`` of a held-out measurement, None where it was not measured."""
    if not h or h.get("gain") is None:
        return None
    return f"{h['gain']:+.3f} +- {h['se']:.3f}"


def _confirmed_word(v: Verdict) -> str:
    return "confirmed" if v.confirmed else "not confirmed"


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"


def _small(x: float, decimals: int, sign: str = "+") -> str:
    """``x`` to ``decimals`` places, or in scientific notation where that would read
    as zero (a tiny network's differences)."""
    if x == 0 or abs(x) >= 0.5 * 10**-decimals:
        return f"{x:{sign}.{decimals}f}"
    return f"{x:{sign}.1e}"
