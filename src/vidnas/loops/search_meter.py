"""What a search records of each epoch (as PySlowFast's meters): one row of
``metrics.jsonl`` and TensorBoard, and one snapshot of alpha and beta for
``arch_history.json`` and the alpha/beta plot.

The row has three parts: the epoch's training sums (weight and architecture
steps), the single-view evaluations of the validate and inference splits, and
the architecture as it stands (expected and derived cost, entropies, the
derived network and how sure alpha and beta are of it).
"""

from __future__ import annotations

from typing import Any

import torch

from vidnas.models.cost import network_cost
from vidnas.nas.decisiveness import Decisiveness
from vidnas.nas.derive import Derivation
from vidnas.nas.supernet import Supernet

SUM_KEYS = ("train_loss", "train_correct", "train_count", "arch_loss", "arch_ce", "arch_count")


def training_part(sums: dict[str, float]) -> dict[str, Any]:
    """Means of the epoch's weight and architecture steps (:data:`SUM_KEYS`)."""
    n = max(sums["train_count"], 1)
    return {
        "train_loss": sums["train_loss"] / n,
        "train_acc": sums["train_correct"] / n,
        "train_clips": int(sums["train_count"]),
        "arch_step_loss": sums["arch_loss"] / sums["arch_count"] if sums["arch_count"] else None,
    }


def evaluation_part(evals: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Loss and accuracy of each evaluated split (``val``, ``inference``)."""
    return {f"{name}_{k}": res[k] for name, res in evals.items() for k in ("loss", "acc")}


def architecture_part(
    net: Supernet,
    d: Derivation,
    dec: Decisiveness,
    previous: dict[str, Any] | None,
    argmax: Derivation | None = None,
) -> dict[str, Any]:
    """The architecture at the epoch's end: ``d`` derived, ``dec`` its decisiveness,
    ``previous`` the last epoch's ``arch`` (None at the first), ``argmax`` the
    unconstrained derivation where ``d`` is a budget-mode one."""
    cost = network_cost(d.spec)
    with torch.no_grad():
        op_probs = [p.cpu() for p in net.op_probs()]
        path_probs = [p.cpu() for p in net.path_probs()]
        expected = net.expected_macs().item()
    stages = d.spec.stages
    arch = {"widths": [st.width for st in stages], "ops": [list(st.ops) for st in stages]}
    row = {
        "expected_gmacs": expected / 1e9,
        "derived_gmacs": cost.macs / 1e9,
        "derived_params": cost.params,
        "path_prob": d.path_prob,
        "alpha_entropy": entropy(op_probs),
        "beta_entropy": entropy(path_probs),
        "arch": arch,
        "op_win": list(dec.op_win_mean),
        "op_win_min": dec.op_win_min,
        "width_win": list(dec.width_win),
        "width_win_min": dec.width_win_min,
        "undecided": len(dec.undecided),
        "derived_changed": previous is not None and previous != arch,
    }
    if argmax is not None:  # what the unconstrained argmax would cost
        row["argmax_gmacs"] = network_cost(argmax.spec).macs / 1e9
    return row


def entropy(probs: list[torch.Tensor]) -> float:
    """Mean entropy (nats) of the softmax distributions that have a choice to make."""
    ents = [
        -(p * p.clamp_min(1e-30).log()).sum(-1).reshape(-1)
        for p in (q.double() for q in probs)
        if p.numel() and p.shape[-1] > 1
    ]
    return float(torch.cat(ents).mean()) if ents else 0.0


def arch_snapshot(epoch: int, net: Supernet) -> dict[str, Any]:
    """Per stage: reach probability of each width, reach-weighted mean op probabilities;
    and alpha's and beta's probabilities themselves."""
    with torch.no_grad():
        op_probs = [p.cpu() for p in net.op_probs()]
        path_probs = [p.cpu() for p in net.path_probs()]
    reach_all, ops_all = [], []
    r = torch.ones(1, dtype=torch.float64)
    for a, p in zip(op_probs, path_probs):
        r = r @ p.double()
        reach_all.append(r.tolist())
        if a.shape[1] == 0:
            ops_all.append([])
        else:
            ops_all.append((r[:, None] * a.double().mean(1)).sum(0).tolist())
    return {
        "epoch": epoch,
        "reach": reach_all,
        "ops": ops_all,
        "alpha": [a.tolist() for a in op_probs],
        "beta": [p.tolist() for p in path_probs],
    }


def postfix(sums: dict[str, float], net: Supernet, dec: Decisiveness | None) -> dict[str, str]:
    """The progress bar's figures within an epoch."""
    n = max(sums["train_count"], 1)
    out = {
        "loss": f"{sums['train_loss'] / n:.3f}",
        "acc": f"{sums['train_correct'] / n:.3f}",
        "GMACs": f"{net.expected_macs().item() / 1e9:.3f}",
    }
    if dec is not None:
        out["op_win_min"] = _prob(dec.op_win_min)
        out["width_win_min"] = _prob(dec.width_win_min)
    return out


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """One line on the terminal for an epoch's row."""
    r = row
    return (
        f"epoch {r['epoch']}/{epochs} {r['phase']}: train {r['train_loss']:.3f}/"
        f"{r['train_acc']:.3f}  val {r['val_loss']:.3f}/{r['val_acc']:.3f}  inference "
        f"{r['inference_loss']:.3f}/{r['inference_acc']:.3f} (loss/acc)  expected "
        f"{r['expected_gmacs']:.4f} GMACs  derived {r['derived_gmacs']:.4f} GMACs"
        f"{' (changed)' if r['derived_changed'] else ''}  winning op >= "
        f"{_prob(r['op_win_min'])}, winning width >= {_prob(r['width_win_min'])}"
    )


def _prob(p: float | None) -> str:
    return "-" if p is None else f"{p:.2f}"
