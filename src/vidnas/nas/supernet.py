"""The relaxed supernet (paper section 3, docs/design.md "The relaxed supernet").

Every (stage, candidate width) is a node. Between every node i of one stage
and every node j of the next sits a transition (the paper's head layer) h_ij,
weighted by
``p_ij = softmax_j(beta_i)`` (eq. 1): the input of node j is
``sum_i p_ij * h_ij(x_i)``, as DenseNAS routes. Each node owns its stack
layers, each a mixed op ``sum_o softmax(alpha)_o * o(x)`` (eqs. 2-3). The
nodes of the last stage each have a classifier; the logits are their sum
weighted by the probability of reaching each node, ``r_j = sum_i r_i p_ij``
(r = 1 at the stem), so that the output is an expectation over paths, like the
cost.

The module layout mirrors :class:`vidnas.models.network.VidNet` (``stem``,
``stages[s].nodes[j].transitions[i]``, ``stages[s].nodes[j].layers[l].ops[name]``,
``classifiers[j]``) so a derived network inherits its path's weights by name
(:func:`inherit_weights`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vidnas.config import Config, config_from_dict
from vidnas.engine.rundir import RunDir
from vidnas.errors import SpecError
from vidnas.models import cost as costs
from vidnas.models.network import VidNet
from vidnas.models.ops import (
    Classifier,
    Stem,
    Transition,
    init_weights,
    make_op,
    rename_legacy_keys,
)
from vidnas.models.space import SearchSpace, search_space

CHECKPOINT_KIND = "search"  # the kind of checkpoint a search writes


class MixedOp(nn.Module):
    """A stack layer in the relaxation: every candidate op, mixed by softmax(alpha)."""

    def __init__(self, ops: Sequence[str], width: int) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({name: make_op(name, width) for name in ops})

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, active: list[int] | None = None
    ) -> torch.Tensor:
        """``weights`` over every op, or with ``active`` (op indices) over those only."""
        ops = list(self.ops.values())
        chosen = [ops[i] for i in active] if active is not None else ops
        out = None
        for w, op in zip(weights.unbind(0), chosen):
            y = w * op(x)
            out = y if out is None else out + y
        return out


class Node(nn.Module):
    """One (stage, width): a transition from every node of the previous stage, then its
    stack layers."""

    def __init__(
        self, prev_widths: Sequence[int], width: int, stride: int, depth: int, ops: Sequence[str]
    ) -> None:
        super().__init__()
        self.width = width
        self.transitions = nn.ModuleList(Transition(c, width, stride) for c in prev_widths)
        self.layers = nn.ModuleList(MixedOp(ops, width) for _ in range(depth))


class SuperStage(nn.Module):
    def __init__(self, nodes: Sequence[Node]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(nodes)


@dataclass(frozen=True)
class CostTable:
    """Per-op costs of every supernet edge at one input shape, in MACs (float64).

    ``transition[s]`` is ``[n_prev, n_cur]``, ``op[s]`` is ``[n_cur, n_ops]`` (the cost of
    one stack layer of each op at each node; every layer of a node costs the same),
    ``classifier`` is ``[n_last]``.
    """

    stem: float
    transition: tuple[torch.Tensor, ...]
    op: tuple[torch.Tensor, ...]
    classifier: torch.Tensor

    def to(self, device: torch.device) -> CostTable:
        """This table on ``device`` (itself if already there)."""
        if self.classifier.device == device:
            return self
        return CostTable(
            self.stem,
            tuple(t.to(device) for t in self.transition),
            tuple(t.to(device) for t in self.op),
            self.classifier.to(device),
        )

    @classmethod
    def build(cls, space: SearchSpace, input_shape: Sequence[int], num_classes: int) -> CostTable:
        stem_cost, shape = costs.stem_cost(tuple(input_shape), space.stem_width, space.stem_stride)
        prev = [shape]
        transitions, ops = [], []
        for st in space.stages:
            trans = torch.zeros(len(prev), len(st.widths), dtype=torch.float64)
            op = torch.zeros(len(st.widths), len(space.ops), dtype=torch.float64)
            cur = []
            for j, w in enumerate(st.widths):
                for i, shp in enumerate(prev):
                    c, out = costs.transition_cost(shp, w, st.stride)
                    trans[i, j] = c.macs
                cur.append(out)
                for o, name in enumerate(space.ops):
                    op[j, o] = costs.op_cost(name, out).macs
            transitions.append(trans)
            ops.append(op)
            prev = cur
        clf = torch.tensor(
            [costs.classifier_cost(w, num_classes).macs for w in space.stages[-1].widths],
            dtype=torch.float64,
        )
        return cls(float(stem_cost.macs), tuple(transitions), tuple(ops), clf)


def expected_cost(
    table: CostTable,
    op_probs: Sequence[torch.Tensor],
    path_probs: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Expected MACs of the derived network over the relaxed distribution (eq. 4).

    ``op_probs[s]`` is ``[n_cur, layers, n_ops]`` (softmax of alpha), ``path_probs[s]``
    is ``[n_prev, n_cur]`` (softmax of beta, rows sum to 1). From the last stage back,
    ``C_i = c_s(i) + sum_j p_ij (c_h(i,j) + C_j)``: the paper's eq. 4 prints ``c_s^j``
    where ``C_j`` belongs (docs/design.md), which would drop every stage past j.
    The last stage's ``C_j`` includes its classifier. Differentiable in both.
    """
    nxt = None  # C_j of the stage after the current one
    for s in reversed(range(len(table.op))):
        probs = op_probs[s].to(torch.float64)
        c_stack = (probs * table.op[s].unsqueeze(1)).sum(dim=(1, 2))  # [n_cur]
        c_here = c_stack + (table.classifier if nxt is None else nxt)
        p = path_probs[s].to(torch.float64)
        nxt = (p * (table.transition[s] + c_here.unsqueeze(0))).sum(dim=1)  # C of previous stage
    if nxt is None or nxt.numel() != 1:
        raise SpecError("a cost table needs at least one stage, whose first has one input")
    return table.stem + nxt[0]


