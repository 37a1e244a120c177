"""Cheap estimates of how well an architecture will train, to rank candidates
without training each: the training-free scores of the zero-cost NAS literature,
and the rank correlation that says whether a ranking can be trusted
(``vidnas bench`` reports Kendall's tau of each against stand-alone accuracy).

- ``params`` and ``macs``: the analytic counts (:mod:`vidnas.models.cost`).
- ``naswot``: NASWOT (Mellor et al., "Neural Architecture Search without
  Training", ICML 2021): for one batch of clips, the binary code of which ReLUs
  each clip switches on; architectures whose codes tell the clips apart (a
  kernel ``K_ij`` = number of units where clips i and j agree, with a large
  log-determinant) tend to train better. One forward pass, no labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from vidnas.models.cost import network_cost
from vidnas.models.network import build_network
from vidnas.models.ops import DilatedBlock
from vidnas.models.spec import ArchSpec


@torch.no_grad()
def naswot(spec: ArchSpec, clips: torch.Tensor, seed: int = 0) -> float:
    """The NASWOT score of ``spec`` at initialisation (seeded) on ``clips``
    ``[N, 3, T, H, W]``: log|det K| of the clips' ReLU agreement kernel."""
    codes: list[torch.Tensor] = []

    def record(_module: nn.Module, _inputs: object, out: torch.Tensor) -> None:
        codes.append((out.flatten(1) > 0).to(torch.float64))

    # The network's initialisation draws from torch's global generator; a forked
    # one seeds it without changing what the caller's generator draws next.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # Blocks start live: a block that starts as the identity contributes no codes.
        net = build_network(spec, dropout=0.0, residual_init=1.0).train()
    # The units after a ReLU: the stem's and transitions' ReLU modules, and each
    # block's output (its last ReLU, applied functionally inside the block).
    units = [m for m in net.modules() if isinstance(m, (nn.ReLU, DilatedBlock))]
    hooks = [m.register_forward_hook(record) for m in units]
    try:
        with torch.no_grad():
            net(clips)
    finally:
        for h in hooks:
            h.remove()
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(k)
    return float(logdet) if sign > 0 else -math.inf


def training_free_scores(spec: ArchSpec, clips: torch.Tensor) -> dict[str, float]:
    """Every training-free score of ``spec``: parameters, MACs, NASWOT on ``clips``."""
    cost = network_cost(spec)
    return {"params": float(cost.params), "macs": float(cost.macs), "naswot": naswot(spec, clips)}


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b of two rankings (ties counted as neither concordant nor
    discordant, and corrected for); None with fewer than 2 pairs or a constant side."""
    n = len(x)
    if n != len(y):
        raise ValueError("kendall_tau needs two sequences of one length")
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom
