"""The architecture step (paper eq. 5, docs/design.md "The search"): Adam on alpha
and beta against ``L_val = CE + cost term`` on a validate batch, with the
weights frozen. Its own object, as DARTS's ``Architect`` and DenseNAS's
``arch_step`` are, so that the search loop keeps only the schedule.

In a job alpha and beta are not under DDP: every rank computes their gradient
on its part of the global batch, the gradients are averaged (weighted by clip
counts, the cost term counted once), and every rank takes the same Adam step
from the same state, so alpha and beta stay identical on every rank.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from vidnas.config import SearchConfig
from vidnas.engine.runtime import Runtime
from vidnas.nas.penalty import CostPenalty
from vidnas.nas.supernet import Supernet


class GradStats:
    """Per-element running sums of the architecture gradient over an epoch: whether
    alpha's gradient is signal or noise (docs/design.md, "Search decisiveness").
    ``snr`` is the median over elements of |mean| / std across the epoch's steps: a
    gradient whose mean stands out of its noise moves Adam steadily; one whose mean
    is buried in it makes Adam random-walk, by about ``arch_lr`` x sqrt(steps)."""

    def __init__(self, size: int) -> None:
        self.sum = torch.zeros(size, dtype=torch.float64)
        self.sq = torch.zeros(size, dtype=torch.float64)
        self.count = 0

    def add(self, params: list[nn.Parameter], scaler: torch.amp.GradScaler) -> None:
        grads = [
            (p.grad if p.grad is not None else torch.zeros_like(p)).detach().flatten()
            for p in params
        ]
        g = torch.cat(grads).double().cpu()
        if scaler.is_enabled():
            g = g / scaler.get_scale()
        if not torch.isfinite(g).all():  # a step the scaler will skip
            return
        self.sum += g
        self.sq += g * g
        self.count += 1

    def summary(self, name: str, part: slice) -> dict[str, float | None]:
        out: dict[str, float | None] = {f"{name}_grad_snr": None, f"{name}_grad_rms": None}
        n = self.count
        if n == 0 or self.sum[part].numel() == 0:
            return out
        out[f"{name}_grad_rms"] = float((self.sq[part] / n).mean().sqrt())
        if n >= 2:  # a spread needs two steps
            mean = self.sum[part] / n
            var = (self.sq[part] / n - mean * mean).clamp_min(0) * (n / (n - 1))
            snr = mean.abs() / var.sqrt().clamp_min(1e-30)
            out[f"{name}_grad_snr"] = float(snr.median())
        return out

    def reset(self) -> None:
        self.sum.zero_()
        self.sq.zero_()
        self.count = 0

    def state_dict(self) -> dict[str, Any]:
        return {"sum": self.sum.clone(), "sq": self.sq.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sum.copy_(state["sum"])
        self.sq.copy_(state["sq"])
        self.count = int(state["count"])


class Architect:
    """Alpha and beta's optimizer and step."""

    def __init__(
        self,
        net: Supernet,
        search: SearchConfig,
        penalty: CostPenalty,
        rt: Runtime,
        lr: float,
    ) -> None:
        """Adam on alpha and beta at ``lr`` (the run's :class:`SearchSchedule`), with
        the rest of its settings from ``search`` (``arch_*``), against cross-entropy
        plus ``penalty`` of the expected GMACs. The step has its own
        gradient scaler (fp16: alpha and beta's gradients flow back through fp16
        activations), its scale kept apart from the weight step's, whose loss and
        gradients are of another size."""
        self.net, self.penalty, self.rt = net, penalty, rt
        self.dist = rt.dist
        self.scaler = rt.grad_scaler()
        s = search
        self.params = net.arch_parameters()
        self.weights = list(net.weight_parameters())  # frozen during the step
        self.opt = torch.optim.Adam(
            self.params,
            lr=lr,
            betas=s.arch_betas,
            eps=s.arch_eps,
            weight_decay=s.arch_weight_decay,
        )
        self.n_alpha = sum(a.numel() for a in net.alphas)
        self.grad_stats = GradStats(sum(p.numel() for p in self.params))

    def cost(self) -> torch.Tensor:
        return self.penalty(self.net.expected_macs() / 1e9)

    def step(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        batch: dict[str, Any],
        check: Callable[[torch.Tensor], None],
    ) -> tuple[float, float, int]:
        """One step on a validate batch through ``forward`` (the supernet, relaxed or
        with a path sample); returns this rank's (summed L_val, summed CE, clips)."""
        n = batch["label"].numel()
        scale, n_global = self.dist.loss_scale(n)
        if n_global == 0:
            return 0.0, 0.0, 0
        for p in self.weights:  # the architecture step needs no weight gradients
            p.requires_grad_(False)
        try:
            if n:
                x = self.rt.input(batch["clip"])
                y = batch["label"].to(self.rt.device)
                with self.rt.autocast():
                    logits = forward(x)
                ce = nn.functional.cross_entropy(logits.float(), y)
            else:  # this rank's part was all unreadable: it adds the cost term only
                ce = torch.zeros((), device=self.rt.device)
            cost = self.cost().float()
            loss = ce + cost
            check(loss)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(ce * scale + cost if self.dist.enabled else loss).backward()
            self.dist.average_grads(self.params)
            self.grad_stats.add(self.params, self.scaler)
            self.scaler.step(self.opt)  # unscales; skips a step whose gradients overflowed
            self.scaler.update()
        finally:
            for p in self.weights:
                p.requires_grad_(True)
        return loss.item() * n, ce.item() * n, n

    def epoch_grad_stats(self) -> dict[str, float | None]:
        """The epoch's gradient figures for alpha and for beta and the number of steps
        they cover (``arch_steps``), then a fresh count."""
        out = self.grad_stats.summary("alpha", slice(0, self.n_alpha))
        out.update(self.grad_stats.summary("beta", slice(self.n_alpha, None)))
        out["arch_steps"] = self.grad_stats.count
        self.grad_stats.reset()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "opt": self.opt.state_dict(),
            "grad_stats": self.grad_stats.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "opt" in state:
            self.grad_stats.load_state_dict(state["grad_stats"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            state = state["opt"]
        self.opt.load_state_dict(state)
        self.dist.broadcast(self.params)  # the same alpha and beta everywhere, whatever happened
