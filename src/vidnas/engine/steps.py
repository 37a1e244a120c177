"""The steps that search, retraining and testing share: the weights' optimiser, one step on
cross-entropy, single-view evaluation over a loader, BatchNorm re-estimation."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from vidnas.engine.distributed import Dist
from vidnas.engine.runtime import Runtime
from vidnas.errors import NonFiniteLoss


def weight_optimizer(
    kind: str, params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """The optimiser of network weights, for search and retraining alike: SGD with
    momentum (the paper), or AdamW (decoupled weight decay; ``momentum`` unused), which
    normalises each weight's step and so undoes the small gradients of ops scaled by
    their probability in a relaxed supernet (docs/design.md, "The demo preset")."""
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimiser {kind!r}: sgd or adamw")


@torch.no_grad()
def evaluate_single_view(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    rt: Runtime,
    max_batches: int | None = None,
    on_batch: Any = None,
) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy over a loader of one clip per video, in
    eval mode (the per-epoch figure; the reported test is multi-view,
    :mod:`vidnas.apps.evaluate`). In a job each rank evaluates its shard and the
    sums are added over ranks."""
    was_training = model.training
    model.eval()
    loss_sum, correct, count = 0.0, 0, 0
    for batch in itertools.islice(loader, max_batches):
        if on_batch is not None:
            on_batch(batch)
        if batch["label"].numel() == 0:
            continue
        x = rt.input(batch["clip"])
        y = batch["label"].to(rt.device)
        with rt.autocast():
            logits = model(x)
        loss_sum += nn.functional.cross_entropy(logits.float(), y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += y.numel()
    model.train(was_training)
    loss_sum, correct, count = rt.dist.sum([loss_sum, correct, count])
    count = int(count)
    if count == 0:
        return {"loss": float("nan"), "acc": float("nan"), "count": 0}
    return {"loss": loss_sum / count, "acc": correct / count, "count": count}


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    rt: Runtime,
    batches: int,
) -> int:
    """Re-estimate BatchNorm running statistics from training batches.

    A network cut out of the supernet inherits statistics gathered on mixtures of
    paths, which do not describe its own activations; a cumulative average over a
    few batches in train mode fixes that (as single-path NAS methods do).
    Returns the number of clips seen. In a job each rank estimates on its shard and
    the statistics are averaged over the ranks that saw clips.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or batches <= 0:
        return 0
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    seen = 0
    for batch in itertools.islice(loader, batches):
        if batch["label"].numel() == 0:
            continue
        with rt.autocast():
            model(rt.input(batch["clip"]))
        seen += batch["label"].numel()
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.train(was_training)
    if rt.dist.enabled:
        # The mean over the ranks that saw clips: one whose every batch was empty
        # holds the reset statistics (mean 0, variance 1), which estimate nothing.
        seen_all, with_clips = rt.dist.sum([seen, float(seen > 0)])
        if with_clips:
            stats = [b for m in bns for b in (m.running_mean, m.running_var) if b is not None]
            for b in stats:
                b.mul_(rt.dist.world * float(seen > 0) / with_clips)
            rt.dist.average(stats)
        seen = int(seen_all)
    return seen


def check_finite(
    loss: torch.Tensor,
    what: str,
    epoch: int,
    step: int,
    checkpoint: Any,
    dist: Dist | None = None,
) -> None:
    """Stop on a NaN/inf loss before it reaches the weights or a checkpoint; in a job
    every rank stops when any rank's loss is not finite."""
    bad = not bool(torch.isfinite(loss))
    if dist is not None:
        bad = dist.any(bad)
    if bad:
        raise NonFiniteLoss(
            f"non-finite {what} loss ({loss.item()}) at epoch {epoch + 1}, step {step + 1}; "
            f"stopped, and the last good checkpoint {checkpoint} is kept"
        )


def weight_step(
    model: Callable[[torch.Tensor], torch.Tensor],
    params: list[nn.Parameter],
    opt: torch.optim.Optimizer,
    batch: dict[str, Any],
    rt: Runtime,
    lr: float,
    grad_clip: float | None,
    check: Any,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[float, int, int]:
    """One SGD step on cross-entropy; returns this rank's (summed loss, correct, clips).

    A batch whose every video was unreadable (0 clips) is no step at all. In a job
    the step is on the mean over the global batch (:meth:`Dist.loss_scale`); a rank
    whose part is empty while others' are not still runs (a zero clip with weight
    0), because DDP needs every rank in every backward pass.

    ``scaler``: the run's gradient scaler (:meth:`Runtime.grad_scaler`; enabled for
    fp16 only). Gradients are unscaled before clipping, and a step whose scaled
    gradients overflowed is skipped (and the scale lowered), as
    ``torch.amp.GradScaler`` does. None: no scaling.
    """
    dist = rt.dist
    if scaler is None:
        scaler = torch.amp.GradScaler(rt.device.type, enabled=False)
    n = batch["label"].numel()
    scale, n_global = dist.loss_scale(n)
    if n_global == 0:
        return 0.0, 0, 0
    clip, y = batch["clip"], batch["label"]
    if n == 0:
        clip, y = torch.zeros((1, *clip.shape[1:])), torch.zeros(1, dtype=torch.int64)
    x = rt.input(clip)
    y = y.to(rt.device)
    for g in opt.param_groups:
        g["lr"] = lr
    with rt.autocast():
        logits = model(x)
    loss = nn.functional.cross_entropy(logits.float(), y)
    check(loss)
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss * scale if dist.enabled else loss).backward()
    if grad_clip:
        scaler.unscale_(opt)  # clip the true gradients, not the scaled ones
        nn.utils.clip_grad_norm_(params, grad_clip)
    scaler.step(opt)
    scaler.update()
    if n == 0:
        return 0.0, 0, 0
    return loss.item() * n, int((logits.argmax(1) == y).sum().item()), n
