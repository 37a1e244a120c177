"""Do the learned alpha and beta predict videos that no architecture step saw, and
what is each undecided choice worth? Measurements of the supernet at the end of
a search (docs/design.md, "Search decisiveness"); :mod:`vidnas.nas.verdict` turns
them, with the probabilities of :mod:`vidnas.nas.decisiveness`, into the verdict.

Both evaluate the supernet under other settings of alpha and beta (uniform, or
one choice forced either way) on the inference split, which the architecture
steps never see, and leave it as it was.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from vidnas.engine.distributed import Dist
from vidnas.engine.runtime import Runtime
from vidnas.nas.decisiveness import Choice
from vidnas.nas.supernet import Supernet, expected_cost, frozen_bn_stats

HELDOUT_SE = 2.0  # the gain must stand this many standard errors above zero
# Temperatures tried when calibrating (T >= 1 only: softening, never sharpening).
_LOG_TEMPERATURES = torch.linspace(0.0, 5.0, 501, dtype=torch.float64)


def heldout_gain(
    net: Supernet,
    heldout_batches: Iterable[dict[str, Any]],
    validate_batches: Iterable[dict[str, Any]],
    rt: Runtime,
) -> dict[str, Any]:
    """How much better the learned alpha and beta predict held-out videos than uniform
    ones: the mean over clips of CE(uniform) - CE(learned), in nats, with its standard
    error, each architecture's logits first calibrated by a temperature fitted on the
    validate split.

    Why held out: alpha and beta are fitted by their steps to the validate split,
    which the architecture steps see again every epoch, and a few dozen logits can
    fit noise in a few hundred videos: a search on shuffled labels (no signal by
    construction) can reach winners at p >= 0.6 and keep them, so probabilities and
    settling alone do not tell a decision from a fit (docs/results.md, "The null
    that decided"). On videos the architecture steps never saw
    (``heldout_batches``, the inference split) a fitted architecture does no better
    than the uniform mixture; one that found something does.

    Why calibrated: without it the gain also rewards being less overconfident. A
    supernet that memorised its training videos is overconfident on unseen ones,
    more so under the uniform mixture than under a fitted architecture, so a
    shuffled-label search can show an uncalibrated gain (docs/results.md, "A
    calibrated held-out check"). Each architecture gets the temperature T >= 1 that
    minimises its cross-entropy on the validate split (never T < 1: on a validate
    split it predicts perfectly that would sharpen without bound). A null's logits
    are then softened to near-uniform under both and its gain vanishes; a real
    search's temperatures stay near 1.

    Both passes use each batch's own BatchNorm statistics (the running ones were
    gathered under the learned mixture, which would favour it) and leave the
    supernet as it was. Returns the calibrated ``gain``, ``se`` and ``clips`` of the
    held-out videos, the fitted ``temperature`` of each architecture, the
    ``uncalibrated`` gain, and ``validate``: the uncalibrated gain on the validate
    split, for comparison."""
    held = _logits_both(net, heldout_batches, rt)
    val = _logits_both(net, validate_batches, rt)
    return calibrated_gain(held, val, rt.dist)


Logits = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # learned, uniform, labels


def calibrated_gain(held: Logits, val: Logits, dist: Dist | None = None) -> dict[str, Any]:
    """:func:`heldout_gain` from the logits of both architectures on the held-out and
    the validate clips (each ``(learned [N, C], uniform [N, C], labels [N])``, this
    rank's part)."""
    dist = dist or Dist()
    temps = [_fit_temperature(logits, val[2], dist) for logits in val[:2]]
    out: dict[str, Any] = _mean_se(_ce_gain(*held), dist)
    out["temperature"] = {"learned": temps[0], "uniform": temps[1]}
    calibrated = _mean_se(_ce_gain(held[0] / temps[0], held[1] / temps[1], held[2]), dist)
    out["uncalibrated"] = {k: out[k] for k in ("gain", "se")}
    out.update(gain=calibrated["gain"], se=calibrated["se"])
    out["validate"] = _mean_se(_ce_gain(*val), dist)
    return out


def _logits_both(net: Supernet, batches: Iterable[dict[str, Any]], rt: Runtime) -> Logits:
    """(logits under the learned alpha and beta, logits under uniform ones, labels) of
    every clip of ``batches``, float64 on the CPU; the supernet is left as it was."""
    learned = [p.detach().clone() for p in net.arch_parameters()]
    (mine, flat), labels = _logits_under(
        net, batches, rt, [learned, [torch.zeros_like(v) for v in learned]]
    )
    return mine, flat, labels


def _logits_under(
    net: Supernet,
    batches: Iterable[dict[str, Any]],
    rt: Runtime,
    settings: Sequence[Sequence[torch.Tensor]],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The logits of every clip of ``batches`` under each setting of the architecture
    parameters (float64, CPU), and the labels. Every batch runs with its own BatchNorm
    statistics; alpha, beta, the running statistics and the mode are put back."""
    params = net.arch_parameters()
    saved = [p.detach().clone() for p in params]
    was_training = net.training
    logits: list[list[torch.Tensor]] = [[] for _ in settings]
    labels: list[torch.Tensor] = []
    net.train()
    try:
        with torch.no_grad(), frozen_bn_stats(net):
            for batch in batches:
                if not batch["label"].numel():
                    continue
                x = rt.input(batch["clip"])
                labels.append(batch["label"].cpu())
                for out, values in zip(logits, settings):
                    for p, v in zip(params, values):
                        p.copy_(v)
                    with rt.autocast():
                        out.append(net(x).double().cpu())
    finally:
        with torch.no_grad():
            for p, v in zip(params, saved):
                p.copy_(v)
        net.train(was_training)
    if not labels:
        empty = torch.zeros(0, net.num_classes, dtype=torch.float64)
        return [empty for _ in settings], torch.zeros(0, dtype=torch.long)
    return [torch.cat(o) for o in logits], torch.cat(labels)


def _ce_gain(learned: torch.Tensor, uniform: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    ce = nn.functional.cross_entropy
    return ce(uniform, labels, reduction="none") - ce(learned, labels, reduction="none")


def _fit_temperature(logits: torch.Tensor, labels: torch.Tensor, dist: Dist) -> float:
    """The T >= 1 (on a grid, log-spaced) that minimises the mean cross-entropy of
    ``logits / T`` over every rank's clips; 1 where there are none."""
    temps = _LOG_TEMPERATURES.exp()
    ce = nn.functional.cross_entropy
    sums = dist.sum(
        [float(ce(logits / t, labels, reduction="sum")) if len(labels) else 0.0 for t in temps]
    )
    return float(temps[min(range(len(sums)), key=lambda i: (sums[i], i))])


def _mean_se(d: torch.Tensor, dist: Dist) -> dict[str, Any]:
    n, total, sq = dist.sum([float(d.numel()), float(d.sum()), float((d * d).sum())])
    if n < 2:
        return {"gain": None, "se": None, "clips": int(n)}
    mean = total / n
    var = max(sq / n - mean * mean, 0.0) * n / (n - 1)
    return {"gain": mean, "se": math.sqrt(var / n), "clips": int(n)}


def confirmed(heldout: dict[str, Any] | None) -> bool:
    """The held-out gain stands ``HELDOUT_SE`` standard errors above zero."""
    if not heldout or heldout.get("gain") is None:
        return False
    return heldout["gain"] > HELDOUT_SE * heldout["se"]


def choice_effects(
    net: Supernet,
    choices: Sequence[Choice],
    batches: Iterable[dict[str, Any]],
    rt: Runtime,
) -> list[dict[str, Any]]:
    """What each undecided choice is worth: the supernet with the learned alpha and
    beta but that one choice forced to its runner-up, against forced to its winner.
    Per choice, the mean per-clip cross-entropy difference on ``batches`` (runner-up
    minus winner, nats: > 0 means the winner predicts better) with its standard
    error, and the difference in expected cost (GMACs).

    Why: the held-out gain judges the architecture as a whole. A choice left near
    0.5 is either one the data cannot tell apart (both options predict alike, and
    then only the cost should decide) or one the search had no time for; forcing it
    either way and measuring tells the two apart, and says so to the user instead
    of only "arbitrary" (docs/design.md, "Search decisiveness")."""
    if not choices:
        return []
    learned = [p.detach().clone() for p in net.arch_parameters()]
    settings, gmacs = [], []
    for c in choices:
        for option in (c.winner, c.runner_up):
            values = _forced(net, learned, c, option)
            settings.append(values)
            gmacs.append(_expected_gmacs(net, values))
    logits, labels = _logits_under(net, batches, rt, settings)
    ce = nn.functional.cross_entropy
    out = []
    for i, c in enumerate(choices):
        win, other = logits[2 * i], logits[2 * i + 1]
        d = ce(other, labels, reduction="none") - ce(win, labels, reduction="none")
        m = _mean_se(d, rt.dist)
        out.append(
            {
                "choice": c.label,
                "winner": c.names[0],
                "runner_up": c.names[1],
                "ce_diff": m["gain"],
                "se": m["se"],
                "clips": m["clips"],
                "gmacs_diff": gmacs[2 * i + 1] - gmacs[2 * i],
            }
        )
    return out


def _forced(
    net: Supernet, learned: list[torch.Tensor], c: Choice, option: int
) -> list[torch.Tensor]:
    """The learned alpha and beta with one choice's logits made one-hot on ``option``
    (its softmax exactly 1 there, 0 elsewhere, in float32)."""
    values = [v.clone() for v in learned]
    n_alpha = len(net.alphas)
    row = values[c.stage][c.row, c.layer] if c.kind == "op" else values[n_alpha + c.stage][c.row]
    row.fill_(-1e4)
    row[option] = 0.0
    return values


def _expected_gmacs(net: Supernet, values: list[torch.Tensor]) -> float:
    n_alpha = len(net.alphas)
    table = net.cost_table.to(torch.device("cpu"))
    op_probs = [v.detach().cpu().softmax(-1) for v in values[:n_alpha]]
    path_probs = [v.detach().cpu().softmax(-1) for v in values[n_alpha:]]
    return float(expected_cost(table, op_probs, path_probs)) / 1e9
