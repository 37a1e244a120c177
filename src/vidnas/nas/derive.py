"""From architecture parameters to one architecture (paper section 3.3).

Ops: the argmax of alpha in every stack layer; layers whose argmax is ``skip``
are dropped, which is how depth is searched. Widths: the Viterbi algorithm over
beta, the path from the stem to the last stage whose product of transition
probabilities ``p_ij`` is largest. Ties go to the lower index, so a derivation
is a pure function of alpha and beta.

Budget mode adds a constraint (docs/design.md, "Derivation"): the most probable
architecture whose cost lies within a tolerance of the budget. The unconstrained
argmax is that architecture whenever it is inside; otherwise dynamic programming
over stages keeps, for every width and cost, the most probable way to get there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from vidnas.models.cost import (
    classifier_cost,
    network_cost,
    op_cost,
    stem_cost,
    transition_cost,
)
from vidnas.models.ops import SKIP
from vidnas.models.space import SearchSpace
from vidnas.models.spec import ArchSpec, StageSpec
from vidnas.nas.supernet import Supernet


@dataclass(frozen=True)
class Derivation:
    """The derived spec and where each of its parts sits in the supernet."""

    spec: ArchSpec
    path: tuple[int, ...]  # chosen node (candidate width index) per stage
    layers: tuple[tuple[int, ...], ...]  # supernet layer index of each kept block, per stage
    path_prob: float  # product of p_ij along the path


def viterbi(path_probs: Sequence[torch.Tensor]) -> tuple[list[int], float]:
    """The most probable path through the stages.

    ``path_probs[s]`` is ``[n_prev, n_cur]``; stage 0's ``n_prev`` is 1 (the stem).
    Dynamic programming over log-probabilities, keeping for every node of a stage
    the best path that ends there: O(sum n_prev * n_cur) instead of one term per path.
    """
    score = [0.0]  # log-probability of the best path ending at each node
    back: list[list[int]] = []
    for p in path_probs:
        logp = torch.log(p.detach().double().cpu()).tolist()
        n_prev, n_cur = len(logp), len(logp[0])
        if n_prev != len(score):
            raise ValueError("path_probs do not chain: row count != previous column count")
        new, ptr = [], []
        for j in range(n_cur):
            best_i = max(range(n_prev), key=lambda i: (score[i] + logp[i][j], -i))
            new.append(score[best_i] + logp[best_i][j])
            ptr.append(best_i)
        score, back = new, [*back, ptr]
    end = max(range(len(score)), key=lambda j: (score[j], -j))
    path = [end]
    for ptr in reversed(back[1:]):
        path.append(ptr[path[-1]])
    path.reverse()
    return path, math.exp(score[end])


def derive(
    space: SearchSpace,
    op_probs: Sequence[torch.Tensor],
    path_probs: Sequence[torch.Tensor],
    input_shape: Sequence[int],
    num_classes: int,
    name: str | None = None,
) -> Derivation:
    """The architecture that alpha (as ``op_probs``) and beta (as ``path_probs``) select."""
    path, prob = viterbi(path_probs)
    stages, layers = [], []
    for st, node, probs in zip(space.stages, path, op_probs):
        keep, ops = [], []
        for layer_idx, row in enumerate(probs[node].detach().cpu().tolist()):
            best = max(range(len(row)), key=lambda o: (row[o], -o))
            if space.ops[best] != SKIP:
                keep.append(layer_idx)
                ops.append(space.ops[best])
        stages.append(StageSpec(st.widths[node], st.stride, tuple(ops)))
        layers.append(tuple(keep))
    spec = ArchSpec(
        tuple(input_shape),  # type: ignore[arg-type]
        space.stem_width,
        space.stem_stride,
        tuple(stages),
        num_classes,
        name=name,
    )
    return Derivation(spec, tuple(path), tuple(layers), prob)


def _best_ops(space: SearchSpace, probs: torch.Tensor) -> list[tuple[float, list[int]]]:
    """For one stage at one width: for k = 0..max_layers conv layers, the largest
    sum of op log-probabilities and the op index of every layer that achieves it."""
    logp = torch.log(probs.detach().double().cpu()).tolist()
    skip = space.ops.index(SKIP) if SKIP in space.ops else None
    conv = [o for o in range(len(space.ops)) if o != skip]
    best_conv = [max(conv, key=lambda o: (row[o], -o)) for row in logp]
    if skip is None:  # every layer is a conv: only k = max_layers exists
        return [(-math.inf, [])] * len(logp) + [
            (sum(r[o] for r, o in zip(logp, best_conv)), best_conv)
        ]
    gain = [r[c] - r[skip] for r, c in zip(logp, best_conv)]
    order = sorted(range(len(logp)), key=lambda i: (-gain[i], i))
    out = []
    for k in range(len(logp) + 1):
        ops = [skip] * len(logp)
        for i in order[:k]:
            ops[i] = best_conv[i]
        out.append((sum(r[o] for r, o in zip(logp, ops)), ops))
    return out


def derive_within(
    space: SearchSpace,
    op_probs: Sequence[torch.Tensor],
    path_probs: Sequence[torch.Tensor],
    input_shape: Sequence[int],
    num_classes: int,
    budget_gmacs: float,
    tolerance: float = 0.1,
    name: str | None = None,
) -> Derivation:
    """The most probable architecture (product of its path's ``p_ij`` and its ops'
    probabilities) whose cost is within ``tolerance`` of ``budget_gmacs``; the one
    closest to the budget, most probable first, if none is.

    A stage's cost depends only on its width, the width before it and how many of
    its layers are convs, so the search runs over (width, cost) states per stage,
    vectorised; states whose costs round to the same 1e-4 of the budget are merged,
    keeping the more probable, which bounds the state count in the paper's space.
    """
    free = derive(space, op_probs, path_probs, input_shape, num_classes, name)
    budget = budget_gmacs * 1e9
    lo, hi = budget * (1 - tolerance), budget * (1 + tolerance)
    if lo <= network_cost(free.spec).macs <= hi:
        return free
    history, ops_tables, node, macs, score = _stage_states(
        space, op_probs, path_probs, input_shape, budget * 1e-4
    )
    last_widths = np.array(space.stages[-1].widths)
    total = macs + np.array([classifier_cost(int(w), num_classes).macs for w in last_widths])[node]
    inside = np.nonzero((total >= lo) & (total <= hi))[0]
    if inside.size:
        best = int(inside[np.argmax(score[inside])])
    else:
        best = int(np.lexsort((-score, np.abs(total - budget)))[0])
    choice = []  # (node, conv layers) per stage, backtracked from the best end state
    for back, nodes, ks in reversed(history):
        choice.append((int(nodes[best]), int(ks[best])))
        best = int(back[best])
    choice.reverse()
    one_hot_ops, one_hot_path = _one_hot(space, op_probs, ops_tables, choice)
    d = derive(space, one_hot_ops, one_hot_path, input_shape, num_classes, name)
    path_prob = math.prod(
        float(pp[i, j]) for pp, i, j in zip(path_probs, (0, *d.path[:-1]), d.path)
    )
    return Derivation(d.spec, d.path, d.layers, path_prob)


def _stage_states(
    space: SearchSpace,
    op_probs: Sequence[torch.Tensor],
    path_probs: Sequence[torch.Tensor],
    input_shape: Sequence[int],
    grain: float,
) -> tuple[list, list, np.ndarray, np.ndarray, np.ndarray]:
    """Dynamic programming over the stages: after each, every reachable (node, cost)
    state (costs merged to ``grain`` MACs) with its best log-probability. Returns the
    back-pointers per stage (state it came from, node, conv layers), each stage's
    best-ops tables, and the final states' nodes, MACs and scores."""
    stem, shape = stem_cost(tuple(input_shape), space.stem_width, space.stem_stride)  # type: ignore[arg-type]
    node, macs, score = np.zeros(1, np.int64), np.full(1, stem.macs, np.float64), np.zeros(1)
    widths_before, history, ops_tables = [space.stem_width], [], []
    for st, probs, pp in zip(space.stages, op_probs, path_probs):
        logp = torch.log(pp.detach().double().cpu()).numpy()
        table = [_best_ops(space, probs[j]) for j in range(len(st.widths))]
        parts = []
        for j, width in enumerate(st.widths):
            for i, w_in in enumerate(widths_before):
                idx = np.nonzero(node == i)[0]
                if not idx.size or logp[i, j] == -math.inf:
                    continue
                trans, out_shape = transition_cost((w_in, *shape[1:]), width, st.stride)
                block = op_cost("dil1", out_shape).macs
                for k, (ops_score, _) in enumerate(table[j]):
                    if ops_score == -math.inf:
                        continue
                    m = macs[idx] + trans.macs + k * block
                    sc = score[idx] + logp[i, j] + ops_score
                    parts.append((idx, np.full(idx.size, j), np.full(idx.size, k), m, sc))
        back, node, ks, macs, score = (np.concatenate(col) for col in zip(*parts))
        bucket = np.round(macs / grain).astype(np.int64)
        order = np.lexsort((-score, bucket, node))  # best first within (node, bucket)
        first = np.ones(order.size, bool)
        first[1:] = (node[order][1:] != node[order][:-1]) | (
            bucket[order][1:] != bucket[order][:-1]
        )
        keep = order[first]
        back, node, ks, macs, score = back[keep], node[keep], ks[keep], macs[keep], score[keep]
        history.append((back, node, ks))
        ops_tables.append(table)
        widths_before = list(st.widths)
        _, shape = transition_cost(shape, st.widths[0], st.stride)
    return history, ops_tables, node, macs, score


