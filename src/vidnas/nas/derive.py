"""From architecture parameters to one architecture (paper section 3.3).

Ops: the argmax of alpha in every stack layer; layers whose argmax is ``skip``
are dropped, which is how depth is searched. Widths: the Viterbi algorithm over
beta, the path from the stem to the last stage whose product of transition
probabilities ``p_ij`` is largest. Ties go to the lower index, so a derivation
is a pure function of alpha and beta.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

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


def derive_from(supernet: Supernet, name: str | None = None) -> Derivation:
    """The current derivation of a :class:`Supernet`."""
    with torch.no_grad():
        return derive(
            supernet.space,
            supernet.op_probs(),
            supernet.path_probs(),
            supernet.input_shape,
            supernet.num_classes,
            name,
        )


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