class Supernet(nn.Module):
    """Every network of a space at once, with architecture parameters alpha and beta."""

    def __init__(
        self,
        space: SearchSpace,
        input_shape: Sequence[int],
        num_classes: int,
        residual_scale: float = 0.0,
        activation_checkpointing: bool = False,
    ) -> None:
        """``residual_scale``: the starting scale of every residual block's last BN
        (0 starts each block as the identity, and so as ``skip``).
        ``activation_checkpointing``: keep only each transition's and each mixed
        layer's input for the backward pass and recompute the rest there
        (``runtime.activation_checkpointing``; docs/design.md, "Memory")."""
        super().__init__()
        self.activation_checkpointing = activation_checkpointing
        self.space = space
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.stem = Stem(space.stem_width, space.stem_stride, in_channels=input_shape[0])
        stages, prev = [], [space.stem_width]
        for st in space.stages:
            nodes = [Node(prev, w, st.stride, st.max_layers, space.ops) for w in st.widths]
            stages.append(SuperStage(nodes))
            prev = list(st.widths)
        self.stages = nn.ModuleList(stages)
        self.classifiers = nn.ModuleList(Classifier(w, num_classes) for w in prev)
        init_weights(self, residual_scale)
        # Architecture parameters start uniform (zeros), as in DARTS and DenseNAS.
        self.alphas = nn.ParameterList(
            nn.Parameter(torch.zeros(len(st.widths), st.max_layers, len(space.ops)))
            for st in space.stages
        )
        n_prev = [1] + [len(st.widths) for st in space.stages[:-1]]
        self.betas = nn.ParameterList(
            nn.Parameter(torch.zeros(n, len(st.widths))) for n, st in zip(n_prev, space.stages)
        )
        self.cost_table = CostTable.build(space, input_shape, num_classes)
        self.register_load_state_dict_pre_hook(_legacy_keys)

    # ------------------------------------------------------------------ parameters

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alphas, *self.betas]

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return (p for p in self.parameters() if id(p) not in arch)

    def op_probs(self) -> list[torch.Tensor]:
        return [a.softmax(dim=-1) for a in self.alphas]

    def path_probs(self) -> list[torch.Tensor]:
        return [b.softmax(dim=-1) for b in self.betas]

    # ------------------------------------------------------------------ forward

    def expected_macs(self) -> torch.Tensor:
        """Expected MACs per clip of the derived network (float64, differentiable)."""
        # The table is built on the CPU; it follows alpha and beta once, not per call.
        self.cost_table = self.cost_table.to(self.alphas[0].device)
        return expected_cost(self.cost_table, self.op_probs(), self.path_probs())

    def sample_ops(self, k: int, gen: torch.Generator) -> list[torch.Tensor]:
        """``k`` distinct ops per stack layer of every node, drawn from softmax(alpha)
        without replacement by ``gen`` (seeded by the caller: every rank and a resumed
        run draw the same). Per stage ``[nodes, layers, k]`` op indices."""
        out = []
        with torch.no_grad():
            for a in self.alphas:
                probs = a.detach().float().cpu().softmax(-1)
                n, layers, n_ops = probs.shape
                flat = probs.reshape(-1, n_ops)
                if flat.shape[0] == 0:
                    out.append(torch.zeros(n, layers, min(k, n_ops), dtype=torch.long))
                    continue
                idx = torch.multinomial(flat, min(k, n_ops), replacement=False, generator=gen)
                out.append(idx.reshape(n, layers, -1))
        return out

    def _checkpointing(self) -> bool:
        return self.activation_checkpointing and self.training and torch.is_grad_enabled()

    @staticmethod
    def _run_checkpointed(module: nn.Module, *args: Any) -> torch.Tensor:
        # Non-reentrant: works when the weights are frozen (the architecture step)
        # and with non-tensor arguments (the sampled ops).
        return checkpoint(
            module,
            *args,
            use_reentrant=False,
            context_fn=lambda: (contextlib.nullcontext(), frozen_bn_stats(module)),
        )

    def forward(
        self, x: torch.Tensor, op_sample: Sequence[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The relaxed supernet; with ``op_sample`` (from :meth:`sample_ops`) each stack
        layer runs only its sampled ops, weighted by softmax(alpha) renormalised over
        them (DenseNAS, ProxylessNAS): one op per layer trains the weights at a
        fraction of the cost, two give alpha a gradient. Transitions stay relaxed."""
        run = self._run_checkpointed if self._checkpointing() else _run
        outs = [self.stem(x)]
        reach = torch.ones(1, device=x.device, dtype=self.betas[0].dtype)
        op_probs = self.op_probs() if op_sample is None else None
        for s, (stage, p) in enumerate(zip(self.stages, self.path_probs())):
            alpha = self.alphas[s]
            new = []
            for j, node in enumerate(stage.nodes):
                h = None
                for i, transition in enumerate(node.transitions):
                    y = p[i, j] * run(transition, outs[i])
                    h = y if h is None else h + y
                for l_idx, layer in enumerate(node.layers):
                    if op_sample is None:
                        h = run(layer, h, op_probs[s][j, l_idx])
                    else:
                        active = op_sample[s][j, l_idx].tolist()
                        h = run(layer, h, alpha[j, l_idx, active].softmax(-1), active)
                new.append(h)
            reach = reach @ p
            outs = new
        logits = None
        for r, clf, x_j in zip(reach.unbind(0), self.classifiers, outs):
            y = r * clf(x_j)
            logits = y if logits is None else logits + y
        return logits


def _run(module: nn.Module, *args: Any) -> torch.Tensor:
    return module(*args)


@contextlib.contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Recompute without touching BatchNorm's running statistics: the forward pass
    already folded this batch in, and a second update would make checkpointing
    change the result (momentum 0 keeps the running mean and variance; the batch
    counter is put back)."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [
        (m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone())
        for m in bns
    ]
    try:
        for m in bns:
            m.momentum = 0.0
        yield
    finally:
        for m, (momentum, count) in zip(bns, saved):
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


# ---------------------------------------------------------------------- weight sharing


def inherit_weights(
    net: VidNet,
    supernet: Supernet,
    path: Sequence[int],
    layers: Sequence[Sequence[int]],
    classifier: bool = True,
) -> None:
    """Copy the supernet's weights of one path into a standalone network.

    ``path[s]`` is the chosen node of stage s, ``layers[s]`` the supernet layer index of
    each block the network keeps (skip layers dropped). The spec must be the one that
    path derives: widths and ops are checked, so a mismatch fails loudly. With
    ``classifier=False`` the network keeps its own classifier (another class count).
    """
    spec = net.spec
    if len(spec.stages) != len(supernet.stages):
        raise SpecError("network and supernet have different numbers of stages")
    net.stem.load_state_dict(supernet.stem.state_dict())
    prev = 0
    for s, (stage, node_idx, keep) in enumerate(zip(net.stages, path, layers)):
        node = supernet.stages[s].nodes[node_idx]
        st = spec.stages[s]
        if node.width != st.width or len(keep) != len(st.ops):
            raise SpecError(f"stage {s + 2}: network does not match the supernet path")
        stage.transition.load_state_dict(node.transitions[prev].state_dict())
        for block, layer_idx, op in zip(stage.blocks, keep, st.ops):
            block.load_state_dict(node.layers[layer_idx].ops[op].state_dict())
        prev = node_idx
    if classifier:
        net.classifier.fc.load_state_dict(supernet.classifiers[prev].fc.state_dict())


def load_supernet(run_dir: str | Path) -> tuple[Supernet, Config, list[str]]:
    """The supernet of a search run's last checkpoint, with the run's config and classes."""
    state = RunDir(run_dir).load_last(CHECKPOINT_KIND)
    cfg = config_from_dict(state["config"], validate=False)
    supernet = Supernet(search_space(cfg), cfg.input, len(state["classes"]))
    supernet.load_state_dict(state["model"])
    return supernet, cfg, list(state["classes"])


def _legacy_keys(module: nn.Module, state_dict: dict[str, Any], *args: Any) -> None:
    rename_legacy_keys(state_dict)