def _one_hot(
    space: SearchSpace,
    op_probs: Sequence[torch.Tensor],
    ops_tables: list,
    choice: list[tuple[int, int]],
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """One-hot alpha and beta that select ``choice`` (node, conv layers per stage)."""
    one_hot_ops, one_hot_path, prev = [], [], 0
    for st, probs, table, (j, k) in zip(space.stages, op_probs, ops_tables, choice):
        sel = torch.zeros(probs.shape, dtype=torch.float64)
        for layer, o in enumerate(table[j][k][1]):
            sel[j, layer, o] = 1.0
        one_hot_ops.append(sel)
        p = torch.zeros(len(one_hot_path[-1][0]) if one_hot_path else 1, len(st.widths))
        p[prev, j] = 1.0
        one_hot_path.append(p.double())
        prev = j
    return one_hot_ops, one_hot_path


def derive_from(
    supernet: Supernet,
    name: str | None = None,
    budget_gmacs: float | None = None,
    tolerance: float = 0.1,
) -> Derivation:
    """The current derivation of a :class:`Supernet`; with ``budget_gmacs``, the most
    probable one within ``tolerance`` of it (:func:`derive_within`)."""
    with torch.no_grad():
        args = (
            supernet.space,
            supernet.op_probs(),
            supernet.path_probs(),
            supernet.input_shape,
            supernet.num_classes,
        )
        if budget_gmacs is None:
            return derive(*args, name)
        return derive_within(*args, budget_gmacs, tolerance, name)


def sample_derivation(
    space: SearchSpace,
    input_shape: Sequence[int],
    num_classes: int,
    gen: torch.Generator,
    name: str | None = None,
) -> Derivation:
    """An architecture drawn uniformly from the space (every width and every layer's op
    equally likely, as the paper counts architectures), with its supernet position."""
    op_probs, path_probs = [], []
    n_prev = 1
    for st in space.stages:
        n = len(st.widths)
        ops = torch.randint(len(space.ops), (n, st.max_layers), generator=gen)
        op_probs.append(torch.nn.functional.one_hot(ops, len(space.ops)).double())
        node = int(torch.randint(n, (1,), generator=gen))
        p = torch.zeros(n_prev, n, dtype=torch.float64)
        p[:, node] = 1.0
        path_probs.append(p)
        n_prev = n
    return derive(space, op_probs, path_probs, input_shape, num_classes, name)
