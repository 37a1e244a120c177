"""Did the search decide? How sure alpha and beta are of what the derivation reads
out of them (docs/design.md, "Search decisiveness").

The derivation always returns an architecture: the argmax of alpha per layer and
the Viterbi path over beta. When those distributions are still near uniform the
argmax is noise, and presenting it as a searched network would be a false claim.
So every epoch measures, on the derived path only (the layers and edges the
derived network is made of):

- per stage, the probability of the winning op of each of its searched layers
  (alpha of the chosen node's layer), and their mean;
- per stage, the probability of the chosen width: beta of the edge from the
  previous stage's chosen node (beta is a softmax over a node's outgoing edges);

and calls a layer or a stage *undecided* when its winner is below a threshold
(``search.decided_threshold``, 0.6 by default: with four ops, a winner at 0.6
has more than twice the probability of all three others' average). Choices
that the space fixes (one candidate width, one op) are not choices and are left
out. The messages are plain words, for the CLI, ``arch.json`` and ``report.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vidnas.models.space import SearchSpace
from vidnas.nas.supernet import Supernet


@dataclass(frozen=True)
class Choice:
    """One undecided choice on the derived path and its two most probable options:
    a width (beta's row ``row``, the previous stage's chosen node; options are nodes)
    or a layer's op (alpha of node ``row``, layer ``layer``; options are op indices)."""

    kind: str  # "width" or "op"
    stage: int  # index into the space's stages
    row: int
    layer: int  # the layer for an op; -1 for a width
    winner: int
    runner_up: int
    label: str  # for people: "stage 3 width", "stage 5 layer 1"
    names: tuple[str, str]  # the winner's and the runner-up's names


@dataclass(frozen=True)
class Decisiveness:
    """Winning probabilities on the derived path. ``None`` marks a stage without the
    choice (no searched layer, or a single candidate width)."""

    op_win: tuple[tuple[float, ...], ...]  # per stage, per searched layer of the chosen node
    width_win: tuple[float | None, ...]  # per stage
    ops: tuple[tuple[str, ...], ...]  # the winning op of each of those layers
    threshold: float
    undecided: tuple[str, ...] = field(default=())
    choices: tuple[Choice, ...] = field(default=())  # the undecided ones, structured

    @property
    def op_win_mean(self) -> tuple[float | None, ...]:
        return tuple(sum(w) / len(w) if w else None for w in self.op_win)

    @property
    def op_win_min(self) -> float | None:
        flat = [p for w in self.op_win for p in w]
        return min(flat) if flat else None

    @property
    def width_win_min(self) -> float | None:
        flat = [p for p in self.width_win if p is not None]
        return min(flat) if flat else None

    @property
    def decided(self) -> bool:
        return not self.undecided

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Decisiveness:
        """The probabilities of an ``arch.json`` record (:meth:`to_dict`); the
        structured choices are not recorded (their effects are)."""
        return cls(
            tuple(tuple(w) for w in record["op_win"]),
            tuple(record["width_win"]),
            tuple(tuple(o) for o in record["ops"]),
            record["threshold"],
            tuple(record["undecided"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "ops": [list(o) for o in self.ops],
            "op_win": [list(w) for w in self.op_win],
            "op_win_mean": list(self.op_win_mean),
            "op_win_min": self.op_win_min,
            "width_win": list(self.width_win),
            "width_win_min": self.width_win_min,
            "decided": self.decided,
            "undecided": list(self.undecided),
        }


def measure(
    space: SearchSpace,
    path: Sequence[int],
    op_probs: Sequence[torch.Tensor],
    path_probs: Sequence[torch.Tensor],
    threshold: float,
) -> Decisiveness:
    """Decisiveness of the derivation ``path`` (a node index per stage) under the
    given alpha (``op_probs[s]``: ``[nodes, layers, ops]``) and beta
    (``path_probs[s]``: ``[prev nodes, nodes]``)."""
    op_win, width_win, ops, notes, choices = [], [], [], [], []
    prev = 0
    for s, (st, node) in enumerate(zip(space.stages, path)):
        name = f"stage {st.number}"
        if len(st.widths) > 1:
            p = float(path_probs[s][prev, node])
            width_win.append(p)
            if p < threshold:
                notes.append(
                    f"{name}: no clear choice of width ({st.widths[node]} at {p:.2f}, "
                    f"threshold {threshold:.2f}); the derived width is arbitrary"
                )
                other = _runner_up(path_probs[s][prev].tolist(), node)
                names_ = (str(st.widths[node]), str(st.widths[other]))
                choices.append(Choice("width", s, prev, -1, node, other, f"{name} width", names_))
        else:
            width_win.append(None)
        wins, names, weak = [], [], []
        if len(space.ops) > 1:
            rows = op_probs[s][node].detach().double().cpu()
            for layer, row in enumerate(rows.tolist()):
                best = max(range(len(row)), key=lambda o: (row[o], -o))
                wins.append(row[best])
                names.append(space.ops[best])
                if row[best] < threshold:
                    weak.append(f"layer {layer + 1} ({space.ops[best]} at {row[best]:.2f})")
                    other = _runner_up(row, best)
                    label = f"{name} layer {layer + 1}"
                    pair = (space.ops[best], space.ops[other])
                    choices.append(Choice("op", s, node, layer, best, other, label, pair))
        if weak:
            every = len(weak) == len(wins)
            notes.append(
                f"{name}: no clear choice of op in {'every layer' if every else 'some layers'}: "
                f"{', '.join(weak)}; threshold {threshold:.2f}, the derived ops there are "
                "arbitrary"
            )
        op_win.append(tuple(wins))
        ops.append(tuple(names))
        prev = node
    return Decisiveness(
        tuple(op_win), tuple(width_win), tuple(ops), threshold, tuple(notes), tuple(choices)
    )


def measure_supernet(net: Supernet, path: Sequence[int], threshold: float) -> Decisiveness:
    """:func:`measure` under the supernet's alpha and beta as they are now."""
    with torch.no_grad():
        return measure(net.space, path, net.op_probs(), net.path_probs(), threshold)


def _runner_up(probs: Sequence[float], winner: int) -> int:
    return max((i for i in range(len(probs)) if i != winner), key=lambda i: (probs[i], -i))
